// Snapshot export and the waits around it.
#include "pgtandem/snapshot_export.hpp"

#include <fmt/format.h>

#include "pgtandem/async.hpp"

namespace pgtandem {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kPollEvery = std::chrono::milliseconds(500);
// pg_dump of a small database comes and goes within a fraction of a second.
constexpr auto kWatchEvery = std::chrono::milliseconds(50);

constexpr std::string_view kOlderThanInstallSql = R"(
SELECT count(*) FROM pg_catalog.pg_snapshot_xip(
         (SELECT value FROM pgtandem.meta WHERE key = 'install_snapshot')::pg_snapshot) AS x
 WHERE pg_catalog.pg_xact_status(x) = 'in progress')";

constexpr std::string_view kDumpSessionsSql = R"(
SELECT count(*) FROM pg_catalog.pg_stat_activity
 WHERE datname = pg_catalog.current_database() AND application_name = 'pg_dump')";

}  // namespace

pg::Awaitable<ExportedSnapshot> ExportSnapshot(pg::Connection& exporter, pg::Connection& recorder,
                                               std::chrono::seconds wait_limit, const Logger& log) {
  auto deadline = Clock::now() + wait_limit;
  bool said = false;
  for (;;) {
    pg::Result older = co_await recorder.Exec(kOlderThanInstallSql);
    if (older.GetInt(0, 0) == 0) break;
    if (Clock::now() > deadline) {
      throw Error(ErrorKind::kTimeout, fmt::format("{} transaction(s) that were running when capture was installed "
                                                   "are still running after {} s; end them, or wait longer "
                                                   "(--wait SECONDS)", older.GetInt(0, 0), wait_limit.count()));
    }
    if (!said) log.Info("waiting for {} transaction(s) older than the install to end", older.GetInt(0, 0));
    said = true;
    co_await Sleep(kPollEvery);
  }
  co_await exporter.Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  pg::Result exported = co_await exporter.Exec(
      "SELECT pg_catalog.pg_export_snapshot(), pg_catalog.pg_current_snapshot()::text");
  ExportedSnapshot result{std::string(exported.Get(0, 0)), std::string(exported.Get(0, 1))};
  co_await recorder.Exec("INSERT INTO pgtandem.boundary (snapshot, exported) VALUES ($1::pg_snapshot, $2)",
                         result.snapshot, result.id);
  co_return result;
}

pg::Awaitable<void> HoldUntilDumped(pg::Connection& watcher, std::chrono::seconds limit, const Logger& log) {
  auto deadline = Clock::now() + limit;
  for (;;) {
    pg::Result sessions = co_await watcher.Exec(kDumpSessionsSql);
    if (sessions.GetInt(0, 0) > 0) break;
    if (Clock::now() > deadline) {
      throw Error(ErrorKind::kTimeout, fmt::format("no pg_dump connected within {} s; the snapshot is released. Run "
                                                   "\"pgtandem snapshot\" again when ready (--hold SECONDS waits "
                                                   "longer)", limit.count()));
    }
    co_await Sleep(kWatchEvery);
  }
  log.Info("pg_dump connected; holding the snapshot until it finishes");
  for (;;) {
    pg::Result sessions = co_await watcher.Exec(kDumpSessionsSql);
    if (sessions.GetInt(0, 0) == 0) co_return;
    co_await Sleep(kWatchEvery);
  }
}

}  // namespace pgtandem
