// Reads and writes the progress rows; see sql/target_schema.sql for their meaning.
#include "pgtandem/progress.hpp"

#include <fmt/format.h>

#include "pgtandem/catalog.hpp"
#include "pgtandem/sql_text.hpp"

namespace pgtandem {
namespace {

constexpr std::string_view kReadSql = R"(
SELECT applied_snapshot, window_end, position_table, position_txid, position_seq, batches, deltas, rows_copied,
       source_install, rows_newer_until
  FROM pgtandem.progress WHERE sync = $1)";

constexpr std::string_view kWriteSql = R"(
INSERT INTO pgtandem.progress AS p
       (sync, applied_snapshot, window_end, position_table, position_txid, position_seq,
        batches, deltas, rows_copied, source_install, rows_newer_until, applied_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, pg_catalog.clock_timestamp())
ON CONFLICT (sync) DO UPDATE SET
       applied_snapshot = EXCLUDED.applied_snapshot, window_end = EXCLUDED.window_end,
       position_table = EXCLUDED.position_table, position_txid = EXCLUDED.position_txid,
       position_seq = EXCLUDED.position_seq, batches = EXCLUDED.batches, deltas = EXCLUDED.deltas,
       rows_copied = EXCLUDED.rows_copied, source_install = EXCLUDED.source_install,
       rows_newer_until = EXCLUDED.rows_newer_until, applied_at = EXCLUDED.applied_at)";

// The sample goes into this second's slot of the ring (see progress_sample).
constexpr std::string_view kCopySql = R"(
WITH sample AS (
    INSERT INTO pgtandem.progress_sample AS s (sync, target, slot, at, deltas)
    VALUES ($1, $2, (pg_catalog.floor(pg_catalog.date_part('epoch', pg_catalog.now())))::bigint % 120, pg_catalog.now(), $5)
    ON CONFLICT (sync, target, slot) DO UPDATE SET at = EXCLUDED.at, deltas = EXCLUDED.deltas)
INSERT INTO pgtandem.target_progress AS p
       (sync, target, applied_snapshot, applied_at, batches, deltas, rows_copied, updated_at)
VALUES ($1, $2, $3::pg_snapshot, pg_catalog.now(), $4, $5, $6, pg_catalog.now())
ON CONFLICT (sync, target) DO UPDATE SET
       applied_snapshot = EXCLUDED.applied_snapshot, applied_at = EXCLUDED.applied_at,
       batches = EXCLUDED.batches, deltas = EXCLUDED.deltas, rows_copied = EXCLUDED.rows_copied,
       last_error = NULL, last_error_at = NULL, last_error_sqlstate = NULL, last_error_table = NULL,
       updated_at = EXCLUDED.updated_at)";

constexpr std::string_view kErrorSql = R"(
INSERT INTO pgtandem.target_progress AS p
       (sync, target, applied_snapshot, last_error, last_error_at, last_error_sqlstate, last_error_table)
VALUES ($1, $2, $3::pg_snapshot, $4, pg_catalog.now(), $5, $6)
ON CONFLICT (sync, target) DO UPDATE SET
       last_error = EXCLUDED.last_error, last_error_at = EXCLUDED.last_error_at,
       last_error_sqlstate = EXCLUDED.last_error_sqlstate, last_error_table = EXCLUDED.last_error_table,
       updated_at = pg_catalog.now())";

}  // namespace

pg::Awaitable<void> PrepareTargetSchema(pg::Connection& target, const std::string& sync) {
  NodeRole role = co_await ReadNodeRole(target);
  if (role == NodeRole::kSource) {
    throw Error(ErrorKind::kState,
                fmt::format("{} holds a copy of the source's capture schema (restored from a snapshot of the "
                            "source?); run \"pgtandem bootstrap --sync {} --target {}\" before replicating to it",
                            target.Describe(), sync, target.Node()));
  }
  co_await target.Exec(sql::k_target_schema);
}

pg::Awaitable<Progress> ReadProgress(pg::Connection& target, const std::string& sync) {
  Progress progress;
  NodeRole role = co_await ReadNodeRole(target);
  if (role != NodeRole::kTarget) co_return progress;
  pg::Result row = co_await target.Exec(kReadSql, sync);
  if (row.Rows() == 0) co_return progress;
  progress.applied_snapshot = row.Get(0, 0);
  progress.window_end = row.GetOptional(0, 1);
  if (progress.window_end) {
    progress.position = {static_cast<int>(row.GetInt(0, 2)), row.GetInt(0, 3), row.GetInt(0, 4)};
  }
  progress.batches = row.GetInt(0, 5);
  progress.deltas = row.GetInt(0, 6);
  progress.rows_copied = row.GetInt(0, 7);
  progress.source_install = row.Get(0, 8);
  progress.rows_newer_until = row.GetOptional(0, 9);
  co_return progress;
}

pg::Awaitable<void> WriteProgress(pg::Connection& target, const std::string& sync, const Progress& progress) {
  auto in_window = [&](auto value) -> std::optional<std::string> {
    if (!progress.window_end) return std::nullopt;
    return std::to_string(value);
  };
  co_await target.Exec(kWriteSql, sync, progress.applied_snapshot, progress.window_end,
                                   in_window(progress.position.table_id), in_window(progress.position.txid),
                                   in_window(progress.position.seq), std::to_string(progress.batches),
                                   std::to_string(progress.deltas), std::to_string(progress.rows_copied),
                                   progress.source_install, progress.rows_newer_until);
}

pg::Awaitable<void> CopyProgressToSource(pg::Connection& source, const std::string& sync, const std::string& target,
                                         const Progress& progress) {
  co_await source.Exec(kCopySql, sync, target, progress.applied_snapshot, std::to_string(progress.batches),
                                  std::to_string(progress.deltas), std::to_string(progress.rows_copied));
}

pg::Awaitable<std::string> ReadInstallId(pg::Connection& source) {
  pg::Result id = co_await source.Exec("SELECT value FROM pgtandem.meta WHERE key = 'install_id'");
  co_return id.Rows() > 0 ? std::string(id.Get(0, 0)) : std::string();
}

pg::Awaitable<void> CheckDeltasKept(pg::Connection& source, const std::string& sync, const std::string& target,
                                    const Progress& progress, const std::string& install_id) {
  if (!progress.source_install.empty() && progress.source_install != install_id) {
    throw Error(ErrorKind::kState,
                fmt::format("sync '{}' target '{}': capture on the source was installed anew since this target last "
                            "applied a batch (uninstall then install): changes made in between were never captured, "
                            "so the target cannot be caught up from deltas and must be bootstrapped again",
                            sync, target));
  }
  pg::Result purged = co_await source.Exec(R"(
SELECT pg_catalog.format('%I.%I', t.schema_name, t.table_name), t.purged_below::text
  FROM pgtandem.captured_table t JOIN pgtandem.sync_table s ON s.table_id = t.id
 WHERE s.sync = $1 AND t.purged_below > pg_catalog.pg_snapshot_xmin($2::pg_snapshot)
 ORDER BY t.id)", sync, progress.applied_snapshot);
  if (purged.Rows() == 0) co_return;
  throw Error(ErrorKind::kState,
              fmt::format("sync '{}' target '{}': the target has applied changes up to source snapshot {}, but deltas "
                          "after it were already purged (table {} is purged below transaction {}); the target cannot "
                          "be caught up from deltas and must be bootstrapped again (pgtandem bootstrap)",
                          sync, target, progress.applied_snapshot, purged.Get(0, 0), purged.Get(0, 1)));
}

pg::Awaitable<void> ClearErrorOnSource(pg::Connection& source, const std::string& sync, const std::string& target) {
  co_await source.Exec("UPDATE pgtandem.target_progress SET last_error = NULL, last_error_at = NULL, "
                       "last_error_sqlstate = NULL, last_error_table = NULL "
                       "WHERE sync = $1 AND target = $2 AND last_error IS NOT NULL", sync, target);
}

pg::Awaitable<void> RecordErrorOnSource(pg::Connection& source, const std::string& sync, const std::string& target,
                                        const RecordedError& error) {
  auto or_null = [](const std::string& text) { return text.empty() ? std::nullopt : std::optional<std::string>(text); };
  co_await source.Exec(kErrorSql, sync, target, std::string(kBeginningSnapshot), error.message, or_null(error.sqlstate),
                       or_null(error.table));
}

}  // namespace pgtandem
