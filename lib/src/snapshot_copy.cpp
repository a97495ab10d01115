// The copy: one exported snapshot, N jobs each importing it, a table per target transaction.
#include "pgtandem/snapshot_copy.hpp"

#include <algorithm>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "pgtandem/applier.hpp"
#include "pgtandem/async.hpp"
#include "pgtandem/catalog.hpp"
#include "pgtandem/copy_meter.hpp"
#include "pgtandem/index_rebuild.hpp"
#include "pgtandem/progress.hpp"
#include "pgtandem/schema_copy.hpp"
#include "pgtandem/snapshot_export.hpp"
#include "pgtandem/sql_text.hpp"
#include "pgtandem/table_definition.hpp"
#include "pgtandem/xid_snapshot.hpp"

namespace pgtandem {
namespace asio = boost::asio;

namespace {

using Connect = std::function<std::unique_ptr<pg::Connection>(pg::Side)>;

// What the jobs share; they all run on the caller's single-threaded io_context.
struct CopyRun {
  const SyncConfig& sync;
  std::vector<const CapturedTable*> queue;
  size_t next = 0;
  std::string exported_id;
  std::string snapshot;
  CopyMeter& meter;
  const Logger& log;
  bool failed = false;
  CopyReport report;
};

// From about this size a table's index builds are a pause long enough, after
// its rows are all in, for the DBA to want to know what it is.
constexpr int64_t kIndexBuildNoticeRows = 1'000'000;

pg::Awaitable<void> CopyTable(pg::Connection& source, pg::Connection& target, CopyRun& run, const CapturedTable& table) {
  co_await target.Exec("BEGIN");
  co_await EmptyRelation(target, table.name.Quoted(), run.log);
  DroppedIndexes indexes = co_await DropIndexesForCopy(target, table, run.log);
  auto stats = co_await source.CopyTo(table.CopyOutSql(), target, table.CopyInSql(), &run.meter.Live());
  if (!indexes.names.empty() && stats.rows >= kIndexBuildNoticeRows) {
    run.log.Info("table {}: {} rows copied; building {} again", table.name.Display(), stats.rows,
                 fmt::join(indexes.names, ", "));
  }
  co_await RebuildIndexes(target, table, indexes);
  co_await target.Exec("INSERT INTO pgtandem.copy_state (sync, table_name, snapshot, rows) VALUES ($1, $2, $3, $4)",
                       run.sync.name, table.name.Quoted(), run.snapshot, std::to_string(stats.rows));
  co_await target.Exec("COMMIT");
  run.meter.TableDone();
  ++run.report.tables_copied;
  run.report.rows += stats.rows;
  run.report.bytes += stats.bytes;
}

pg::Awaitable<void> Job(const Connect& connect, CopyRun& run) {
  auto source = connect(pg::Side::kSource);
  auto target = connect(pg::Side::kTarget);
  co_await source->Connect();
  co_await target->Connect();
  co_await source->Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  co_await source->Exec(fmt::format("SET TRANSACTION SNAPSHOT {}", QuoteLiteral(run.exported_id)));
  co_await PrepareReplicaSession(*target);
  while (!run.failed && run.next < run.queue.size()) {
    const CapturedTable& table = *run.queue[run.next++];
    co_await CopyTable(*source, *target, run, table);
  }
  co_await source->Exec("COMMIT");
}

pg::Awaitable<void> Ticker(CopyRun& run, const int& jobs_running) {
  while (jobs_running > 0) {
    run.meter.Tick();
    co_await Sleep(std::chrono::milliseconds(200));
  }
}

// Runs `jobs` copy jobs and the progress ticker; once all have stopped,
// rethrows the first failure. Every task is awaited: they use this frame.
pg::Awaitable<void> RunJobs(const Connect& connect, CopyRun& run, int jobs) {
  auto executor = co_await asio::this_coro::executor;
  int jobs_running = jobs;
  int tasks = jobs + 1;
  std::exception_ptr failure;
  asio::steady_timer all_done(executor, std::chrono::steady_clock::time_point::max());
  auto finished = [&](std::exception_ptr e, bool is_job) {
    if (e && !failure) failure = e;
    if (e) run.failed = true;
    if (is_job) --jobs_running;
    if (--tasks == 0) all_done.cancel();
  };
  asio::co_spawn(executor, Ticker(run, jobs_running), [&](std::exception_ptr e) { finished(e, false); });
  for (int i = 0; i < jobs; ++i) {
    asio::co_spawn(executor, Job(connect, run), [&](std::exception_ptr e) { finished(e, true); });
  }
  boost::system::error_code ec;
  co_await all_done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (failure) std::rethrow_exception(failure);
}

// The oldest snapshot any table was copied at: catch-up starts there.
std::string Oldest(const std::vector<std::string>& snapshots) {
  return *std::min_element(snapshots.begin(), snapshots.end(), [](const std::string& a, const std::string& b) {
    return XidSnapshot::Parse(a).xmax < XidSnapshot::Parse(b).xmax;
  });
}

pg::Awaitable<int64_t> EstimateRows(pg::Connection& source, const std::vector<const CapturedTable*>& tables) {
  int64_t rows = 0;
  for (const CapturedTable* table : tables) {
    pg::Result estimate = co_await source.Exec(
        "SELECT greatest(coalesce(sum(c.reltuples), 0), 0)::bigint FROM pg_catalog.pg_class c "
        "WHERE c.oid = $1::oid OR c.oid IN (SELECT relid FROM pg_catalog.pg_partition_tree($1::oid::regclass))",
        table->relid);
    rows += estimate.GetInt(0, 0);
  }
  co_return rows;
}

pg::Awaitable<void> CheckDefinitions(pg::Connection& source, pg::Connection& target, const SyncConfig& sync,
                                     const std::string& target_name, const std::vector<CapturedTable>& tables) {
  std::vector<std::string> differences = co_await CompareTableDefinitions(source, target, tables);
  if (!differences.empty()) {
    throw Error(ErrorKind::kState, fmt::format("sync '{}' target '{}': the target's tables differ from the source's; "
                                               "make them match (or pass --schema to create missing ones), then run "
                                               "bootstrap again:\n  {}", sync.name, target_name,
                                               fmt::join(differences, "\n  ")));
  }
}

// The tables for which `condition` (about the target table, named as $1) holds on the target.
pg::Awaitable<std::vector<CapturedTable>> TablesWhere(pg::Connection& target, const std::vector<CapturedTable>& tables,
                                                      const std::string& condition) {
  std::vector<CapturedTable> out;
  for (const auto& table : tables) {
    pg::Result holds = co_await target.Exec("SELECT " + condition, table.name.Quoted());
    if (holds.GetBool(0, 0)) out.push_back(table);
  }
  co_return out;
}

}  // namespace

pg::Awaitable<CopyReport> CopyFromSnapshot(const SyncConfig& sync, const std::string& target_name,
                                           const Connect& connect, const CopyOptions& options, const Logger& log) {
  auto source = connect(pg::Side::kSource);
  auto recorder = connect(pg::Side::kSource);
  auto target = connect(pg::Side::kTarget);
  co_await source->Connect();
  co_await recorder->Connect();
  co_await target->Connect();
  std::vector<CapturedTable> tables = co_await LoadCapturedTables(*source, sync.name);
  std::string install_id = co_await ReadInstallId(*source);
  NodeRole role = co_await ReadNodeRole(*target);
  if (role == NodeRole::kSource) {
    throw Error(ErrorKind::kState, fmt::format("sync '{}' target '{}': the target holds a restored copy of the "
                                               "source's capture schema; bootstrap it without --copy", sync.name,
                                               target_name));
  }
  CopyReport report;
  Progress existing = co_await ReadProgress(*target, sync.name);
  if (!existing.source_install.empty()) {
    report.applied_snapshot = existing.applied_snapshot;
    co_return report;
  }
  if (options.schema_from) {
    std::vector<CapturedTable> missing = co_await TablesWhere(*target, tables, "pg_catalog.to_regclass($1) IS NULL");
    if (!missing.empty()) co_await CopySchemaSection(*target, *options.schema_from, missing, "pre-data");
  } else {
    co_await CheckDefinitions(*source, *target, sync, target_name, tables);
  }
  co_await target->Exec(sql::k_target_schema);
  pg::Result done = co_await target->Exec("SELECT table_name, snapshot FROM pgtandem.copy_state WHERE sync = $1",
                                          sync.name);
  ExportedSnapshot exported = co_await ExportSnapshot(*source, *recorder, std::chrono::seconds(600), log);
  std::vector<std::string> snapshots = {exported.snapshot};
  std::vector<const CapturedTable*> remaining;
  for (const auto& table : tables) {
    bool copied = false;
    for (int row = 0; row < done.Rows(); ++row) {
      if (done.Get(row, 0) == table.name.Quoted()) copied = true, snapshots.emplace_back(done.Get(row, 1));
    }
    if (!copied) remaining.push_back(&table);
  }
  Progress start;
  start.applied_snapshot = Oldest(snapshots);
  start.source_install = install_id;
  // Keeps the source from purging deltas this target will need, from the start of the copy.
  co_await CopyProgressToSource(*recorder, sync.name, target_name, start);
  co_await CheckDeltasKept(*recorder, sync.name, target_name, start, install_id);
  int64_t estimate = co_await EstimateRows(*recorder, remaining);
  CopyMeter meter(static_cast<int>(remaining.size()), estimate, log);
  CopyRun run{sync, remaining, 0, exported.id, exported.snapshot, meter, log, false, {}};
  run.report.tables_resumed = static_cast<int>(tables.size() - remaining.size());
  co_await RunJobs(connect, run, std::max(1, std::min<int>(options.jobs, static_cast<int>(remaining.size()))));
  meter.Finish();
  co_await source->Exec("COMMIT");
  if (options.schema_from) {
    std::vector<CapturedTable> keyless = co_await TablesWhere(
        *target, tables, "NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index WHERE indrelid = $1::regclass AND indisprimary)");
    if (!keyless.empty()) co_await CopySchemaSection(*target, *options.schema_from, keyless, "post-data");
    co_await CheckDefinitions(*source, *target, sync, target_name, tables);
  }
  // Tables copied by an earlier, interrupted run are older than this run's.
  if (exported.snapshot != start.applied_snapshot) start.rows_newer_until = exported.snapshot;
  co_await target->Exec("BEGIN");
  co_await WriteProgress(*target, sync.name, start);
  co_await target->Exec("COMMIT");
  run.report.applied_snapshot = start.applied_snapshot;
  co_return run.report;
}

}  // namespace pgtandem
