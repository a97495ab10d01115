// No password in any output: logs, errors, status, and the command line pg_dump is given.
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>

#include "support/replication_setup.hpp"
#include "support/wait_until.hpp"

namespace pgtandem::test {
namespace {

using namespace std::chrono_literals;
using Catch::Matchers::Contains;

// Distinctive, so that a find in any output is a leak and not a coincidence.
const std::string kPassword = "Zx7-pgt4ndem-s3cr3t-Qw";
const std::string kWrongPassword = "Wr0ng-pgt4ndem-Pw-55";

const std::string kSchema = R"sql(
CREATE TABLE accounts (id integer PRIMARY KEY, owner text);
CREATE TABLE ledger (id bigserial PRIMARY KEY, account integer, amount numeric);
)sql";

void Replace(std::string& text, const std::string& from, const std::string& to) {
  auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  text.replace(at, from.size(), to);
}

// A pg_dump first in PATH that records its command line, then runs the real one.
std::filesystem::path RecordingPgDump(const std::filesystem::path& dir, const std::filesystem::path& record) {
  const auto bin = dir / "bin";
  std::filesystem::create_directory(bin);
  std::ofstream(bin / "pg_dump") << "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '" << record.string() << "'\nexec '"
                                 << PgBinary("pg_dump") << "' \"$@\"\n";
  std::filesystem::permissions(bin / "pg_dump", std::filesystem::perms::owner_all);
  return bin;
}

}  // namespace

TEST_CASE("a password in the dsn appears in no log line, error, status output or pg_dump command line",
          "[scenario]") {
  ReplicationSetup setup("secrets", 1, kSchema, R"(["public.*"])", {}, true);
  PgCluster& source = setup.Source();
  PgCluster& target = setup.Target(0);
  source.RequirePasswords();
  target.RequirePasswords();
  source.Exec("CREATE ROLE migrator LOGIN PASSWORD '" + kPassword + "'; GRANT CREATE ON DATABASE app TO migrator; "
              "ALTER TABLE accounts OWNER TO migrator; ALTER TABLE ledger OWNER TO migrator", kDatabase);
  target.Exec("CREATE ROLE replicator LOGIN PASSWORD '" + kPassword + "'; GRANT CREATE ON DATABASE app TO replicator; "
              "GRANT CREATE ON SCHEMA public TO replicator; "
              "GRANT SET ON PARAMETER session_replication_role TO replicator", kDatabase);
  const std::string source_dsn = source.Dsn(kDatabase, "migrator") + " password=" + kPassword;
  const std::string target_dsn = target.Dsn(kDatabase, "replicator") + " password=" + kPassword;
  const std::string good_config = [&] {
    std::string config = setup.DefaultConfig();
    Replace(config, source.Dsn(kDatabase), source_dsn);
    Replace(config, target.Dsn(kDatabase), target_dsn);
    return config;
  }();
  const auto pg_dump_record = setup.Dir() / "pg_dump-argv.txt";
  const std::string path = RecordingPgDump(setup.Dir(), pg_dump_record).string() + ":" + std::getenv("PATH");
  setup.SetEnvironment({{"PATH", path}});
  setup.WriteConfig(good_config);

  std::string everything;  // every output of pgtandem, searched for the passwords at the end
  auto run = [&](std::vector<std::string> args, int expected_exit) {
    RunResult result = setup.Pgtandem(args);
    everything += result.output;
    INFO("pgtandem " << args.at(0) << ":\n" << result.output);
    REQUIRE(result.exit_code == expected_exit);
    return result.output;
  };

  run({"install"}, 0);
  source.Exec("INSERT INTO accounts SELECT g, 'o' FROM generate_series(1, 20) g", kDatabase);
  REQUIRE_THAT(run({"bootstrap", "--target", "t0", "--copy", "--schema"}, 0), Contains("by copy"));
  std::ifstream record(pg_dump_record);
  const std::string pg_dump_argv{std::istreambuf_iterator<char>(record), std::istreambuf_iterator<char>()};
  INFO("pg_dump was run as: " << pg_dump_argv);
  REQUIRE_THAT(pg_dump_argv, Contains("user=migrator"));
  everything += pg_dump_argv;
  {
    ChildProcess daemon = setup.StartDaemon();
    source.Exec("INSERT INTO ledger (account, amount) SELECT g, g FROM generate_series(1, 20) g", kDatabase);
    setup.WaitEqual(60s);
    REQUIRE_THAT(run({"status"}, 0), Contains("streaming"));
    REQUIRE_THAT(run({"status", "--json"}, 0), Contains("streaming"));
    everything += daemon.Output();
  }

  // Refused: a wrong password, then an unreachable node, each with a password in its dsn.
  std::string config = good_config;
  Replace(config, source_dsn, source.Dsn(kDatabase, "migrator") + " password=" + kWrongPassword);
  Replace(config, target_dsn, target.Dsn(kDatabase, "replicator") + " password=" + kWrongPassword);
  setup.WriteConfig(config);
  REQUIRE_THAT(run({"install"}, 4), Contains("password authentication failed for user \"migrator\""));
  REQUIRE_THAT(run({"status"}, 0), Contains("password authentication failed for user \"replicator\""));
  REQUIRE_THAT(run({"status", "--json"}, 0), Contains("password authentication failed"));
  REQUIRE_THAT(run({"sequences", "check"}, 4), Contains("source node 'source'"));
  {
    ChildProcess daemon = setup.StartDaemon();
    WaitUntil([&] { return daemon.Output().find("password authentication failed") != std::string::npos; }, 30s,
              "the daemon to log the refused password");
    everything += daemon.Output();
  }
  config = good_config;
  Replace(config, "port=" + std::to_string(target.Port()), "port=1");
  setup.WriteConfig(config);
  REQUIRE_THAT(run({"status"}, 0), Contains("Connection refused"));
  REQUIRE_THAT(run({"sequences", "sync"}, 5), Contains("target node 't0'"));
  config = good_config;
  // Before the password: after it, the redaction counts an unknown `key=value` as more password.
  Replace(config, source_dsn, source.Dsn(kDatabase, "migrator") + " no_such_option=1 password=" + kPassword);
  setup.WriteConfig(config);
  REQUIRE_THAT(run({"status"}, 3), Contains("no_such_option"));

  REQUIRE(everything.find(kPassword) == std::string::npos);
  REQUIRE(everything.find(kWrongPassword) == std::string::npos);
}

}  // namespace pgtandem::test
