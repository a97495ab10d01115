// A row written directly on a target, in the way of a row the source inserts:
// that target stops, names the table and the key, overwrites nothing, backs
// off instead of spinning, and resumes once the DBA removed the row.
#include <chrono>
#include <csignal>
#include <string>
#include <thread>

#include <catch2/catch.hpp>
#include <libpq-fe.h>

#include "support/replication_setup.hpp"
#include "support/wait_until.hpp"

namespace pgtandem::test {
namespace {

using namespace std::chrono_literals;

const std::string kSchema = R"(
CREATE TABLE accounts (id integer PRIMARY KEY, owner text NOT NULL, email text UNIQUE);
)";

long RolledBack(ReplicationSetup& setup) {
  return std::stol(setup.Target(0).Query1(
      "SELECT xact_rollback FROM pg_catalog.pg_stat_database WHERE datname = current_database()", kDatabase));
}

// Apply attempts the target rolled back during a few seconds of a stopped
// target: a daemon that spins makes hundreds, one that backs off a handful.
long RollbacksOver(ReplicationSetup& setup, std::chrono::seconds window) {
  setup.Target(0).Exec("SELECT pg_catalog.pg_stat_clear_snapshot()", kDatabase);
  long before = RolledBack(setup);
  std::this_thread::sleep_for(window);  // measuring a rate over a window, not waiting for a condition
  return RolledBack(setup) - before;
}

// A session of the test's own, kept open so that its cached block of delta
// ids stays with it.
class Session {
 public:
  explicit Session(const std::string& dsn) : conn_(PQconnectdb(dsn.c_str())) {
    REQUIRE(PQstatus(conn_) == CONNECTION_OK);
  }
  ~Session() { PQfinish(conn_); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  void Exec(const std::string& sql) {
    PGresult* result = PQexec(conn_, sql.c_str());
    INFO(sql << ": " << PQerrorMessage(conn_));
    bool ok = PQresultStatus(result) == PGRES_COMMAND_OK || PQresultStatus(result) == PGRES_TUPLES_OK;
    PQclear(result);
    REQUIRE(ok);
  }

 private:
  PGconn* conn_;
};

}  // namespace

TEST_CASE("a row written on the target in the way of a replicated key or unique value stops that target, "
          "overwrites nothing, and resumes once removed",
          "[scenario]") {
  ReplicationSetup setup("collision", 1, kSchema, R"(["public.accounts"])");
  setup.Install();
  ChildProcess daemon = setup.StartDaemon();
  setup.Source().Exec("INSERT INTO accounts SELECT i, 'source', 'user' || i || '@example.com' "
                      "FROM generate_series(1, 100) i",
                      kDatabase);
  setup.WaitEqual(60s);

  SECTION("the same primary key") {
    setup.Target(0).Exec("INSERT INTO accounts VALUES (1000, 'written on the target', NULL)", kDatabase);
    setup.Source().Exec("INSERT INTO accounts VALUES (1000, 'source', 'new@example.com'), (1001, 'source', NULL)",
                        kDatabase);
    WaitUntil([&] { return setup.LastError().find("(id)=(1000)") != std::string::npos; }, 30s,
              "the target to stop on key 1000");
    std::string error = setup.LastError();
    INFO(error);
    CHECK(error.find("table public.accounts") != std::string::npos);
    CHECK(error.find("Key (id)=(1000) already exists") != std::string::npos);
    CHECK(error.find("written there directly") != std::string::npos);
    CHECK(setup.Target(0).Query1("SELECT owner FROM accounts WHERE id = 1000", kDatabase) == "written on the target");
    // The whole batch waits: nothing after the collision was applied either.
    CHECK(setup.Target(0).Query1("SELECT count(*) FROM accounts WHERE id = 1001", kDatabase) == "0");
    long attempts = RollbacksOver(setup, 4s);
    INFO("apply attempts in 4 s: " << attempts);
    CHECK(attempts <= 10);
    CHECK(setup.Target(0).Query1("SELECT owner FROM accounts WHERE id = 1000", kDatabase) == "written on the target");

    setup.Target(0).Exec("DELETE FROM accounts WHERE id = 1000", kDatabase);
  }

  SECTION("a unique column other than the key") {
    setup.Target(0).Exec("INSERT INTO accounts VALUES (2000, 'written on the target', 'taken@example.com')", kDatabase);
    setup.Source().Exec("INSERT INTO accounts VALUES (3000, 'source', 'taken@example.com')", kDatabase);
    WaitUntil([&] { return setup.LastError().find("taken@example.com") != std::string::npos; }, 30s,
              "the target to stop on the unique email");
    std::string error = setup.LastError();
    INFO(error);
    CHECK(error.find("table public.accounts") != std::string::npos);
    CHECK(error.find("accounts_email_key") != std::string::npos);
    CHECK(error.find("Key (email)=(taken@example.com) already exists") != std::string::npos);
    CHECK(setup.Target(0).Query1("SELECT owner FROM accounts WHERE id = 2000", kDatabase) == "written on the target");

    setup.Target(0).Exec("DELETE FROM accounts WHERE id = 2000", kDatabase);
  }

  setup.WaitEqual(60s);
  WaitUntil([&] { return setup.LastError().empty(); }, 30s, "the error to clear once the target resumed");
  daemon.Signal(SIGTERM);
  REQUIRE(daemon.Wait(30s) == 0);
}

TEST_CASE("keys inserted, deleted and inserted again on the source, in one batch and across batches, are no collision",
          "[scenario]") {
  ReplicationSetup setup("reinsert", 1, kSchema, R"(["public.accounts"])");
  setup.Install();
  setup.Source().Exec("INSERT INTO accounts SELECT i, 'first', NULL FROM generate_series(1, 50) i", kDatabase);
  setup.Source().Exec("DELETE FROM accounts WHERE id <= 25", kDatabase);
  setup.Source().Exec("INSERT INTO accounts SELECT i, 'second', NULL FROM generate_series(1, 25) i", kDatabase);
  setup.Source().Exec("UPDATE accounts SET id = id + 1000 WHERE id > 40", kDatabase);
  setup.Source().Exec("INSERT INTO accounts SELECT i, 'third', NULL FROM generate_series(41, 50) i", kDatabase);
  ChildProcess daemon = setup.StartDaemon();
  setup.WaitEqual(60s);
  setup.Source().Exec("DELETE FROM accounts WHERE id > 1000", kDatabase);
  setup.WaitEqual(60s);
  setup.Source().Exec("INSERT INTO accounts SELECT i, 'fourth', NULL FROM generate_series(1041, 1050) i", kDatabase);
  setup.WaitEqual(60s);
  CHECK(setup.LastError().empty());
  daemon.Signal(SIGTERM);
  REQUIRE(daemon.Wait(30s) == 0);
}

TEST_CASE("a key deleted in one session and inserted again in another, whose cached delta ids are lower, is no "
          "collision",
          "[scenario]") {
  ReplicationSetup setup("reinsert-cached", 1, kSchema, R"(["public.accounts"])");
  setup.Install();
  setup.Source().Exec("INSERT INTO accounts SELECT i, 'first', NULL FROM generate_series(1, 10) i", kDatabase);
  ChildProcess daemon = setup.StartDaemon();
  setup.WaitEqual(60s);
  daemon.Signal(SIGTERM);
  REQUIRE(daemon.Wait(30s) == 0);

  // Each session caches its own block of pgtandem.delta_seq: the delete gets
  // an id above the later insert's.
  Session early(setup.Source().Dsn(kDatabase));
  Session late(setup.Source().Dsn(kDatabase));
  early.Exec("UPDATE accounts SET owner = 'early' WHERE id = 1");
  late.Exec("UPDATE accounts SET owner = 'late' WHERE id = 2");
  late.Exec("DELETE FROM accounts WHERE id = 7");
  early.Exec("INSERT INTO accounts VALUES (7, 'inserted again', NULL)");
  REQUIRE(setup.Source().Query1("SELECT bool_and(s.seq > i.seq) FROM pgtandem.d_1 s, pgtandem.d_1 i "
                                "WHERE s.id = 7 AND NOT s.inserted AND i.id = 7 AND i.inserted",
                                kDatabase) == "t");

  ChildProcess again = setup.StartDaemon();
  setup.WaitEqual(60s);
  CHECK(setup.LastError().empty());
  again.Signal(SIGTERM);
  REQUIRE(again.Wait(30s) == 0);
}

}  // namespace pgtandem::test
