// pgtandem cutover: writes frozen under load, the target equal and safe, writes let back in; and when it refuses.
#include <csignal>
#include <cstdio>
#include <regex>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/random_workload.hpp"
#include "support/replication_setup.hpp"
#include "support/table_lock.hpp"
#include "support/test_seed.hpp"
#include "support/wait_until.hpp"

namespace pgtandem::test {
namespace {

using namespace std::chrono_literals;
using Catch::Matchers::Contains;

RunResult Pgtandem(ReplicationSetup& setup, std::vector<std::string> args) {
  RunResult result = setup.Pgtandem(std::move(args));
  UNSCOPED_INFO(result.output);
  return result;
}

// "writes frozen for 0.42 s" in the marker.
double FrozenSeconds(const std::string& output) {
  std::smatch match;
  REQUIRE(std::regex_search(output, match, std::regex(R"(writes frozen for +([0-9.]+) s)")));
  return std::stod(match[1]);
}

void RequireWritesRefused(PgCluster& source) {
  REQUIRE_THROWS_WITH(source.Exec("INSERT INTO scratch VALUES (900001, 'frozen?')", kDatabase),
                      Contains("cannot execute INSERT in a read-only transaction"));
}

}  // namespace

TEST_CASE(
    "cutover --freeze under a write load leaves the target equal, sequences synced, writes refused until "
    "--unfreeze",
    "[scenario]") {
  uint64_t seed = TestSeed("cutover under load");
  ReplicationSetup setup("cutover", 1, kSampleSchema, kSampleTables);
  REQUIRE(Pgtandem(setup, {"install"}).exit_code == 0);
  ChildProcess daemon = setup.StartDaemon();
  RandomWorkload load(setup.Source().Dsn(kDatabase), seed, 3);
  WaitUntil([&] { return load.Committed() > 200 && setup.AppliedBatches(0) > 3; }, 60s, "the load to be replicated");

  RunResult cutover = Pgtandem(setup, {"cutover", "--sync", "app", "--target", "t0", "--freeze", "--grace", "2"});
  REQUIRE(cutover.exit_code == 0);
  REQUIRE_THAT(cutover.output, Contains("1/5 writes frozen") && Contains("5/5 the marker") &&
                                   Contains("source WAL position") && Contains("target 't0' is safe to promote"));
  std::printf("cutover --freeze under load: writes frozen for %.2f s\n", FrozenSeconds(cutover.output));
  // The freeze ended the writers' sessions, as it would an application's pool.
  REQUIRE_THROWS_WITH(load.Stop(), Contains("workload writer failed"));
  REQUIRE(setup.DifferingTables(0).empty());
  REQUIRE(Pgtandem(setup, {"sequences", "check", "--target", "t0"}).exit_code == 0);
  RequireWritesRefused(setup.Source());
  nlohmann::json status = nlohmann::json::parse(Pgtandem(setup, {"status", "--json"}).output);
  REQUIRE(status["syncs"][0]["freeze"]["frozen_by"] == "app");
  REQUIRE(status["syncs"][0]["targets"][0]["caught_up"] == true);

  RunResult unfrozen = Pgtandem(setup, {"cutover", "--unfreeze"});
  REQUIRE(unfrozen.exit_code == 0);
  REQUIRE_THAT(unfrozen.output, Contains("writes let back in"));
  setup.Source().Exec("INSERT INTO scratch VALUES (900001, 'unfrozen')", kDatabase);
  REQUIRE(Pgtandem(setup, {"cutover", "--unfreeze"}).output.find("nothing to undo") != std::string::npos);

  // Idle and caught up, the freeze is short.
  REQUIRE(Pgtandem(setup, {"status", "--wait-caught-up", "--timeout", "30"}).exit_code == 0);
  RunResult idle = Pgtandem(setup, {"cutover", "--freeze"});
  REQUIRE(idle.exit_code == 0);
  double frozen = FrozenSeconds(idle.output);
  std::printf("cutover --freeze, idle daemon caught up: writes frozen for %.2f s\n", frozen);
  REQUIRE(frozen < 5.0);
  REQUIRE(setup.Target(0).Query1("SELECT v FROM scratch WHERE id = 900001", kDatabase) == "unfrozen");
  REQUIRE(Pgtandem(setup, {"cutover", "--unfreeze"}).exit_code == 0);
  daemon.Signal(SIGTERM);
  REQUIRE(daemon.Wait(30s) == 0);
}

TEST_CASE("cutover refuses to call a target safe while it cannot catch up, and says why", "[scenario]") {
  ReplicationSetup setup("cutoverno", 1, kSampleSchema, kSampleTables);
  REQUIRE(Pgtandem(setup, {"install"}).exit_code == 0);
  setup.Source().Exec("INSERT INTO customers (name) VALUES ('pending')", kDatabase);

  // No daemon applies the pending change.
  RunResult no_daemon = Pgtandem(setup, {"cutover"});
  REQUIRE(no_daemon.exit_code == 6);
  REQUIRE_THAT(no_daemon.output, Contains("no daemon runs sync 'app': start it"));

  // The daemon runs, but the target is stuck behind a lock: --max-wait ends it.
  auto lock = std::make_unique<TableLock>(setup.Target(0), kDatabase, "customers");
  ChildProcess daemon = setup.StartDaemon();
  // Until it holds the sync's lock, cutover would find no daemon running it.
  WaitUntil([&] { return daemon.Output().find("holds the sync's lock") != std::string::npos; }, 30s,
            "the daemon to take the sync's lock");
  RunResult stuck = Pgtandem(setup, {"cutover", "--freeze", "--max-wait", "2"});
  REQUIRE(stuck.exit_code == 7);
  REQUIRE_THAT(stuck.output, Contains("has not applied every change within --max-wait 2 s"));
  RequireWritesRefused(setup.Source());
  lock.reset();
  RunResult retried = Pgtandem(setup, {"cutover", "--freeze"});
  REQUIRE(retried.exit_code == 0);
  REQUIRE_THAT(retried.output, Contains("an earlier cutover"));
  REQUIRE(Pgtandem(setup, {"cutover", "--unfreeze"}).exit_code == 0);
  daemon.Signal(SIGTERM);
  REQUIRE(daemon.Wait(30s) == 0);
}

}  // namespace pgtandem::test
