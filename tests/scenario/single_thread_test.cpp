// daemon.threads = 1 under a stream of commits: every task shares one thread,
// so a wait that never yields would starve them all and ignore SIGTERM.
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include <catch2/catch.hpp>

#include "support/random_workload.hpp"
#include "support/replication_setup.hpp"
#include "support/test_seed.hpp"

namespace pgtandem::test {
namespace {

using namespace std::chrono_literals;

// User plus system CPU time the process has used, in seconds, from /proc/<pid>/stat.
double CpuSeconds(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  // The command name may hold spaces: fields are counted from after its ')'.
  std::istringstream fields(line.substr(line.rfind(')') + 2));
  std::string field;
  long utime = 0;
  long stime = 0;
  for (int i = 3; fields >> field; ++i) {
    if (i == 14) utime = std::stol(field);
    if (i == 15) {
      stime = std::stol(field);
      break;
    }
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace

TEST_CASE("with daemon.threads = 1 the daemon replicates a steady load, idles at no CPU after it, and stops on SIGTERM",
          "[scenario]") {
  uint64_t seed = TestSeed("single thread");
  ReplicationSetup setup("single-thread", 1, kSampleSchema, kSampleTables);
  setup.WriteConfig(WithDaemonSettings(setup.DefaultConfig(), R"("threads": 1)"));
  setup.Install();
  ChildProcess daemon = setup.StartDaemon();
  RandomWorkload load(setup.Source().Dsn(kDatabase), seed, 4, false);
  RunLoad(daemon, 8s);
  load.Stop();
  setup.WaitEqual(60s);

  // Nothing left to do: the daemon waits on its sockets and timers.
  double before = CpuSeconds(daemon.Pid());
  std::this_thread::sleep_for(3s);
  double idle = CpuSeconds(daemon.Pid()) - before;
  INFO(daemon.Output());
  CHECK(idle < 0.3);

  daemon.Signal(SIGTERM);
  REQUIRE(daemon.Wait(10s) == 0);
}

}  // namespace pgtandem::test
