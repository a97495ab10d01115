// Snapshot-restore bootstrapping: a target restored from a dump of the source catches up, exactly.
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>

#include "support/random_workload.hpp"
#include "support/replication_setup.hpp"
#include "support/test_seed.hpp"
#include "support/wait_until.hpp"

namespace pgtandem::test {
namespace {

using namespace std::chrono_literals;
using Catch::Matchers::Contains;

void Dump(ReplicationSetup& setup, std::vector<std::string> options, const std::string& file) {
  std::vector<std::string> argv = {PgBinary("pg_dump"), "--file", (setup.Dir() / file).string()};
  argv.insert(argv.end(), options.begin(), options.end());
  argv.push_back("--dbname=" + setup.Source().Dsn(kDatabase));
  RunResult dumped = Run(argv, 300s);
  INFO(dumped.output);
  REQUIRE(dumped.exit_code == 0);
}

void Restore(ReplicationSetup& setup, const std::string& file, std::vector<std::string> options = {}) {
  std::vector<std::string> argv = {PgBinary("pg_restore"), "--dbname=" + setup.Target(0).Dsn(kDatabase)};
  argv.insert(argv.end(), options.begin(), options.end());
  argv.push_back((setup.Dir() / file).string());
  RunResult restored = Run(argv, 300s);
  INFO(restored.output);
  REQUIRE(restored.exit_code == 0);
}

// Waits until the running `process` has printed `text`.
void WaitForOutput(ChildProcess& process, const std::string& text, const char* what) {
  WaitUntil([&] {
    INFO(process.Output());
    REQUIRE_FALSE(process.TryWait().has_value());
    return process.Output().find(text) != std::string::npos;
  }, 60s, what);
}

// Deltas on the source of transactions `snapshot` does not see.
long DeltasAfter(ReplicationSetup& setup, const std::string& snapshot) {
  auto ids = setup.Source().Query("SELECT id FROM pgtandem.captured_table", kDatabase);
  long total = 0;
  for (const auto& row : ids) {
    total += std::stol(setup.Source().Query1(
        "SELECT count(*) FROM pgtandem.d_" + row[0] + " WHERE NOT pg_visible_in_snapshot(txid, '" + snapshot + "')",
        kDatabase));
  }
  return total;
}

}  // namespace

TEST_CASE("a dump taken with 'pgtandem snapshot' catches up from exactly its boundary", "[scenario]") {
  uint64_t seed = TestSeed("snapshot dump");
  ReplicationSetup setup("snapdump", 1, kSampleSchema, kSampleTables, {}, true);
  setup.Install();
  RandomWorkload load(setup.Source().Dsn(kDatabase), seed, 3, false);
  std::this_thread::sleep_for(1s);
  ChildProcess exporter({PgtandemBinary(), "--config", setup.ConfigPath().string(), "snapshot"},
                        setup.Dir() / "snapshot.log");
  WaitForOutput(exporter, "then restore it on the target", "pgtandem snapshot to print the pg_dump command");
  std::string out = exporter.Output();
  std::smatch match;
  REQUIRE(std::regex_search(out, match, std::regex("--snapshot=(\\S+)")));
  std::string id = match[1];
  REQUIRE(std::regex_search(out, match, std::regex("source snapshot ([0-9:,]+)")));
  std::string boundary = match[1];
  Dump(setup, {"--format=directory", "--jobs=2", "--snapshot=" + id}, "dump.dir");
  REQUIRE(exporter.Wait(60s) == 0);
  load.Stop();
  long expected = DeltasAfter(setup, boundary);
  Restore(setup, "dump.dir", {"--jobs=2"});
  RunResult bootstrapped = setup.Pgtandem({"bootstrap", "--target", "t0"});
  INFO(bootstrapped.output);
  REQUIRE(bootstrapped.exit_code == 0);
  REQUIRE_THAT(bootstrapped.output, Contains("exported by \"pgtandem snapshot\""));
  REQUIRE_THAT(bootstrapped.output, Contains("catch-up starts at source snapshot " + boundary));
  ChildProcess daemon = setup.StartDaemon();
  setup.WaitEqual(90s);
  REQUIRE(setup.Target(0).Query1("SELECT deltas FROM pgtandem.progress", kDatabase) == std::to_string(expected));
  RunResult again = setup.Pgtandem({"bootstrap", "--target", "t0"});
  REQUIRE(again.exit_code == 0);
  REQUIRE_THAT(again.output, Contains("already bootstrapped"));
}

TEST_CASE("a dump of a source captured in C restores without the C trigger through the list 'pgtandem snapshot' "
          "prints, and catches up", "[scenario]") {
  ReplicationSetup setup("snapc", 1, kSampleSchema, kSampleTables, {}, true);
  setup.WriteConfig(WithCCapture(setup.DefaultConfig()));
  setup.Install();
  setup.Source().Exec("INSERT INTO customers (name) SELECT 'before ' || g FROM generate_series(1, 20) g", kDatabase);
  ChildProcess exporter({PgtandemBinary(), "--config", setup.ConfigPath().string(), "snapshot"},
                        setup.Dir() / "snapshot.log");
  WaitForOutput(exporter, "pg_restore -L DUMPDIR.list",
                "pgtandem snapshot to print the pg_dump command and the restore list for the C trigger");
  std::string out = exporter.Output();
  REQUIRE_THAT(out, Contains("pg_restore -l DUMPDIR | grep -v -e capture_row -e pgtandem_capture > DUMPDIR.list"));
  std::smatch match;
  REQUIRE(std::regex_search(out, match, std::regex("--snapshot=(\\S+)")));
  Dump(setup, {"--format=directory", "--snapshot=" + match[1].str()}, "dump.dir");
  REQUIRE(exporter.Wait(60s) == 0);

  // The printed filter, line by line, as grep -v applies it.
  RunResult listed = Run({PgBinary("pg_restore"), "-l", (setup.Dir() / "dump.dir").string()}, 60s);
  REQUIRE(listed.exit_code == 0);
  std::istringstream lines(listed.output);
  std::ofstream list(setup.Dir() / "dump.list");
  int left_out = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.find("capture_row") != std::string::npos || line.find("pgtandem_capture") != std::string::npos) {
      ++left_out;
    } else {
      list << line << "\n";
    }
  }
  list.close();
  const int captured = std::stoi(setup.Source().Query1("SELECT count(*) FROM pgtandem.captured_table", kDatabase));
  REQUIRE(left_out == 1 + captured);
  Restore(setup, "dump.dir", {"-L", (setup.Dir() / "dump.list").string()});
  REQUIRE(setup.Target(0).Query1("SELECT to_regprocedure('pgtandem.capture_row()') IS NULL", kDatabase) == "t");
  REQUIRE(setup.Target(0).Query1("SELECT count(*) FROM pg_trigger WHERE tgname = 'pgtandem_capture'", kDatabase) ==
          "0");

  RunResult bootstrapped = setup.Pgtandem({"bootstrap", "--target", "t0"});
  INFO(bootstrapped.output);
  REQUIRE(bootstrapped.exit_code == 0);
  setup.Source().Exec("INSERT INTO customers (name) SELECT 'after ' || g FROM generate_series(1, 20) g", kDatabase);
  ChildProcess daemon = setup.StartDaemon();
  setup.WaitEqual(90s);
}

TEST_CASE("a pg_dump -Fc taken in the middle of a write load is bootstrapped and caught up under load",
          "[scenario]") {
  uint64_t seed = TestSeed("custom dump under load");
  ReplicationSetup setup("fcdump", 1, kSampleSchema, kSampleTables, {}, true);
  setup.Install();
  RandomWorkload load(setup.Source().Dsn(kDatabase), seed, 3);
  std::this_thread::sleep_for(2s);
  Dump(setup, {"--format=custom"}, "dump.custom");
  std::this_thread::sleep_for(1s);
  Restore(setup, "dump.custom");
  RunResult bootstrapped = setup.Pgtandem({"bootstrap", "--target", "t0"});
  INFO(bootstrapped.output);
  REQUIRE(bootstrapped.exit_code == 0);
  REQUIRE_THAT(bootstrapped.output, Contains("restored copy of the delta tables"));
  REQUIRE(setup.Target(0).Query1("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'pgtandem%'", kDatabase) == "0");
  ChildProcess daemon = setup.StartDaemon();
  std::this_thread::sleep_for(3s);
  load.Stop();
  setup.WaitEqual(90s);
}

TEST_CASE("a target restored from a dump taken before install is refused, with the reason", "[scenario]") {
  ReplicationSetup setup("preinstall", 1, kSampleSchema, kSampleTables, {}, true);
  setup.Source().Exec("INSERT INTO scratch VALUES (1, 'before the dump')", kDatabase);
  Dump(setup, {"--format=custom"}, "dump.custom");
  setup.Source().Exec("INSERT INTO scratch VALUES (2, 'never captured')", kDatabase);
  setup.Install();
  Restore(setup, "dump.custom");
  RunResult refused = setup.Pgtandem({"bootstrap", "--target", "t0"});
  INFO(refused.output);
  REQUIRE(refused.exit_code == 6);
  REQUIRE_THAT(refused.output, Contains("taken before \"pgtandem install\""));
  RunResult forced = setup.Pgtandem({"bootstrap", "--target", "t0", "--force"});
  INFO(forced.output);
  REQUIRE(forced.exit_code == 0);
}

TEST_CASE("a restored target whose column type changed is refused, the difference named", "[scenario]") {
  ReplicationSetup setup("changedtype", 1, kSampleSchema, kSampleTables, {}, true);
  setup.Install();
  Dump(setup, {"--format=custom"}, "dump.custom");
  Restore(setup, "dump.custom");
  setup.Target(0).Exec("ALTER TABLE customers ALTER COLUMN balance TYPE numeric(14,2)", kDatabase);
  RunResult refused = setup.Pgtandem({"bootstrap", "--target", "t0"});
  INFO(refused.output);
  REQUIRE(refused.exit_code == 6);
  REQUIRE_THAT(refused.output, Contains("table public.customers: column \"balance\" is numeric(12,2) on the source but "
                                            "numeric(14,2) on the target"));
}

}  // namespace pgtandem::test

namespace pgtandem::test {

TEST_CASE("a snapshot older than the deltas the source still keeps is refused", "[scenario]") {
  using namespace std::chrono_literals;
  ReplicationSetup setup("purged", 2, kSampleSchema, kSampleTables, {}, true);
  std::string both = setup.DefaultConfig();
  std::string only_t0 = both;
  only_t0.replace(only_t0.find(R"(["t0", "t1"])"), 12, R"(["t0"])");
  setup.WriteConfig(only_t0);
  REQUIRE(setup.Pgtandem({"install"}).exit_code == 0);
  RunResult dumped = Run({PgBinary("pg_dump"), "--format=custom", "--file", (setup.Dir() / "old.dump").string(),
                          "--dbname=" + setup.Source().Dsn(kDatabase)});
  REQUIRE(dumped.exit_code == 0);
  for (int i : {0, 1}) {
    RunResult restored = Run({PgBinary("pg_restore"), "--dbname=" + setup.Target(i).Dsn(kDatabase),
                              (setup.Dir() / "old.dump").string()});
    REQUIRE(restored.exit_code == 0);
  }
  REQUIRE(setup.Pgtandem({"bootstrap", "--target", "t0"}).exit_code == 0);
  {
    ChildProcess daemon = setup.StartDaemon();
    setup.Source().Exec("INSERT INTO scratch SELECT g, 'after the dump' FROM generate_series(1, 100) g", kDatabase);
    setup.WaitEqual(60s, {0});
    WaitUntil([&] { return setup.Source().Query1("SELECT count(*) FROM pgtandem.captured_table "
                                                 "WHERE purged_below IS NOT NULL", kDatabase) != "0"; },
              30s, "the source to purge what t0 applied");
  }
  setup.WriteConfig(both);
  RunResult refused = setup.Pgtandem({"bootstrap", "--target", "t1"});
  INFO(refused.output);
  REQUIRE(refused.exit_code == 6);
  REQUIRE_THAT(refused.output, Contains("older than the oldest change still kept"));
}

}  // namespace pgtandem::test
