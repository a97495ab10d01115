// The reload diff: restart-only settings are kept, and only tasks whose inputs changed restart.
#include "pgtandem/config_reload.hpp"

#include <catch2/catch.hpp>

namespace pgtandem {
namespace {

Config Parse(const std::string& extra, const std::string& targets = R"(["new"])",
             const std::string& new_dsn = "host=db2 dbname=app") {
  return ParseConfig(R"({
    "nodes": {"old": {"dsn": "host=db1 dbname=app"}, "new": {"dsn": ")" + new_dsn + R"("},
              "dr": {"dsn": "host=db3 dbname=app"}},
    "syncs": [{"name": "app", "source": "old", "targets": )" + targets + R"(, "tables": ["public.*"]}])" + extra + "}",
                     "test.json");
}

}  // namespace

TEST_CASE("A reload keeps the running value of a setting that needs a restart, and says which") {
  Config running = Parse(R"(, "daemon": {"threads": 2}, "metrics": {"listen": "127.0.0.1:9187"})");
  Config next = Parse(R"(, "daemon": {"threads": 8, "poll_interval_ms": 50}, "metrics": {"listen": "127.0.0.1:9999"})");
  std::vector<RestartOnlyChange> kept = KeepRestartOnlySettings(running, next);
  REQUIRE(kept.size() == 2);
  CHECK(kept[0].path == "daemon.threads");
  CHECK(kept[0].running == "2");
  CHECK(kept[0].wanted == "8");
  CHECK(kept[1].path == "metrics.listen");
  CHECK(next.daemon.threads == 2);
  CHECK(next.metrics.listen == "127.0.0.1:9187");
  CHECK(next.daemon.poll_interval_ms == 50);  // reloadable: taken
}

TEST_CASE("Adding a target restarts no existing worker, changing its node or a setting does") {
  Config running = Parse("");
  const std::string before = TargetTaskFingerprint(running, running.syncs[0], "new");
  Config added = Parse("", R"(["new", "dr"])");
  CHECK(TargetTaskFingerprint(added, added.syncs[0], "new") == before);
  CHECK(LagMonitorFingerprint(added, added.syncs[0]) != LagMonitorFingerprint(running, running.syncs[0]));
  Config moved = Parse("", R"(["new"])", "host=db9 dbname=app");
  CHECK(TargetTaskFingerprint(moved, moved.syncs[0], "new") != before);
  CHECK(LockFingerprint(moved, moved.syncs[0]) == LockFingerprint(running, running.syncs[0]));
  Config tuned = Parse(R"(, "batch": {"max_rows": 10})");
  CHECK(TargetTaskFingerprint(tuned, tuned.syncs[0], "new") != before);
  Config louder = Parse(R"(, "log": {"level": "debug", "format": "json"})");
  CHECK(TargetTaskFingerprint(louder, louder.syncs[0], "new") == before);
}

}  // namespace pgtandem
