// The whole migration as non-superuser roles holding exactly the grants README's "Minimum privileges" lists.
#include <csignal>
#include <filesystem>
#include <fstream>
#include <regex>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/replication_setup.hpp"
#include "support/wait_until.hpp"

namespace pgtandem::test {
namespace {

using namespace std::chrono_literals;
using Catch::Matchers::Contains;

const std::string kSchema = R"sql(
CREATE TABLE accounts (id integer PRIMARY KEY, owner text, balance numeric);
CREATE TABLE ledger (id bigserial PRIMARY KEY, account integer REFERENCES accounts, amount numeric);
)sql";

// Source: the migrating role owns the tables and may create a schema; the
// application's role only writes. Nothing else is granted.
const std::string kSourceGrants = R"sql(
CREATE ROLE migrator LOGIN PASSWORD 'migrator-pw'; CREATE ROLE app LOGIN;
ALTER TABLE accounts OWNER TO migrator; ALTER TABLE ledger OWNER TO migrator;
GRANT CREATE ON DATABASE app TO migrator;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public TO app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO app;
)sql";

// Target: an empty database; the replicating role restores into schema
// public, creates schema pgtandem, and sets session_replication_role.
const std::string kTargetGrants = R"sql(
CREATE ROLE replicator LOGIN PASSWORD 'replicator-pw';
GRANT CREATE ON DATABASE app TO replicator;
GRANT CREATE ON SCHEMA public TO replicator;
GRANT SET ON PARAMETER session_replication_role TO replicator;
)sql";

void Replace(std::string& text, const std::string& from, const std::string& to) {
  auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  text.replace(at, from.size(), to);
}

void WriteSecretFile(const std::filesystem::path& path, const std::string& content) {
  std::ofstream(path) << content;
  std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

RunResult Succeeds(ReplicationSetup& setup, std::vector<std::string> args) {
  RunResult result = setup.Pgtandem(args);
  INFO("pgtandem " << args.at(0) << ":\n" << result.output);
  REQUIRE(result.exit_code == 0);
  return result;
}

bool Superuser(PgCluster& cluster, const std::string& role) {
  return cluster.Query1("SELECT rolsuper OR rolcreaterole OR rolbypassrls FROM pg_roles WHERE rolname = '" + role + "'",
                        kDatabase) == "t";
}

}  // namespace

TEST_CASE("install, snapshot, bootstrap, run, sequences, status and uninstall run with only the documented grants",
          "[scenario]") {
  ReplicationSetup setup("leastpriv", 1, kSchema, R"(["public.*"])", {}, true);
  PgCluster& source = setup.Source();
  PgCluster& target = setup.Target(0);
  source.RequirePasswords();
  target.RequirePasswords();
  source.Exec(kSourceGrants, kDatabase);
  target.Exec(kTargetGrants, kDatabase);
  REQUIRE_FALSE(Superuser(source, "migrator"));
  REQUIRE_FALSE(Superuser(target, "replicator"));

  // The dsns carry no password: libpq finds it in PGPASSFILE.
  std::string config = setup.DefaultConfig();
  Replace(config, source.Dsn(kDatabase), source.Dsn(kDatabase, "migrator"));
  Replace(config, target.Dsn(kDatabase), target.Dsn(kDatabase, "replicator"));
  setup.WriteConfig(config);
  const auto passfile = setup.Dir() / "passfile";
  WriteSecretFile(passfile, "127.0.0.1:" + std::to_string(source.Port()) + ":app:migrator:migrator-pw\n" +
                                "127.0.0.1:" + std::to_string(target.Port()) + ":*:replicator:replicator-pw\n");
  const std::map<std::string, std::string> env = {{"PGPASSFILE", passfile.string()}};
  setup.SetEnvironment(env);

  Succeeds(setup, {"install"});
  auto as_app = [&](const std::string& sql) { source.Exec("SET ROLE app; " + sql + "; RESET ROLE", kDatabase); };
  as_app("INSERT INTO accounts SELECT g, 'owner ' || g, g FROM generate_series(1, 50) g");
  as_app("INSERT INTO ledger (account, amount) SELECT g, g * 2 FROM generate_series(1, 50) g");

  // The runbook's steps 4 to 6, each as the node's own role.
  ChildProcess exporter({PgtandemBinary(), "--config", setup.ConfigPath().string(), "snapshot"},
                        setup.Dir() / "snapshot.log", env);
  std::smatch match;
  WaitUntil([&] {
    INFO(exporter.Output());
    REQUIRE_FALSE(exporter.TryWait().has_value());
    std::string out = exporter.Output();
    return std::regex_search(out, match, std::regex("--snapshot=(\\S+)"));
  }, 60s, "pgtandem snapshot to print the pg_dump command");
  const std::string dump = (setup.Dir() / "dump.custom").string();
  RunResult dumped = Run({PgBinary("pg_dump"), "--format=custom", "--snapshot=" + match[1].str(), "--file", dump,
                          "--dbname=" + source.Dsn(kDatabase, "migrator")}, 120s, env);
  INFO(dumped.output);
  REQUIRE(dumped.exit_code == 0);
  REQUIRE(exporter.Wait(60s) == 0);
  RunResult restored = Run({PgBinary("pg_restore"), "--no-owner", "--no-acl",
                            "--dbname=" + target.Dsn(kDatabase, "replicator"), dump}, 120s, env);
  INFO(restored.output);
  REQUIRE(restored.exit_code == 0);
  Succeeds(setup, {"bootstrap", "--target", "t0"});

  {
    ChildProcess daemon = setup.StartDaemon();
    as_app("UPDATE accounts SET balance = balance + 1 WHERE id % 3 = 0");
    as_app("DELETE FROM ledger WHERE id % 5 = 0");
    as_app("INSERT INTO ledger (account, amount) VALUES (1, 7)");
    setup.WaitEqual(60s);
    WaitUntil([&] { return setup.Pgtandem({"status"}).output.find("streaming") != std::string::npos; }, 30s,
              "status to show the target caught up");
    daemon.Signal(SIGTERM);
    REQUIRE(daemon.Wait(30s) == 0);
    REQUIRE_THAT(daemon.Output(), !Contains("permission denied"));
  }

  Succeeds(setup, {"sequences", "sync"});
  Succeeds(setup, {"sequences", "check"});
  auto status = nlohmann::json::parse(Succeeds(setup, {"status", "--json"}).output);
  REQUIRE(status["syncs"][0]["targets"][0]["state"] == "stopped");
  REQUIRE(status["syncs"][0]["targets"][0]["last_error"].is_null());

  // ~/.pgpass works as well as PGPASSFILE.
  const auto home = setup.Dir() / "home";
  std::filesystem::create_directory(home);
  std::filesystem::copy_file(passfile, home / ".pgpass");
  setup.SetEnvironment({{"HOME", home.string()}, {"PGPASSFILE", ""}});
  Succeeds(setup, {"sequences", "check"});
  REQUIRE_THAT(Succeeds(setup, {"status"}).output, Contains("stopped") && !Contains("password"));
  setup.SetEnvironment({{"HOME", (setup.Dir() / "nowhere").string()}, {"PGPASSFILE", ""}});
  REQUIRE_THAT(setup.Pgtandem({"status"}).output, Contains("no password supplied"));

  setup.SetEnvironment(env);
  Succeeds(setup, {"uninstall", "--node", "t0"});
  Succeeds(setup, {"uninstall"});
  REQUIRE(source.Query1("SELECT count(*) FROM pg_namespace WHERE nspname = 'pgtandem'", kDatabase) == "0");
  REQUIRE(target.Query1("SELECT count(*) FROM pg_namespace WHERE nspname = 'pgtandem'", kDatabase) == "0");
}

}  // namespace pgtandem::test
