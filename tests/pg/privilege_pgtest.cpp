// Least privilege and unreachable nodes: what a DBA meets on a managed service.
#include <fstream>

#include <catch2/catch.hpp>
#include <libpq-fe.h>
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

void Replace(std::string& text, const std::string& from, const std::string& to) {
  auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  text.replace(at, from.size(), to);
}

bool LogContains(ChildProcess& daemon, const std::string& text) { return daemon.Output().find(text) != std::string::npos; }

}  // namespace

TEST_CASE("capture runs for a table owner that is not a superuser, and the target role needs one grant", "[pg]") {
  ReplicationSetup setup("privilege", 1, kSchema, R"(["public.*"])");
  setup.Source().Exec(R"(
CREATE ROLE migrator LOGIN; CREATE ROLE app LOGIN;
ALTER TABLE accounts OWNER TO migrator; ALTER TABLE ledger OWNER TO migrator;
GRANT CREATE ON DATABASE app TO migrator;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public TO app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO app;)", kDatabase);
  setup.Target(0).Exec(R"(
CREATE ROLE replicator LOGIN;
ALTER TABLE accounts OWNER TO replicator; ALTER TABLE ledger OWNER TO replicator;
GRANT CREATE ON DATABASE app TO replicator;)", kDatabase);
  std::string config = setup.DefaultConfig();
  Replace(config, setup.Source().Dsn(kDatabase), setup.Source().Dsn(kDatabase, "migrator"));
  Replace(config, setup.Target(0).Dsn(kDatabase), setup.Target(0).Dsn(kDatabase, "replicator"));
  setup.WriteConfig(config);

  setup.Install();
  REQUIRE(setup.Source().Query1("SELECT rolsuper FROM pg_roles WHERE rolname = 'migrator'", kDatabase) == "f");

  PgCluster& source = setup.Source();
  auto as_app = [&](const std::string& sql) { source.Exec("SET ROLE app; " + sql + "; RESET ROLE", kDatabase); };
  as_app("INSERT INTO accounts SELECT g, 'owner ' || g, g FROM generate_series(1, 50) g");
  as_app("INSERT INTO ledger (account, amount) SELECT g, g * 2 FROM generate_series(1, 50) g");
  as_app("UPDATE accounts SET balance = balance + 1 WHERE id % 3 = 0");
  as_app("DELETE FROM ledger WHERE id % 5 = 0");

  ChildProcess daemon = setup.StartDaemon();
  WaitUntil([&] { return LogContains(daemon, "GRANT SET ON PARAMETER session_replication_role TO \"replicator\""); },
            30s, "the daemon to say which grant the target role lacks");
  setup.Target(0).Exec("GRANT SET ON PARAMETER session_replication_role TO replicator", kDatabase);
  setup.WaitEqual(30s);
}

TEST_CASE("an unreachable target is retried, named in the log and in status, and the other target goes on", "[pg]") {
  ReplicationSetup setup("deadtarget", 2, kSchema, R"(["public.*"])");
  REQUIRE(setup.Pgtandem({"install"}).exit_code == 0);
  setup.Target(1).Stop();
  ChildProcess daemon = setup.StartDaemon();
  setup.Source().Exec("INSERT INTO accounts SELECT g, 'o', g FROM generate_series(1, 100) g", kDatabase);
  setup.WaitEqual(30s, {0});
  WaitUntil([&] { return LogContains(daemon, "target node 't1': cannot connect") && LogContains(daemon, "refused"); },
            30s, "the daemon to log the unreachable target with its reason");

  RunResult table = setup.Pgtandem({"status"});
  INFO(table.output);
  REQUIRE(table.exit_code == 0);
  REQUIRE_THAT(table.output, Contains("unreachable"));
  REQUIRE_THAT(table.output, Contains("streaming"));
  RunResult json = setup.Pgtandem({"status", "--json"});
  INFO(json.output);
  auto status = nlohmann::json::parse(json.output);
  const auto& targets = status["syncs"][0]["targets"];
  REQUIRE(targets[0]["state"] == "streaming");
  REQUIRE(targets[0]["caught_up"] == true);
  REQUIRE(targets[0]["pending_deltas"] == 0);
  REQUIRE(targets[1]["reachable"] == false);
  REQUIRE(targets[1]["pending_deltas"] == 100);

  setup.Target(1).Start();
  setup.WaitEqual(30s);
}

}  // namespace pgtandem::test

namespace pgtandem::test {

TEST_CASE("cutover --freeze by a role that is not a superuser names each grant it lacks, then freezes once granted",
          "[pg]") {
  ReplicationSetup setup("freezeprivs", 1, kSchema, R"(["public.*"])");
  setup.Source().Exec(R"(
CREATE ROLE migrator LOGIN; CREATE ROLE app LOGIN;
ALTER TABLE accounts OWNER TO migrator; ALTER TABLE ledger OWNER TO migrator;
GRANT CREATE ON DATABASE app TO migrator;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO app;)", kDatabase);
  std::string config = setup.DefaultConfig();
  Replace(config, setup.Source().Dsn(kDatabase), setup.Source().Dsn(kDatabase, "migrator"));
  setup.WriteConfig(config);
  REQUIRE(setup.Pgtandem({"install"}).exit_code == 0);
  auto insert_as_app = [&](int id) {
    setup.Source().Exec("SET ROLE app; INSERT INTO accounts VALUES (" + std::to_string(id) + ", 'app', 0)", kDatabase);
  };

  RunResult refused = setup.Pgtandem({"cutover", "--freeze"});
  INFO(refused.output);
  REQUIRE(refused.exit_code == 4);
  REQUIRE_THAT(refused.output, Contains("role \"migrator\" cannot freeze writes; nothing was changed") &&
                                   Contains("run as \"postgres\", or GRANT \"postgres\" TO \"migrator\"") &&
                                   Contains("GRANT pg_signal_backend TO \"migrator\"") &&
                                   Contains("GRANT pg_read_all_stats TO \"migrator\""));
  REQUIRE(setup.Source().Query1("SHOW default_transaction_read_only", kDatabase) == "off");

  setup.Source().Exec("ALTER DATABASE app OWNER TO migrator; GRANT pg_signal_backend, pg_read_all_stats TO migrator",
                      kDatabase);
  PGconn* idle_app = PQconnectdb(setup.Source().Dsn(kDatabase, "app").c_str());
  REQUIRE(PQstatus(idle_app) == CONNECTION_OK);
  RunResult frozen = setup.Pgtandem({"cutover", "--freeze"});
  INFO(frozen.output);
  REQUIRE(frozen.exit_code == 0);
  REQUIRE_THAT(frozen.output, Contains("ended 1 other session(s)"));
  PGresult* after = PQexec(idle_app, "SELECT 1");
  CHECK(PQresultStatus(after) != PGRES_TUPLES_OK);
  PQclear(after);
  PQfinish(idle_app);
  REQUIRE_THROWS_WITH(insert_as_app(2), Contains("read-only transaction"));
  REQUIRE(setup.Pgtandem({"cutover", "--unfreeze"}).exit_code == 0);
  insert_as_app(3);
}

}  // namespace pgtandem::test
