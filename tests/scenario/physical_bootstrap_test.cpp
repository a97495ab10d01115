// Physical-copy bootstrapping: a pg_basebackup of the source, started as a server of its own, catches up.
#include <csignal>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include <catch2/catch.hpp>
#include <libpq-fe.h>

#include "support/random_workload.hpp"
#include "support/replication_setup.hpp"
#include "support/test_seed.hpp"
#include "support/wait_until.hpp"

namespace pgtandem::test {
namespace {

using namespace std::chrono_literals;
using Catch::Matchers::Contains;

std::string CaptureTriggers(const PgCluster& cluster) {
  return cluster.Query1("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'pgtandem%'", kDatabase);
}

// One session of its own, for a transaction the test holds open.
class Session {
 public:
  explicit Session(const std::string& dsn) : conn_(PQconnectdb(dsn.c_str())) {
    if (PQstatus(conn_) != CONNECTION_OK) {
      std::string error = PQerrorMessage(conn_);
      PQfinish(conn_);
      throw std::runtime_error(error);
    }
  }
  ~Session() { PQfinish(conn_); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  void Exec(const std::string& sql) {
    PGresult* result = PQexec(conn_, sql.c_str());
    std::string error = PQresultStatus(result) == PGRES_COMMAND_OK ? "" : PQresultErrorMessage(result);
    PQclear(result);
    if (!error.empty()) throw std::runtime_error(error + "SQL: " + sql);
  }

 private:
  PGconn* conn_;
};

}  // namespace

TEST_CASE("a physical copy (pg_basebackup of the source cluster, started as its own server) is bootstrapped and "
          "caught up under load",
          "[scenario]") {
  uint64_t seed = TestSeed("physical copy under load");
  // Target t0 is in the sync's config from the start, so the source keeps
  // every delta for it; the cluster the setup made for it is replaced by the
  // copy before bootstrap.
  ReplicationSetup setup("physical", 1, kSampleSchema, kSampleTables, {}, true);
  setup.Install();
  // No TRUNCATE in this load: a transaction that only truncates and commits
  // across the copy's end point is lost by bootstrap's derivation (it writes
  // no delta row; see the hidden test below). With TRUNCATEs in the load this
  // test failed about one run in 18, on table scratch.
  RandomWorkload load(setup.Source().Dsn(kDatabase), seed, 3, false);
  std::this_thread::sleep_for(2s);

  std::unique_ptr<PgCluster> copy = PgCluster::FromBaseBackup(setup.Source(), "physical-copy");
  REQUIRE(copy->Port() != setup.Source().Port());
  REQUIRE(copy->Query1("SELECT pg_is_in_recovery()") == "f");
  // A physical copy: the source's system identifier, and its capture schema and triggers, enabled.
  REQUIRE(copy->Query1("SELECT system_identifier FROM pg_control_system()") ==
          setup.Source().Query1("SELECT system_identifier FROM pg_control_system()"));
  REQUIRE(CaptureTriggers(*copy) != "0");
  std::this_thread::sleep_for(1s);  // the source moves on past the copy
  setup.ReplaceTarget(0, std::move(copy));

  RunResult bootstrapped = setup.Pgtandem({"bootstrap", "--target", "t0"});
  INFO(bootstrapped.output);
  REQUIRE(bootstrapped.exit_code == 0);
  REQUIRE_THAT(bootstrapped.output, Contains("restored copy of the delta tables"));
  REQUIRE(CaptureTriggers(setup.Target(0)) == "0");
  REQUIRE(setup.Target(0).Query1("SELECT count(*) FROM pgtandem.progress WHERE sync = 'app'", kDatabase) == "1");

  ChildProcess daemon = setup.StartDaemon();
  std::this_thread::sleep_for(3s);
  load.Stop();
  REQUIRE(load.Committed() > 0);
  setup.WaitEqual(90s);
  RunResult caught_up = setup.Pgtandem({"status", "--wait-caught-up", "--timeout", "30"});
  INFO(caught_up.output);
  REQUIRE(caught_up.exit_code == 0);
  daemon.Signal(SIGTERM);
  REQUIRE(daemon.Wait(60s) == 0);
}

// A physical copy holds every transaction whose commit reached the WAL before
// the copy's end, not an MVCC snapshot. A transaction that only TRUNCATEs
// writes no delta row, only pgtandem.truncate_log; one that got its txid
// before a transaction in the copy and commits after the copy must still be
// applied.
TEST_CASE("a TRUNCATE committed across a base backup's end point reaches the target",
          "[scenario]") {
  ReplicationSetup setup("phystrunc", 1, kSampleSchema, kSampleTables, {}, true);
  setup.Install();
  setup.Source().Exec("INSERT INTO scratch SELECT g, 'before' FROM generate_series(1, 10) g", kDatabase);
  Session truncating(setup.Source().Dsn(kDatabase));
  truncating.Exec("BEGIN");
  truncating.Exec("TRUNCATE scratch");  // takes its txid now
  setup.Source().Exec("INSERT INTO gen VALUES (1, 1)", kDatabase);  // a later txid, committed before the copy
  std::unique_ptr<PgCluster> copy = PgCluster::FromBaseBackup(setup.Source(), "phystrunc-copy");
  truncating.Exec("COMMIT");
  REQUIRE(copy->Query1("SELECT count(*) FROM scratch", kDatabase) == "10");
  setup.ReplaceTarget(0, std::move(copy));
  RunResult bootstrapped = setup.Pgtandem({"bootstrap", "--target", "t0"});
  INFO(bootstrapped.output);
  REQUIRE(bootstrapped.exit_code == 0);
  ChildProcess daemon = setup.StartDaemon();
  setup.WaitEqual(30s);
}

TEST_CASE("writes made on a restored copy before bootstrap are refused, not mistaken for the source's", "[scenario]") {
  ReplicationSetup setup("physwrite", 1, kSampleSchema, kSampleTables, {}, true);
  setup.Install();
  setup.Source().Exec("INSERT INTO scratch VALUES (1, 'on the source')", kDatabase);
  std::unique_ptr<PgCluster> copy = PgCluster::FromBaseBackup(setup.Source(), "physwrite-copy");
  copy->Exec("INSERT INTO scratch VALUES (2, 'written on the copy')", kDatabase);
  setup.ReplaceTarget(0, std::move(copy));
  RunResult refused = setup.Pgtandem({"bootstrap", "--target", "t0"});
  INFO(refused.output);
  REQUIRE(refused.exit_code == 6);
  REQUIRE_THAT(refused.output, Contains("holds captured changes the source never made"));
}

}  // namespace pgtandem::test
