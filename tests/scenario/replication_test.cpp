// The daemon against real clusters under a random write load: every target ends equal to the source.
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <random>
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

}  // namespace

TEST_CASE("a random workload with concurrent writers reaches two targets equal", "[scenario]") {
  uint64_t seed = TestSeed("random workload, two targets");
  ReplicationSetup setup("random", 2, kSampleSchema, kSampleTables);
  setup.Install();
  ChildProcess daemon = setup.StartDaemon();
  RandomWorkload load(setup.Source().Dsn(kDatabase), seed, 4);
  RunLoad(daemon, 8s);
  load.Stop();
  REQUIRE(load.Committed() > 100);
  setup.WaitEqual(60s);
  // Purging keeps the delta tables small once every target has applied them.
  WaitUntil([&] {
    return setup.Source().Query1("SELECT sum(n_live_tup) < 1000 FROM pg_stat_user_tables WHERE schemaname = 'pgtandem' "
                                 "AND relname LIKE 'd\\_%'", kDatabase) == "t" ||
           setup.Source().Query1("SELECT (SELECT count(*) FROM pgtandem.d_1) + (SELECT count(*) FROM pgtandem.d_2)",
                                 kDatabase) == "0";
  }, 30s, "applied deltas to be purged");
  daemon.Signal(SIGTERM);
  REQUIRE(daemon.Wait(30s) == 0);
}

TEST_CASE("the daemon killed with SIGKILL at random moments still ends with equal targets", "[scenario]") {
  uint64_t seed = TestSeed("kill -9");
  std::mt19937_64 rng(seed);
  ReplicationSetup setup("kill9", 1, kSampleSchema, kSampleTables);
  setup.Install();
  RandomWorkload load(setup.Source().Dsn(kDatabase), seed, 3);
  for (int kill = 0; kill < 6; ++kill) {
    ChildProcess daemon = setup.StartDaemon();
    RunLoad(daemon, std::chrono::milliseconds(300 + rng() % 1500));
    daemon.Signal(SIGKILL);
    daemon.Wait(10s);
  }
  load.Stop();
  ChildProcess daemon = setup.StartDaemon();
  setup.WaitEqual(90s);
  daemon.Signal(SIGTERM);
  REQUIRE(daemon.Wait(30s) == 0);
}

TEST_CASE("a target that is down does not hold back the other, and catches up when back", "[scenario]") {
  uint64_t seed = TestSeed("target down");
  ReplicationSetup setup("down", 2, kSampleSchema, kSampleTables);
  setup.Install();
  ChildProcess daemon = setup.StartDaemon();
  RandomWorkload load(setup.Source().Dsn(kDatabase), seed, 3);
  RunLoad(daemon, 2s);
  setup.Target(1).Stop("immediate");
  long before = setup.AppliedBatches(0);
  WaitUntil([&] { return setup.AppliedBatches(0) >= before + 5; }, 30s, "target t0 to keep applying while t1 is down");
  load.Stop();
  setup.WaitEqual(60s, {0});
  setup.Target(1).Start();
  setup.WaitEqual(60s);
  daemon.Signal(SIGTERM);
  REQUIRE(daemon.Wait(30s) == 0);
}

TEST_CASE("a transaction that began first and commits after several batches is not skipped", "[scenario]") {
  ReplicationSetup setup("late", 1, kSampleSchema, kSampleTables);
  setup.Install();
  ChildProcess daemon = setup.StartDaemon();
  PGconn* late = PQconnectdb(setup.Source().Dsn(kDatabase).c_str());
  REQUIRE(PQstatus(late) == CONNECTION_OK);
  PQclear(PQexec(late, "BEGIN"));
  PQclear(PQexec(late, "INSERT INTO scratch VALUES (-1, 'late')"));
  long before = setup.AppliedBatches(0);
  for (int i = 0; i < 5; ++i) {
    setup.Source().Exec("INSERT INTO scratch VALUES (" + std::to_string(10000 + i) + ", 'early')", kDatabase);
    WaitUntil([&] { return setup.AppliedBatches(0) > before + i; }, 20s, "the early commit to be applied");
  }
  REQUIRE(setup.Target(0).Query1("SELECT count(*) FROM scratch WHERE id >= 10000", kDatabase) == "5");
  PGresult* committed = PQexec(late, "COMMIT");
  REQUIRE(PQresultStatus(committed) == PGRES_COMMAND_OK);
  PQclear(committed);
  PQfinish(late);
  setup.WaitEqual(30s);
  REQUIRE(setup.Target(0).Query1("SELECT v FROM scratch WHERE id = -1", kDatabase) == "late");
  daemon.Signal(SIGTERM);
  REQUIRE(daemon.Wait(30s) == 0);
}

}  // namespace pgtandem::test

namespace pgtandem::test {

TEST_CASE("an idle daemon applies a commit within milliseconds, woken by NOTIFY rather than polling", "[scenario]") {
  using namespace std::chrono_literals;
  ReplicationSetup setup("notify", 1, kSampleSchema, kSampleTables);
  std::string config = setup.DefaultConfig();
  config.replace(config.find("\"poll_interval_ms\": 200"), 23, "\"poll_interval_ms\": 60000");
  setup.WriteConfig(config);
  REQUIRE(setup.Pgtandem({"install"}).exit_code == 0);
  ChildProcess daemon = setup.StartDaemon();
  setup.Source().Exec("INSERT INTO scratch VALUES (1, 'warm-up')", kDatabase);
  WaitUntil([&] { return setup.Target(0).Query1("SELECT count(*) FROM scratch", kDatabase) == "1"; }, 90s,
            "the first row, once the listener is up");
  std::vector<double> latencies;
  for (int i = 2; i <= 6; ++i) {
    auto committed = std::chrono::steady_clock::now();
    setup.Source().Exec("INSERT INTO scratch VALUES (" + std::to_string(i) + ", 'x')", kDatabase);
    WaitUntil([&] { return setup.Target(0).Query1("SELECT count(*) FROM scratch", kDatabase) == std::to_string(i); },
              5s, "a commit to reach the target without waiting for the 60 s poll");
    latencies.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - committed).count());
  }
  std::sort(latencies.begin(), latencies.end());
  std::printf("commit-to-visible latency, idle daemon: median %.1f ms, max %.1f ms\n", latencies[2], latencies[4]);
  REQUIRE(latencies[2] < 500);
}

}  // namespace pgtandem::test
