// Cluster set-up for scenario tests; see replication_setup.hpp.
#include "support/replication_setup.hpp"

#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <thread>

#include <catch2/catch.hpp>

#include <fmt/format.h>

#include "support/table_checksum.hpp"
#include "support/wait_until.hpp"

namespace pgtandem::test {

std::string PgtandemBinary() { return PGTANDEM_BINARY; }

std::string PgBinary(const std::string& name) { return "/usr/lib/postgresql/15/bin/" + name; }

ReplicationSetup::ReplicationSetup(std::string label, int targets, const std::string& schema_sql,
                                   std::string tables_json, std::string extra_json, bool empty_targets)
    : label_(std::move(label)), tables_json_(std::move(tables_json)), extra_json_(std::move(extra_json)) {
  std::string pattern = (std::filesystem::temp_directory_path() / ("pgtandem-" + label_ + "-XXXXXX")).string();
  if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed for " + pattern);
  dir_ = pattern;
  config_path_ = dir_ / "pgtandem.json";
  source_ = std::make_unique<PgCluster>(label_ + "-source");
  source_->CreateDatabase(kDatabase);
  source_->Exec(schema_sql, kDatabase);
  for (int i = 0; i < targets; ++i) {
    targets_.push_back(std::make_unique<PgCluster>(label_ + "-" + TargetName(i)));
    targets_.back()->CreateDatabase(kDatabase);
    if (!empty_targets) targets_.back()->Exec(schema_sql, kDatabase);
  }
  WriteConfig(DefaultConfig());
}

ReplicationSetup::~ReplicationSetup() {
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string ReplicationSetup::DefaultConfig() const {
  std::string nodes = fmt::format(R"("source": {{ "dsn": "{}", "capture": "plpgsql" }})", source_->Dsn(kDatabase));
  std::string names;
  for (int i = 0; i < Targets(); ++i) {
    nodes += fmt::format(R"(, "{}": {{ "dsn": "{}" }})", TargetName(i), targets_[static_cast<size_t>(i)]->Dsn(kDatabase));
    names += fmt::format(R"({}"{}")", i ? ", " : "", TargetName(i));
  }
  // Short intervals and retries keep the tests fast; a small batch makes big
  // transactions span several batches, so resuming inside a window is exercised.
  std::string config = fmt::format(R"({{
  "nodes": {{ {} }},
  "syncs": [ {{ "name": "app", "source": "source", "targets": [{}], "tables": {} }} ],
  "batch": {{ "max_rows": 500 }},
  "daemon": {{ "poll_interval_ms": 200, "purge_interval_ms": 500, "retry_initial_ms": 100,
               "retry_max_ms": 1000, "connect_timeout_s": 2 }},
  "log": {{ "level": "debug" }} {}
}})", nodes, names, tables_json_, extra_json_);
  const char* capture = std::getenv("PGTANDEM_TEST_CAPTURE");
  return capture != nullptr && std::string_view(capture) == "c" ? WithCCapture(config) : config;
}

void ReplicationSetup::ReplaceTarget(int i, std::unique_ptr<PgCluster> cluster) {
  if (!cluster) throw std::invalid_argument("ReplaceTarget: no cluster given for " + TargetName(i));
  // Swapped first, so the replaced cluster is stopped and deleted as `cluster` goes out of scope.
  std::swap(targets_.at(static_cast<size_t>(i)), cluster);
  WriteConfig(DefaultConfig());
}

void ReplicationSetup::WriteConfig(const std::string& json) {
  std::ofstream(config_path_) << json;
}

RunResult ReplicationSetup::Pgtandem(std::vector<std::string> args) {
  std::vector<std::string> argv = {PgtandemBinary(), "--config", config_path_.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(argv, std::chrono::seconds(120), env_);
}

ChildProcess ReplicationSetup::StartDaemon(std::vector<std::string> extra_args) {
  std::vector<std::string> argv = {PgtandemBinary(), "--config", config_path_.string(), "run"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  return ChildProcess(argv, dir_ / fmt::format("daemon-{}.log", ++daemons_started_), env_);
}

std::vector<std::string> ReplicationSetup::DifferingTables(int target) {
  std::vector<std::string> differing;
  for (const auto& table : UserTables(*source_, kDatabase)) {
    if (TableChecksum(*source_, kDatabase, table) != TableChecksum(Target(target), kDatabase, table)) {
      differing.push_back(table);
    }
  }
  return differing;
}

void ReplicationSetup::WaitEqual(std::chrono::seconds deadline, std::vector<int> targets) {
  if (targets.empty()) {
    for (int i = 0; i < Targets(); ++i) targets.push_back(i);
  }
  std::string last;
  try {
    WaitUntil(
        [&] {
          for (int i : targets) {
            auto differing = DifferingTables(i);
            if (!differing.empty()) {
              last = fmt::format("target {} differs in {}", TargetName(i), fmt::join(differing, ", "));
              return false;
            }
          }
          return true;
        },
        deadline, "every target to equal the source");
  } catch (const std::exception& e) {
    std::string log;
    if (daemons_started_ > 0) {
      std::ifstream file(dir_ / fmt::format("daemon-{}.log", daemons_started_));
      log.assign(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
    }
    throw std::runtime_error(fmt::format("{}: {}\nlast daemon log:\n{}", e.what(), last, LastLines(log, 30)));
  }
}

void ReplicationSetup::Install() {
  RunResult installed = Pgtandem({"install"});
  INFO(installed.output);
  REQUIRE(installed.exit_code == 0);
}

std::string ReplicationSetup::LastError(const std::string& sync) {
  return Source().Query1(
      "SELECT coalesce((SELECT last_error FROM pgtandem.target_progress WHERE sync = '" + sync + "'), '')", kDatabase);
}

namespace {

std::string Replaced(const std::string& config, const std::string& anchor, const std::string& with) {
  size_t at = config.find(anchor);
  if (at == std::string::npos) throw std::runtime_error("the test config has no " + anchor + " to change");
  std::string out = config;
  return out.replace(at, anchor.size(), with);
}

}  // namespace

std::string WithDaemonSettings(const std::string& config, const std::string& settings) {
  const std::string anchor = R"("connect_timeout_s": 2)";
  return Replaced(config, anchor, anchor + ", " + settings);
}

std::string WithMaxRows(const std::string& config, long rows) {
  return Replaced(config, R"("max_rows": 500)", R"("max_rows": )" + std::to_string(rows));
}

std::string WithPurgeInterval(const std::string& config, long ms) {
  return Replaced(config, R"("purge_interval_ms": 500)", R"("purge_interval_ms": )" + std::to_string(ms));
}

std::string WithRole(const std::string& config, const PgCluster& node, const std::string& role) {
  return Replaced(config, node.Dsn(kDatabase), node.Dsn(kDatabase, role));
}

void RunLoad(ChildProcess& daemon, std::chrono::milliseconds duration) {
  auto until = std::chrono::steady_clock::now() + duration;
  while (std::chrono::steady_clock::now() < until) {
    INFO(daemon.Output());
    REQUIRE_FALSE(daemon.TryWait().has_value());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

long ReplicationSetup::AppliedBatches(int target) {
  if (Target(target).Query1("SELECT to_regclass('pgtandem.progress') IS NOT NULL", kDatabase) != "t") return 0;
  std::string value = Target(target).Query1("SELECT batches FROM pgtandem.progress WHERE sync = 'app'", kDatabase);
  return value.empty() ? 0 : std::stol(value);
}

std::string CaptureModulePath() { return PGTANDEM_CAPTURE_MODULE_PATH; }

std::string WithCapture(const std::string& config, const std::string& fields) {
  const std::string node = R"("source": { "dsn": ")";
  const size_t start = config.find(node);
  const size_t dsn_end = start == std::string::npos ? start : config.find('"', start + node.size());
  const size_t end = dsn_end == std::string::npos ? dsn_end : config.find(" }", dsn_end);
  if (end == std::string::npos) throw std::invalid_argument("WithCapture: no source node in the config");
  std::string out = config;
  out.replace(dsn_end + 1, end - dsn_end - 1, fields);
  return out;
}

std::string WithCCapture(const std::string& config) {
  return WithCapture(config, fmt::format(R"(, "capture": "c", "capture_library": "{}")", CaptureModulePath()));
}

}  // namespace pgtandem::test
