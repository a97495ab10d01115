// DDL on a replicated table while the daemon runs: the sync that replicates
// it stops before applying a wrong batch, says what differs and how to fix
// it, resumes by itself once both nodes match; other syncs go on.
#include <csignal>
#include <string>

#include <catch2/catch.hpp>
#include <libpq-fe.h>
#include <nlohmann/json.hpp>

#include "support/replication_setup.hpp"
#include "support/wait_until.hpp"

namespace pgtandem::test {
namespace {

using namespace std::chrono_literals;
using Catch::Matchers::Contains;

const std::string kSchema = R"(
CREATE TABLE orders (id integer PRIMARY KEY, amount integer NOT NULL);
CREATE TABLE events (id integer PRIMARY KEY, what text);
)";

// One long-lived application session, as a connection pool keeps it.
class AppSession {
 public:
  explicit AppSession(const PgCluster& cluster) : conn_(PQconnectdb(cluster.Dsn(kDatabase).c_str())) {
    REQUIRE(PQstatus(conn_) == CONNECTION_OK);
  }
  ~AppSession() { PQfinish(conn_); }
  AppSession(const AppSession&) = delete;
  AppSession& operator=(const AppSession&) = delete;

  // The server's error for `sql`, "" when it succeeds.
  std::string Error(const std::string& sql) {
    PGresult* result = PQexec(conn_, sql.c_str());
    std::string error = PQresultStatus(result) == PGRES_COMMAND_OK ? "" : PQresultErrorMessage(result);
    PQclear(result);
    return error;
  }

 private:
  PGconn* conn_;
};

}  // namespace

TEST_CASE("a column added on the source stops its sync until the target has it too, other syncs go on", "[scenario]") {
  ReplicationSetup setup("drift", 1, kSchema, R"(["public.orders"])");
  std::string config = setup.DefaultConfig();
  std::string first_sync = R"("tables": ["public.orders"] })";
  REQUIRE(config.find(first_sync) != std::string::npos);
  config.replace(config.find(first_sync), first_sync.size(),
                 first_sync + R"(, { "name": "other", "source": "source", "targets": ["t0"], "tables": ["public.events"] })");
  setup.WriteConfig(config);
  setup.Install();
  ChildProcess daemon = setup.StartDaemon();
  setup.Source().Exec("INSERT INTO orders SELECT i, i FROM generate_series(1, 100) i", kDatabase);
  setup.WaitEqual(60s);

  setup.Source().Exec("ALTER TABLE orders ADD COLUMN note text NOT NULL DEFAULT 'none'", kDatabase);
  setup.Source().Exec("UPDATE orders SET note = 'vip', amount = amount + 1 WHERE id <= 10", kDatabase);
  WaitUntil([&] { return setup.LastError().find("note") != std::string::npos; }, 30s,
            "sync app to record why it stopped");
  std::string error = setup.LastError();
  INFO(error);
  CHECK(error.find("table public.orders: column \"note\" (text) is missing on the target") != std::string::npos);
  CHECK(error.find("resumes by itself") != std::string::npos);
  // Nothing of the changed table was applied with the old column list.
  CHECK(setup.Target(0).Query1("SELECT sum(amount) FROM orders", kDatabase) == "5050");

  setup.Source().Exec("INSERT INTO events VALUES (1, 'still replicating')", kDatabase);
  WaitUntil([&] { return setup.Target(0).Query1("SELECT count(*) FROM events", kDatabase) == "1"; }, 30s,
            "sync other to go on");

  setup.Target(0).Exec("ALTER TABLE orders ADD COLUMN note text NOT NULL DEFAULT 'none'", kDatabase);
  setup.WaitEqual(60s);
  CHECK(setup.Target(0).Query1("SELECT count(*) FROM orders WHERE note = 'vip'", kDatabase) == "10");
  WaitUntil([&] { return setup.LastError().empty(); }, 30s, "the error to clear once the sync resumed");

  // A type changed on the target alone stops the sync the same way.
  setup.Target(0).Exec("ALTER TABLE orders ALTER COLUMN amount TYPE bigint", kDatabase);
  setup.Source().Exec("UPDATE orders SET amount = amount + 1 WHERE id = 50", kDatabase);
  WaitUntil([&] { return setup.LastError().find("amount") != std::string::npos; }, 30s,
            "sync app to stop on the type change");
  CHECK(setup.LastError().find("column \"amount\" is integer on the source but bigint on the target") !=
        std::string::npos);
  setup.Source().Exec("ALTER TABLE orders ALTER COLUMN amount TYPE bigint", kDatabase);
  setup.WaitEqual(60s);

  daemon.Signal(SIGTERM);
  REQUIRE(daemon.Wait(30s) == 0);
}

TEST_CASE("a new table matching a sync's patterns is reported as not captured until install captures it",
          "[scenario]") {
  ReplicationSetup setup("newtable", 1, kSchema, R"(["public.*"])");
  setup.Install();
  ChildProcess daemon = setup.StartDaemon();
  const std::string ddl = "CREATE TABLE invoices (id integer PRIMARY KEY, total numeric NOT NULL)";
  setup.Source().Exec(ddl, kDatabase);
  setup.Target(0).Exec(ddl, kDatabase);

  RunResult text = setup.Pgtandem({"status"});
  INFO(text.output);
  CHECK(text.output.find("sync app: 1 table(s) match the sync's patterns but are not captured, so their changes are "
                         "not replicated: public.invoices; run \"pgtandem install --sync app\" to capture them") !=
        std::string::npos);
  RunResult json = setup.Pgtandem({"status", "--json"});
  auto syncs = nlohmann::json::parse(json.output.substr(json.output.find('{')))["syncs"];
  CHECK(syncs[0]["not_captured"] == nlohmann::json::array({"public.invoices"}));

  RunResult installed = setup.Pgtandem({"install"});
  INFO(installed.output);
  REQUIRE(installed.exit_code == 0);
  CHECK(installed.output.find("added    public.invoices") != std::string::npos);
  json = setup.Pgtandem({"status", "--json"});
  syncs = nlohmann::json::parse(json.output.substr(json.output.find('{')))["syncs"];
  CHECK(syncs[0]["not_captured"].empty());
  CHECK(setup.Pgtandem({"status"}).output.find("not captured") == std::string::npos);

  // The running daemon picks the new table up.
  setup.Source().Exec("INSERT INTO invoices SELECT i, i * 1.5 FROM generate_series(1, 200) i", kDatabase);
  setup.Source().Exec("INSERT INTO orders SELECT i, i FROM generate_series(1, 10) i", kDatabase);
  setup.WaitEqual(60s);
  daemon.Signal(SIGTERM);
  REQUIRE(daemon.Wait(30s) == 0);
}

TEST_CASE("after a key column's type change on the source, install widens the delta table's key and a session "
          "that wrote before the change writes again (at once with the C capture)",
          "[scenario]") {
  ReplicationSetup setup("keytype", 1, kSchema, R"(["public.orders"])");
  const bool c_capture = GENERATE(false, true);
  const std::string plpgsql = WithCapture(setup.DefaultConfig(), R"(, "capture": "plpgsql")");
  setup.WriteConfig(c_capture ? WithCCapture(plpgsql) : plpgsql);
  setup.Install();
  ChildProcess daemon = setup.StartDaemon();
  AppSession app(setup.Source());
  REQUIRE(app.Error("INSERT INTO orders SELECT i, i FROM generate_series(1, 100) i") == "");
  REQUIRE(app.Error("UPDATE orders SET amount = amount + 1 WHERE id <= 10") == "");
  setup.WaitEqual(60s);

  // The runbook's order for DDL: every target first, then the source.
  setup.Target(0).Exec("ALTER TABLE orders ALTER COLUMN id TYPE bigint", kDatabase);
  setup.Source().Exec("ALTER TABLE orders ALTER COLUMN id TYPE bigint", kDatabase);
  const std::string update = "UPDATE orders SET amount = amount + 1 WHERE id <= 20";
  const std::string big_key = "INSERT INTO orders VALUES (3000000000, 1)";
  INFO(daemon.Output());
  if (c_capture) {
    CHECK(app.Error(update) == "");
    WaitUntil([&] { return daemon.Output().find("run \"pgtandem install\" now") != std::string::npos; }, 30s,
              "the daemon to ask for install once both nodes agree on the key's new type");
    CHECK_THAT(daemon.Output(), Contains("id is bigint, its delta column integer"));
  } else {
    // PL/pgSQL keeps the plan it made for the old type for as long as the session lives.
    CHECK_THAT(app.Error(update), Contains("does not match that when preparing the plan"));
  }
  // The delta table still has the old type.
  CHECK_THAT(app.Error(big_key), Contains("out of range") || Contains("does not match"));
  setup.Install();
  CHECK(app.Error(update) == "");
  CHECK(app.Error(big_key) == "");
  REQUIRE(app.Error("INSERT INTO orders VALUES (101, 1)") == "");
  setup.WaitEqual(60s);
  CHECK(setup.Target(0).Query1("SELECT sum(amount) FROM orders", kDatabase) ==
        setup.Source().Query1("SELECT sum(amount) FROM orders", kDatabase));
  daemon.Signal(SIGTERM);
  REQUIRE(daemon.Wait(30s) == 0);
}

}  // namespace pgtandem::test
