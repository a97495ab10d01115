// Bootstrap of a restored target. Where catch-up starts is read from the
// restored copy of the delta tables: see DeriveRestoredSnapshot.
#include "pgtandem/bootstrap.hpp"

#include <algorithm>
#include <cstdint>
#include <optional>

#include <fmt/format.h>

#include "pgtandem/catalog.hpp"
#include "pgtandem/progress.hpp"
#include "pgtandem/sql_text.hpp"
#include "pgtandem/table_definition.hpp"
#include "pgtandem/xid_snapshot.hpp"

namespace pgtandem {
namespace {

// What the restored copy of the capture schema says about the snapshot.
struct RestoredCapture {
  std::string install_id;
  std::vector<TableTxids> txids;
  uint64_t purge_floor = 0;
  std::vector<std::string> missing_tables;  // captured now, not yet when the snapshot was taken
};

Error Refuse(const SyncConfig& sync, const pg::Connection& target, const std::string& why) {
  return Error(ErrorKind::kState, fmt::format("sync '{}' target '{}': {}", sync.name, target.Node(), why));
}

// The captured transactions of a table: its row deltas and its TRUNCATEs (a
// transaction that only truncates leaves no row delta).
pg::Awaitable<std::vector<uint64_t>> DistinctTxids(pg::Connection& node, int table_id) {
  pg::Result rows = co_await node.Exec(fmt::format(
      "SELECT txid::text FROM pgtandem.d_{0} UNION SELECT txid::text FROM pgtandem.truncate_log WHERE table_id = {0}",
      table_id));
  std::vector<uint64_t> txids;
  txids.reserve(static_cast<size_t>(rows.Rows()));
  for (int row = 0; row < rows.Rows(); ++row) txids.push_back(static_cast<uint64_t>(rows.GetInt(row, 0)));
  std::sort(txids.begin(), txids.end());
  co_return txids;
}

pg::Awaitable<RestoredCapture> ReadRestored(pg::Connection& target, const std::vector<CapturedTable>& tables) {
  RestoredCapture restored;
  pg::Result id = co_await target.Exec("SELECT value FROM pgtandem.meta WHERE key = 'install_id'");
  if (id.Rows() > 0) restored.install_id = id.Get(0, 0);
  restored.purge_floor = UINT64_MAX;
  for (const auto& table : tables) {
    pg::Result row = co_await target.Exec(
        "SELECT id, coalesce(purged_below::text, '0') FROM pgtandem.captured_table "
        "WHERE schema_name = $1 AND table_name = $2", table.name.schema, table.name.name);
    if (row.Rows() == 0 || row.GetInt(0, 0) != table.id) {
      restored.missing_tables.push_back(table.name.Display());
      continue;
    }
    restored.purge_floor = std::min(restored.purge_floor, static_cast<uint64_t>(row.GetInt(0, 1)));
    std::vector<uint64_t> txids = co_await DistinctTxids(target, table.id);
    restored.txids.push_back({table.id, std::move(txids)});
  }
  if (restored.purge_floor == UINT64_MAX) restored.purge_floor = 0;
  co_return restored;
}

// The source as of now, in one snapshot: deltas per table, running transactions, recorded boundaries.
struct SourceNow {
  std::vector<TableTxids> txids;
  std::vector<uint64_t> running;
  uint64_t xmax = 0;
  std::vector<std::pair<XidSnapshot, std::string>> boundaries;  // newest first, with when taken
  uint64_t purged_below = 0;                                    // the highest horizon among the sync's tables
};

pg::Awaitable<SourceNow> ReadSourceNow(pg::Connection& source, const std::vector<CapturedTable>& tables) {
  SourceNow now;
  co_await source.Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  pg::Result snapshot = co_await source.Exec("SELECT pg_catalog.pg_current_snapshot()::text");
  XidSnapshot current = XidSnapshot::Parse(snapshot.Get(0, 0));
  now.running = current.xip;
  now.xmax = current.xmax;
  for (const auto& table : tables) {
    std::vector<uint64_t> txids = co_await DistinctTxids(source, table.id);
    now.txids.push_back({table.id, std::move(txids)});
    pg::Result horizon = co_await source.Exec(
        "SELECT coalesce(purged_below::text, '0') FROM pgtandem.captured_table WHERE id = $1", std::to_string(table.id));
    now.purged_below = std::max(now.purged_below, static_cast<uint64_t>(horizon.GetInt(0, 0)));
  }
  pg::Result boundaries = co_await source.Exec(
      "SELECT snapshot::text, taken_at::text FROM pgtandem.boundary ORDER BY id DESC LIMIT 100");
  for (int row = 0; row < boundaries.Rows(); ++row) {
    now.boundaries.emplace_back(XidSnapshot::Parse(boundaries.Get(row, 0)), std::string(boundaries.Get(row, 1)));
  }
  co_await source.Exec("COMMIT");
  co_return now;
}

// A restored copy can only hold captured transactions of the source. Rows
// written on the target after it was restored (an application, a cron job
// that came along in a physical copy) were captured there with txids that
// look like the source's, and would move the starting point past real source
// changes: refuse rather than lose them.
std::optional<uint64_t> ForeignTxid(const RestoredCapture& restored, const SourceNow& now, uint64_t source_xmax) {
  for (const auto& table : restored.txids) {
    const std::vector<uint64_t>* on_source = nullptr;
    for (const auto& t : now.txids) {
      if (t.table_id == table.table_id) on_source = &t.txids;
    }
    for (uint64_t txid : table.txids) {
      if (txid >= source_xmax) return txid;
      bool purged = txid < now.purged_below || txid < restored.purge_floor;
      if (!purged && on_source && !std::binary_search(on_source->begin(), on_source->end(), txid)) return txid;
    }
  }
  return std::nullopt;
}

// Where catch-up starts: an exact boundary from "pgtandem snapshot" when one
// matches the copy, else the snapshot rebuilt from the restored deltas.
std::pair<XidSnapshot, std::string> StartingPoint(const RestoredCapture& restored, const SourceNow& now) {
  for (const auto& [boundary, taken_at] : now.boundaries) {
    if (BoundaryMatches(boundary, restored.txids, now.txids, restored.purge_floor)) {
      return {boundary, fmt::format("the snapshot exported by \"pgtandem snapshot\" at {}", taken_at)};
    }
  }
  size_t held = 0;
  for (const auto& t : restored.txids) held += t.txids.size();
  return {DeriveRestoredSnapshot(restored.txids, now.txids, restored.purge_floor, now.running),
          fmt::format("the restored copy of the delta tables ({} captured transaction(s) per table already in the "
                      "snapshot will not be applied again)", held)};
}

pg::Awaitable<int> CountCaptureTriggers(pg::Connection& target) {
  pg::Result count = co_await target.Exec(R"(
SELECT count(*) FROM pg_catalog.pg_trigger t
  JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'pgtandem' AND t.tgparentid = 0)");
  co_return static_cast<int>(count.GetInt(0, 0));
}

// One transaction: drop the restored capture schema, create the target's, record the start.
pg::Awaitable<int> Commit(pg::Connection& target, const SyncConfig& sync, const Progress& start, bool strip) {
  co_await target.Exec("BEGIN");
  int triggers = 0;
  if (strip) {
    triggers = co_await CountCaptureTriggers(target);
    co_await target.Exec("DROP SCHEMA pgtandem CASCADE");
  }
  co_await target.Exec(sql::k_target_schema);
  co_await WriteProgress(target, sync.name, start);
  co_await target.Exec("COMMIT");
  co_return triggers;
}

}  // namespace

pg::Awaitable<BootstrapReport> BootstrapRestored(pg::Connection& source, pg::Connection& target,
                                                const SyncConfig& sync, const BootstrapOptions& options,
                                                const Logger& log) {
  std::vector<CapturedTable> tables = co_await LoadCapturedTables(source, sync.name);
  std::string install_id = co_await ReadInstallId(source);
  NodeRole role = co_await ReadNodeRole(target);
  BootstrapReport report;
  if (role == NodeRole::kTarget) {
    Progress existing = co_await ReadProgress(target, sync.name);
    if (!existing.source_install.empty()) {
      report.already_done = true;
      report.applied_snapshot = existing.applied_snapshot;
      co_return report;
    }
  }
  std::vector<std::string> differences = co_await CompareTableDefinitions(source, target, tables);
  if (!differences.empty()) {
    throw Refuse(sync, target, fmt::format("the target's tables differ from the source's; make them match (the same "
                                           "DDL on the target), then run bootstrap again:\n  {}",
                                           fmt::join(differences, "\n  ")));
  }
  Progress start;
  start.source_install = install_id;
  if (role != NodeRole::kSource) {
    if (!options.force) {
      throw Refuse(sync, target, "the target holds no copy of pgtandem's capture schema, so its snapshot was taken "
                                 "before \"pgtandem install\" (changes made between that snapshot and the install "
                                 "were never captured) or the dump excluded schema pgtandem. Take a snapshot after "
                                 "install (\"pgtandem snapshot\" prints the pg_dump command), or pass --force to "
                                 "replay every change captured since install and accept what came before");
    }
    report.derivation = "--force: every change captured since install will be replayed";
    // The target holds rows of an unknown moment, up to now.
    pg::Result now = co_await source.Exec("SELECT pg_catalog.pg_current_snapshot()::text");
    start.rows_newer_until = now.Get(0, 0);
  } else {
    RestoredCapture restored = co_await ReadRestored(target, tables);
    if (restored.install_id != install_id) {
      throw Refuse(sync, target, "the snapshot was taken under an earlier install of capture (the source was "
                                 "uninstalled and installed since): changes in between were never captured. Take a "
                                 "new snapshot");
    }
    if (!restored.missing_tables.empty() && !options.force) {
      throw Refuse(sync, target, fmt::format("the snapshot was taken before capture was installed on {}: their changes "
                                             "in between were never captured. Take a new snapshot, or pass --force",
                                             fmt::join(restored.missing_tables, ", ")));
    }
    SourceNow now = co_await ReadSourceNow(source, tables);
    if (auto foreign = ForeignTxid(restored, now, now.xmax)) {
      throw Refuse(sync, target, fmt::format(
          "the restored copy holds captured changes the source never made (transaction {}): something wrote on the "
          "target after it was restored, before bootstrap. Those writes cannot be told apart from the source's. "
          "Restore the snapshot again and keep every writer (applications, cron jobs) away from the target until "
          "bootstrap has run", *foreign));
    }
    auto [snapshot, how] = StartingPoint(restored, now);
    if (now.purged_below > snapshot.xmin) {
      throw Refuse(sync, target, fmt::format(
          "the snapshot is older than the oldest change still kept on the source (deltas below transaction {} were "
          "purged after the snapshot was taken, the snapshot needs them from transaction {}). Add the target to the "
          "sync's config before taking the snapshot, so that its deltas are kept, and take a new one", now.purged_below,
          snapshot.xmin));
    }
    start.applied_snapshot = snapshot.Text();
    report.derivation = how;
  }
  report.applied_snapshot = start.applied_snapshot;
  report.triggers_removed = co_await Commit(target, sync, start, role == NodeRole::kSource);
  co_await CopyProgressToSource(source, sync.name, target.Node(), start);
  log.Info("bootstrapped: catch-up starts at source snapshot {} ({})", start.applied_snapshot, report.derivation);
  co_return report;
}

}  // namespace pgtandem
