// Lag as status and /metrics report it: it rises while replication is held back, and falls to 0 after.
#include <algorithm>
#include <csignal>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "support/http_request.hpp"
#include "support/port_lock.hpp"
#include "support/random_workload.hpp"
#include "support/replication_setup.hpp"
#include "support/table_lock.hpp"
#include "support/test_seed.hpp"
#include "support/wait_until.hpp"

namespace pgtandem::test {
namespace {

using namespace std::chrono_literals;
using Catch::Matchers::Contains;

constexpr std::string_view kT0 = R"(sync="app",target="t0")";

nlohmann::json StatusOf(ReplicationSetup& setup) {
  RunResult status = setup.Pgtandem({"status", "--json"});
  INFO(status.output);
  REQUIRE(status.exit_code == 0);
  return nlohmann::json::parse(status.output)["syncs"][0];
}

std::string Scrape(int port) {
  HttpResponse response = HttpRequest(port, "GET", "/metrics");
  INFO(response.headers);
  REQUIRE(response.status == 200);
  REQUIRE_THAT(response.headers, Contains("text/plain; version=0.0.4"));
  return response.body;
}

// -1 until the lag monitor's first round has put the sample there.
double Metric(int port, std::string_view name) { return MetricValue(Scrape(port), name, kT0).value_or(-1); }

}  // namespace

TEST_CASE("lag and pending changes rise in status and /metrics while replication is held back, then fall to 0",
          "[scenario]") {
  uint64_t seed = TestSeed("lag rises and falls");
  PortLock metrics_port;
  std::string metrics =
      fmt::format(R"(, "metrics": {{ "listen": "127.0.0.1:{}", "lag_interval_ms": 200 }})", metrics_port.Port());
  ReplicationSetup setup("lag", 1, kSampleSchema, kSampleTables, metrics);
  REQUIRE(setup.Pgtandem({"install"}).exit_code == 0);
  auto daemon = std::make_unique<ChildProcess>(setup.StartDaemon());
  RandomWorkload load(setup.Source().Dsn(kDatabase), seed, 2, false);
  WaitUntil([&] { return setup.AppliedBatches(0) > 0 && StatusOf(setup)["daemon"]["running"] == true; }, 30s,
            "the daemon to apply a batch and hold the sync's lock");
  REQUIRE_THAT(Scrape(metrics_port.Port()), Contains(R"(pgtandem_sync_lock_held{sync="app"} 1)"));

  // Held back while the daemon runs: the worker waits on a lock, the metrics go on.
  TableLock lock(setup.Target(0), kDatabase, "customers");
  WaitUntil([&] { return Metric(metrics_port.Port(), "pgtandem_lag_seconds") > 1.0; }, 30s, "/metrics to show lag");
  double pending = Metric(metrics_port.Port(), "pgtandem_pending_changes");
  double lag = Metric(metrics_port.Port(), "pgtandem_lag_seconds");
  WaitUntil(
      [&] {
        return Metric(metrics_port.Port(), "pgtandem_pending_changes") > pending &&
               Metric(metrics_port.Port(), "pgtandem_lag_seconds") > lag + 0.5;
      },
      30s, "pending changes and lag to keep rising in /metrics");
  nlohmann::json held = StatusOf(setup)["targets"][0];
  CHECK(held["pending_deltas"].get<int64_t>() > 0);
  CHECK(held["lag_seconds"].get<double>() > 1.0);

  // Stopped: status, which reads the databases, still tells the lag.
  lock.Release();
  daemon->Signal(SIGTERM);
  REQUIRE(daemon->Wait(30s) == 0);
  daemon.reset();
  // The daemon's session on the source ends a moment after the daemon: then its lock is gone.
  nlohmann::json stopped;
  WaitUntil([&] { return (stopped = StatusOf(setup))["daemon"]["running"] == false; }, 10s,
            "status to see the daemon's lock released");
  REQUIRE(stopped["targets"][0]["state"] == "stopped");
  WaitUntil(
      [&] {
        nlohmann::json later = StatusOf(setup)["targets"][0];
        return later["pending_deltas"] > stopped["targets"][0]["pending_deltas"] &&
               later["lag_seconds"].get<double>() > stopped["targets"][0]["lag_seconds"].get<double>() + 0.5;
      },
      30s, "pending changes and lag to keep rising in status while the daemon is stopped");
  load.Stop();
  RunResult too_short = setup.Pgtandem({"status", "--wait-caught-up", "--timeout", "1"});
  INFO(too_short.output);
  REQUIRE(too_short.exit_code == 7);
  REQUIRE_THAT(too_short.output, Contains("not caught up within --timeout 1 s"));

  // Started again: everything falls back to 0.
  daemon = std::make_unique<ChildProcess>(setup.StartDaemon());
  RunResult caught_up = setup.Pgtandem({"status", "--wait-caught-up", "--timeout", "60"});
  INFO(caught_up.output);
  REQUIRE(caught_up.exit_code == 0);
  WaitUntil(
      [&] {
        return Metric(metrics_port.Port(), "pgtandem_pending_changes") == 0 &&
               Metric(metrics_port.Port(), "pgtandem_lag_seconds") == 0;
      },
      30s, "/metrics to show the target caught up");
  nlohmann::json after = StatusOf(setup)["targets"][0];
  CHECK(after["state"] == "streaming");
  CHECK(after["caught_up"] == true);
  CHECK(after["lag_seconds"] == 0);
  CHECK(after["apply_rate"].get<double>() > 0);
  setup.WaitEqual(30s);

  // --watch refreshes until stopped; off a terminal, one JSON object a line.
  ChildProcess watch({PgtandemBinary(), "--config", setup.ConfigPath().string(), "status", "--watch", "1", "--json"},
                     setup.Dir() / "watch.log");
  WaitUntil(
      [&] {
        std::string out = watch.Output();
        return std::count(out.begin(), out.end(), '\n') >= 2;
      },
      20s, "two refreshes of status --watch");
  watch.Signal(SIGTERM);
  watch.Wait(10s);
  std::string first = watch.Output().substr(0, watch.Output().find('\n'));
  CHECK(nlohmann::json::parse(first)["syncs"][0]["targets"][0]["caught_up"] == true);
  daemon->Signal(SIGTERM);
  REQUIRE(daemon->Wait(30s) == 0);
}

TEST_CASE(
    "the metrics endpoint answers GET and HEAD, refuses other methods and paths, and one address serves one daemon",
    "[scenario]") {
  PortLock metrics_port;
  std::string metrics = fmt::format(R"(, "metrics": {{ "listen": "127.0.0.1:{}" }})", metrics_port.Port());
  ReplicationSetup setup("metricshttp", 1, kSampleSchema, kSampleTables, metrics);
  REQUIRE(setup.Pgtandem({"install"}).exit_code == 0);
  ChildProcess daemon = setup.StartDaemon();
  WaitUntil([&] { return daemon.Output().find("serving Prometheus metrics") != std::string::npos; }, 30s,
            "the metrics server to listen");
  HttpResponse head = HttpRequest(metrics_port.Port(), "HEAD", "/metrics");
  CHECK(head.status == 200);
  CHECK(head.body.empty());
  CHECK(HttpRequest(metrics_port.Port(), "POST", "/metrics").status == 405);
  CHECK(HttpRequest(metrics_port.Port(), "GET", "/nothing").status == 404);
  std::string body = Scrape(metrics_port.Port());
  for (const char* family :
       {"pgtandem_lag_seconds", "pgtandem_pending_changes", "pgtandem_applied_rows_total", "pgtandem_batches_total",
        "pgtandem_batch_duration_seconds", "pgtandem_errors_total", "pgtandem_node_up"}) {
    CHECK_THAT(body, Contains(std::string("# TYPE ") + family + " "));
  }
  // A second daemon cannot take the address: it says so and exits at start.
  ChildProcess second = setup.StartDaemon();
  REQUIRE(second.Wait(30s) == 3);
  REQUIRE_THAT(second.Output(),
               Contains("metrics.listen 127.0.0.1:" + std::to_string(metrics_port.Port()) + ": cannot listen there"));
  daemon.Signal(SIGTERM);
  REQUIRE(daemon.Wait(30s) == 0);
}

}  // namespace pgtandem::test
