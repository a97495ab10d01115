// A catch-up of a million rows by a daemon whose address space is capped at
// 128 MiB: rows stream from source COPY to target COPY, never held whole.
#include <csignal>
#include <map>
#include <string>

#include <catch2/catch.hpp>

#include "support/proc_status.hpp"
#include "support/replication_setup.hpp"
#include "support/wait_until.hpp"

namespace pgtandem::test {
namespace {

using namespace std::chrono_literals;

constexpr long kRows = 1'000'000;
constexpr long kLimitBytes = 128L << 20;

}  // namespace

TEST_CASE("a backlog of a million rows catches up under a 128 MiB address-space limit (ulimit -v)", "[scenario]") {
  ReplicationSetup setup("memlimit", 1, "CREATE TABLE items (id bigint PRIMARY KEY, v integer NOT NULL);",
                         R"(["public.items"])");
  setup.WriteConfig(WithMaxRows(setup.DefaultConfig(), 1000000));
  setup.Install();
  setup.Source().Exec("INSERT INTO items SELECT i, i FROM generate_series(1, " + std::to_string(kRows) + ") i",
                      kDatabase);

  // prlimit execs the daemon in its own process: the limit and the PID are the daemon's.
  ChildProcess daemon({"prlimit", "--as=" + std::to_string(kLimitBytes), "--", PgtandemBinary(), "--config",
                       setup.ConfigPath().string(), "run"},
                      setup.Dir() / "daemon-limited.log");
  auto started = std::chrono::steady_clock::now();
  std::map<std::string, long> peaks;
  auto read_peaks = [&] {
    peaks = {{"VmPeak", ProcStatusKib(daemon.Pid(), "VmPeak")}, {"VmHWM", ProcStatusKib(daemon.Pid(), "VmHWM")}};
  };
  WaitUntil([&] {
    INFO(daemon.Output());
    REQUIRE_FALSE(daemon.TryWait().has_value());
    read_peaks();
    if (setup.Target(0).Query1("SELECT to_regclass('pgtandem.progress') IS NOT NULL", kDatabase) != "t") return false;
    return setup.Target(0).Query1("SELECT deltas FROM pgtandem.progress WHERE sync = 'app'", kDatabase) ==
           std::to_string(kRows);
  }, 180s, "a million deltas applied");
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  read_peaks();
  setup.WaitEqual(60s);
  std::fprintf(stderr, "memory limit: %ld rows caught up in %.1f s under ulimit -v %ld MiB: VmPeak %ld kB, VmHWM "
               "(peak RSS) %ld kB\n", kRows, took, kLimitBytes >> 20, peaks["VmPeak"], peaks["VmHWM"]);
  CHECK(peaks["VmPeak"] <= kLimitBytes / 1024);
  daemon.Signal(SIGTERM);
  REQUIRE(daemon.Wait(30s) == 0);
}

}  // namespace pgtandem::test
