// The Prometheus exposition: families, labels escaped, histogram buckets cumulative.
#include "pgtandem/metrics.hpp"

#include <catch2/catch.hpp>

namespace pgtandem {
namespace {

using Catch::Matchers::Contains;

}  // namespace

TEST_CASE("Metrics render every family with its type, and counters from 0 once a target is added") {
  Metrics metrics;
  metrics.AddTarget("app", "new");
  std::string text = metrics.Render();
  for (const char* family :
       {"pgtandem_lag_seconds gauge", "pgtandem_pending_changes gauge", "pgtandem_applied_rows_total counter",
        "pgtandem_batches_total counter", "pgtandem_batch_duration_seconds histogram", "pgtandem_errors_total counter",
        "pgtandem_node_up gauge"}) {
    CHECK_THAT(text, Contains(std::string("# TYPE ") + family + "\n"));
  }
  CHECK_THAT(text, Contains("pgtandem_batches_total{sync=\"app\",target=\"new\"} 0\n"));
  CHECK_THAT(text, Contains("pgtandem_errors_total{sync=\"app\",target=\"new\",kind=\"target\"} 0\n"));
  // Unknown until the lag monitor has read it: absent, not 0.
  CHECK_THAT(text, !Contains("pgtandem_lag_seconds{"));
}

TEST_CASE("Metrics count batches into cumulative buckets, by table, and errors by kind") {
  Metrics metrics;
  metrics.AddTarget("app", "new");
  metrics.RecordBatch("app", "new", std::chrono::milliseconds(3), 10, {{"public.a", 4}, {"public.b", 6}});
  metrics.RecordBatch("app", "new", std::chrono::milliseconds(300), 5, {{"public.a", 5}});
  metrics.RecordBatch("app", "new", std::chrono::seconds(100), 1, {});
  metrics.RecordError("app", "new", ErrorKind::kSource);
  metrics.SetLag("app", "new", LagReading{1234, true, 56.5});
  metrics.SetNodeUp("old", false);
  std::string text = metrics.Render();
  CHECK_THAT(text, Contains("pgtandem_batch_duration_seconds_bucket{sync=\"app\",target=\"new\",le=\"0.005\"} 1\n"));
  CHECK_THAT(text, Contains("pgtandem_batch_duration_seconds_bucket{sync=\"app\",target=\"new\",le=\"0.25\"} 1\n"));
  CHECK_THAT(text, Contains("pgtandem_batch_duration_seconds_bucket{sync=\"app\",target=\"new\",le=\"0.5\"} 2\n"));
  CHECK_THAT(text, Contains("pgtandem_batch_duration_seconds_bucket{sync=\"app\",target=\"new\",le=\"60\"} 2\n"));
  CHECK_THAT(text, Contains("pgtandem_batch_duration_seconds_bucket{sync=\"app\",target=\"new\",le=\"+Inf\"} 3\n"));
  CHECK_THAT(text, Contains("pgtandem_batch_duration_seconds_count{sync=\"app\",target=\"new\"} 3\n"));
  CHECK_THAT(text, Contains("pgtandem_applied_rows_total{sync=\"app\",target=\"new\"} 16\n"));
  CHECK_THAT(text, Contains("pgtandem_applied_changes_total{sync=\"app\",target=\"new\",table=\"public.a\"} 9\n"));
  CHECK_THAT(text, Contains("pgtandem_errors_total{sync=\"app\",target=\"new\",kind=\"source\"} 1\n"));
  CHECK_THAT(text, Contains("pgtandem_pending_changes{sync=\"app\",target=\"new\"} 1234\n"));
  CHECK_THAT(text, Contains("pgtandem_pending_changes_estimated{sync=\"app\",target=\"new\"} 1\n"));
  CHECK_THAT(text, Contains("pgtandem_lag_seconds{sync=\"app\",target=\"new\"} 56.5\n"));
  CHECK_THAT(text, Contains("pgtandem_node_up{node=\"old\"} 0\n"));
}

TEST_CASE("Metrics escape label values as the text format requires") {
  Metrics metrics;
  metrics.AddTarget("app", "new");
  metrics.RecordBatch("app", "new", std::chrono::milliseconds(1), 1, {{"public.\"Odd\\Name\"\n", 1}});
  CHECK_THAT(metrics.Render(), Contains("table=\"public.\\\"Odd\\\\Name\\\"\\n\"} 1\n"));
}

TEST_CASE("Metrics of a removed target or sync are gone, and a late event does not bring them back") {
  Metrics metrics;
  metrics.AddSync("app");
  metrics.AddSync("other");
  metrics.AddTarget("app", "t0");
  metrics.AddTarget("app", "t1");
  metrics.AddTarget("other", "t0");
  metrics.SetSyncLockHeld("app", true);
  metrics.SetSyncLockHeld("other", true);

  metrics.RemoveTarget("app", "t1");
  metrics.RecordBatch("app", "t1", std::chrono::milliseconds(1), 1, {{"public.a", 1}});
  metrics.RecordError("app", "t1", ErrorKind::kTarget);
  metrics.SetLag("app", "t1", LagReading{1, false, 1.0});
  std::string text = metrics.Render();
  CHECK_THAT(text, !Contains("target=\"t1\""));
  CHECK_THAT(text, Contains("pgtandem_batches_total{sync=\"app\",target=\"t0\"} 0\n"));

  metrics.RemoveSync("other");
  metrics.SetSyncLockHeld("other", false);
  metrics.RecordBatch("other", "t0", std::chrono::milliseconds(1), 1, {});
  text = metrics.Render();
  CHECK_THAT(text, !Contains("sync=\"other\""));
  CHECK_THAT(text, Contains("sync=\"app\""));
}

}  // namespace pgtandem
