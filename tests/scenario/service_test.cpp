// pgtandem run as a service: systemd notifications, SIGHUP reloads under load, and two daemons taking turns.
#include <sys/socket.h>
#include <sys/un.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <regex>
#include <set>
#include <thread>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "support/http_request.hpp"
#include "support/port_lock.hpp"
#include "support/random_workload.hpp"
#include "support/replication_setup.hpp"
#include "support/test_seed.hpp"
#include "support/wait_until.hpp"

namespace pgtandem::test {
namespace {

using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using Clock = std::chrono::steady_clock;

void WaitForLog(ChildProcess& daemon, const std::string& text, std::chrono::milliseconds deadline) {
  try {
    WaitUntil([&] { return daemon.Output().find(text) != std::string::npos; }, deadline, text);
  } catch (const std::exception& e) {
    FAIL(e.what() << "\n" << LastLines(daemon.Output(), 40));
  }
}

// The ids of the batches a daemon logged as applied ("applied batch N: ..." at debug level).
std::vector<long> AppliedBatchIds(const std::string& log) {
  static const std::regex applied(R"(applied batch (\d+):)");
  std::vector<long> ids;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), applied); it != std::sregex_iterator(); ++it) {
    ids.push_back(std::stol((*it)[1].str()));
  }
  return ids;
}

// The service manager's end of NOTIFY_SOCKET: a datagram socket bound to a path.
class NotifySocket {
 public:
  explicit NotifySocket(std::filesystem::path path) : path_(std::move(path)) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    REQUIRE(path_.string().size() < sizeof(address.sun_path));
    std::snprintf(address.sun_path, sizeof(address.sun_path), "%s", path_.c_str());
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  }
  ~NotifySocket() { close(fd_); }

  const std::filesystem::path& Path() const { return path_; }

  // The next message, with when it arrived; nullopt after `timeout`.
  std::optional<std::pair<Clock::time_point, std::string>> Receive(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
    char buffer[4096];
    ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
    if (n < 0) return std::nullopt;
    return std::make_pair(Clock::now(), std::string(buffer, static_cast<size_t>(n)));
  }

  // Waits for a message holding `line` as one of its lines; throws naming what came instead.
  std::string WaitFor(const std::string& line, std::chrono::milliseconds timeout) {
    auto until = Clock::now() + timeout;
    std::vector<std::string> seen;
    while (Clock::now() < until) {
      auto message = Receive(std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()));
      if (!message) break;
      if (("\n" + message->second + "\n").find("\n" + line + "\n") != std::string::npos) return message->second;
      seen.push_back(message->second);
    }
    FAIL("no " << line << " within " << timeout.count() << " ms; got " << seen.size() << " other message(s)"
               << (seen.empty() ? "" : ", the last: " + seen.back()));
    return {};
  }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

}  // namespace

TEST_CASE("the daemon tells systemd it is ready, pings the watchdog, and reports reloads and stopping",
          "[scenario]") {
  ReplicationSetup setup("notify", 1, kSampleSchema, kSampleTables);
  setup.Install();
  NotifySocket notify(setup.Dir() / "notify.sock");
  // WATCHDOG_USEC 400 ms: a ping every 200 ms.
  setup.SetEnvironment({{"NOTIFY_SOCKET", notify.Path().string()}, {"WATCHDOG_USEC", "400000"}});
  ChildProcess daemon = setup.StartDaemon();
  std::string ready = notify.WaitFor("READY=1", 10s);
  CHECK_THAT(ready, Contains("STATUS=1 sync(s), 1 target(s)"));

  std::vector<Clock::time_point> pings;
  while (pings.size() < 8) {
    auto message = notify.Receive(2s);
    REQUIRE(message);
    if (message->second == "WATCHDOG=1") pings.push_back(message->first);
  }
  std::vector<double> gaps;
  for (size_t i = 1; i < pings.size(); ++i) {
    gaps.push_back(std::chrono::duration<double, std::milli>(pings[i] - pings[i - 1]).count());
  }
  std::sort(gaps.begin(), gaps.end());
  double median = gaps[gaps.size() / 2];
  std::printf("watchdog: median interval %.0f ms for WATCHDOG_USEC 400 ms\n", median);
  CHECK(median > 150);
  CHECK(median < 300);

  daemon.Signal(SIGHUP);
  CHECK_THAT(notify.WaitFor("RELOADING=1", 10s), Contains("MONOTONIC_USEC="));
  notify.WaitFor("READY=1", 10s);
  daemon.Signal(SIGTERM);
  notify.WaitFor("STOPPING=1", 10s);
  REQUIRE(daemon.Wait(30s) == 0);
}

TEST_CASE("SIGHUP adds a bootstrapped target under load, refuses a broken file, and removes a target", "[scenario]") {
  uint64_t seed = TestSeed("reload under load");
  PortLock metrics_port;
  ReplicationSetup setup("reload", 2, kSampleSchema, kSampleTables,
                         fmt::format(R"(, "metrics": {{ "listen": "127.0.0.1:{}" }})", metrics_port.Port()));
  auto scrape = [&] { return HttpRequest(metrics_port.Port(), "GET", "/metrics").body; };
  const std::string both = setup.DefaultConfig();
  std::string only_t0 = both;
  only_t0.replace(only_t0.find(R"(["t0", "t1"])"), 12, R"(["t0"])");
  const std::filesystem::path both_path = setup.Dir() / "both.json";
  std::ofstream(both_path) << both;
  setup.WriteConfig(only_t0);
  setup.Install();
  RandomWorkload load(setup.Source().Dsn(kDatabase), seed, 3);
  ChildProcess daemon = setup.StartDaemon();
  RunLoad(daemon, 2s);

  // t1 is bootstrapped while the daemon, which does not know it yet, replicates to t0 and purges.
  RunResult copied = Run({PgtandemBinary(), "--config", both_path.string(), "bootstrap", "--target", "t1", "--copy"});
  INFO(copied.output);
  REQUIRE(copied.exit_code == 0);
  RunLoad(daemon, 1500ms);
  setup.WriteConfig(both);
  daemon.Signal(SIGHUP);
  WaitForLog(daemon, "reload: starting sync 'app' target 't1'", 10s);
  WaitForLog(daemon, "[sync app target t1] applied batch", 20s);

  setup.WriteConfig(R"({ "nodes": { "source": { "dsn": "host=nowhere" } }, "syncs": [ )");
  daemon.Signal(SIGHUP);
  WaitForLog(daemon, "the new configuration is refused, the running one is kept unchanged", 10s);
  CHECK_THAT(daemon.Output(), Contains("invalid JSON at line"));
  long t1_before = setup.AppliedBatches(1);
  RunLoad(daemon, 1500ms);
  CHECK(setup.AppliedBatches(1) > t1_before);
  load.Stop();
  REQUIRE(load.Committed() > 100);
  setup.WaitEqual(60s);

  CHECK_THAT(scrape(), Contains(R"(pgtandem_batches_total{sync="app",target="t1"})"));
  setup.WriteConfig(only_t0);
  daemon.Signal(SIGHUP);
  WaitForLog(daemon, "reload: stopping sync 'app' target 't1'", 10s);
  WaitForLog(daemon, "[sync app target t1] stopped", 10s);
  std::string metrics = scrape();
  CHECK_THAT(metrics, !Contains(R"(target="t1")"));
  CHECK_THAT(metrics, Contains(R"(pgtandem_batches_total{sync="app",target="t0"})"));
  long t1_batches = setup.AppliedBatches(1);
  setup.Source().Exec("INSERT INTO customers (name) VALUES ('after t1 left')", kDatabase);
  setup.WaitEqual(30s, {0});
  CHECK(setup.AppliedBatches(1) == t1_batches);
  CHECK_FALSE(setup.DifferingTables(1).empty());
  daemon.Signal(SIGTERM);
  REQUIRE(daemon.Wait(30s) == 0);
}

TEST_CASE("two daemons with one config: one applies, the other takes over within seconds of a kill -9",
          "[scenario]") {
  uint64_t seed = TestSeed("two daemons");
  ReplicationSetup setup("ha", 1, kSampleSchema, kSampleTables);
  setup.Install();
  RandomWorkload load(setup.Source().Dsn(kDatabase), seed, 3);
  ChildProcess first = setup.StartDaemon();
  WaitForLog(first, "active: this daemon", 10s);
  ChildProcess second = setup.StartDaemon();
  WaitForLog(second, "standing by: pgtandem@", 10s);
  RunLoad(first, 2s);
  CHECK_FALSE(AppliedBatchIds(first.Output()).empty());
  CHECK(AppliedBatchIds(second.Output()).empty());

  RunResult status = setup.Pgtandem({"status", "--json"});
  INFO(status.output);
  REQUIRE(status.exit_code == 0);
  auto daemon = nlohmann::json::parse(status.output)["syncs"][0]["daemon"];
  CHECK_THAT(daemon["application_name"].get<std::string>(), Contains(fmt::format(":{}", first.Pid())));
  REQUIRE(daemon["standbys"].size() == 1);
  CHECK_THAT(daemon["standbys"][0]["application_name"].get<std::string>(),
             Contains(fmt::format(":{}", second.Pid())));
  RunResult text = setup.Pgtandem({"status"});
  CHECK_THAT(text.output, Contains("active: pgtandem@"));
  CHECK_THAT(text.output, Contains("standing by: pgtandem@"));

  first.Signal(SIGKILL);
  first.Wait(10s);
  auto killed = Clock::now();
  WaitForLog(second, "active: this daemon", 15s);
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - killed);
  std::printf("takeover after kill -9: %lld ms\n", static_cast<long long>(took.count()));
  CHECK(took < 5s);
  RunLoad(second, 2s);
  load.Stop();
  setup.WaitEqual(60s);

  std::vector<long> ids = AppliedBatchIds(first.Output());
  std::vector<long> after = AppliedBatchIds(second.Output());
  REQUIRE_FALSE(after.empty());
  ids.insert(ids.end(), after.begin(), after.end());
  std::set<long> distinct(ids.begin(), ids.end());
  CHECK(distinct.size() == ids.size());
  CHECK(*distinct.rbegin() <= setup.AppliedBatches(0));
  second.Signal(SIGTERM);
  REQUIRE(second.Wait(30s) == 0);
}

TEST_CASE("two daemons whose lock sessions keep being cut hand the sync back and forth, applying no batch twice",
          "[scenario]") {
  uint64_t seed = TestSeed("lock sessions cut");
  ReplicationSetup setup("hacut", 1, kSampleSchema, kSampleTables);
  setup.Install();
  RandomWorkload load(setup.Source().Dsn(kDatabase), seed, 3);
  ChildProcess first = setup.StartDaemon();
  WaitForLog(first, "active: this daemon", 10s);
  ChildProcess second = setup.StartDaemon();
  WaitForLog(first, "applied batch", 20s);
  // Ends whichever session holds the sync's lock (the exclusive one: objid 1 is the purge lock).
  const std::string cut = "SELECT count(pg_catalog.pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' "
                          "AND classid = 1885828196 AND objid > 1 AND mode = 'ExclusiveLock' AND granted";
  for (int round = 0; round < 6; ++round) {
    RunLoad(first, 1200ms);
    REQUIRE_FALSE(second.TryWait().has_value());
    setup.Source().Query1(cut, kDatabase);
  }
  WaitForLog(first, "lost the sync's lock on the source", 1s);
  load.Stop();
  setup.WaitEqual(60s);
  std::vector<long> ids = AppliedBatchIds(first.Output());
  std::vector<long> other = AppliedBatchIds(second.Output());
  ids.insert(ids.end(), other.begin(), other.end());
  std::set<long> distinct(ids.begin(), ids.end());
  std::printf("lock sessions cut: %zu batches applied, %zu of them by the second daemon\n", ids.size(), other.size());
  CHECK(distinct.size() == ids.size());
  for (ChildProcess* daemon : {&first, &second}) {
    daemon->Signal(SIGTERM);
    REQUIRE(daemon->Wait(30s) == 0);
  }
}

}  // namespace pgtandem::test
