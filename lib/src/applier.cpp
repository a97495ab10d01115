// Delete the batch's keys, then COPY in the rows that still exist: the target
// ends holding exactly the source's state for those keys.
#include "pgtandem/applier.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "pgtandem/index_rebuild.hpp"
#include "pgtandem/key_join.hpp"
#include "pgtandem/progress.hpp"

namespace pgtandem {
namespace {

constexpr std::string_view kInsufficientPrivilege = "42501";
constexpr std::string_view kFeatureNotSupported = "0A000";  // TRUNCATE of a table another references
constexpr std::string_view kLockNotAvailable = "55P03";
// How long a recopy waits for the table to itself before going key by key.
// Longer than the default deadlock_timeout (1 s), after which the server
// cancels an autovacuum of the table that stands in the way: a target's
// autovacuum must not send a recopy down the key path.
constexpr std::string_view kRecopyLockTimeout = "3s";

std::string KeyTable(const CapturedTable& table) { return fmt::format("pg_temp.pgtandem_keys_{}", table.id); }

// Beside the key columns; a key column of the same name would make Prepare fail, not misbehave.
constexpr std::string_view kInsertedColumn = "\"pgtandem inserted\"";

bool IsUniqueViolation(const std::string& sqlstate) { return sqlstate == "23505" || sqlstate == "23P01"; }

std::string KeyEquality(const CapturedTable& table) {
  std::string join;
  for (const auto& column : table.key_columns) {
    if (!join.empty()) join += " AND ";
    join += fmt::format("t.{0} = k.{0}", QuoteIdent(column));
  }
  return join;
}

}  // namespace

pg::Awaitable<void> PrepareReplicaSession(pg::Connection& target) {
  bool denied = false;
  try {
    co_await target.Exec("SET session_replication_role = replica");
  } catch (const Error& e) {
    if (e.SqlState() != kInsufficientPrivilege) throw;
    denied = true;
  }
  if (denied) {
    pg::Result role = co_await target.Exec("SELECT current_user");
    throw target.Failure(fmt::format(
        "role \"{0}\" may not set session_replication_role, which keeps the target's triggers and foreign-key checks "
        "from firing on replicated rows. Grant it: GRANT SET ON PARAMETER session_replication_role TO \"{0}\" "
        "(PostgreSQL 15+), or connect as a superuser (rds_superuser on RDS, cloudsqlsuperuser on Cloud SQL)",
        role.Get(0, 0)), std::string(kInsufficientPrivilege));
  }
  // The source purges deltas once a target acknowledges a batch: that
  // acknowledgement must survive a crash of the target, whatever its settings.
  co_await target.Exec("SET synchronous_commit = on");
}

pg::Awaitable<void> EmptyRelation(pg::Connection& target, const std::string& relation, const Logger& log) {
  co_await target.Exec("SAVEPOINT pgtandem_truncate");
  std::string refused;
  try {
    co_await target.Exec("TRUNCATE " + relation);
  } catch (const Error& e) {
    if (e.SqlState() != kFeatureNotSupported && e.SqlState() != kInsufficientPrivilege) throw;
    refused = e.what();
  }
  if (!refused.empty()) {
    co_await target.Exec("ROLLBACK TO SAVEPOINT pgtandem_truncate");
    log.Info("table {}: deleting its rows, since TRUNCATE was refused: {}", relation, refused);
    co_await target.Exec("DELETE FROM " + relation);
  }
  co_await target.Exec("RELEASE SAVEPOINT pgtandem_truncate");
}

pg::Awaitable<void> Applier::Prepare(const std::vector<CapturedTable>& tables) {
  co_await PrepareReplicaSession(target_);
  for (const auto& table : tables) {
    co_await target_.Exec(fmt::format(
        "CREATE TEMP TABLE IF NOT EXISTS pgtandem_keys_{} ON COMMIT DELETE ROWS AS SELECT {}, false AS {} FROM {} "
        "WITH NO DATA",
        table.id, QuotedList(table.key_columns), kInsertedColumn, table.name.Quoted()));
  }
}

// TRUNCATE needs the table to itself: a reader on the target, a foreign key
// from another table or a missing TRUNCATE grant makes it refuse. The caller
// then deletes the rows instead, in the same transaction: readers do not wait
// for that, and with the copy it still costs less than the key path on a
// backlog covering the table. The indexes then stay in place, since dropping
// one needs the lock TRUNCATE could not get.
pg::Awaitable<bool> Applier::TruncateForRecopy(const CapturedTable& table) {
  pg::Result lock_timeout = co_await target_.Exec("SHOW lock_timeout");
  co_await target_.Exec("SAVEPOINT pgtandem_recopy");
  co_await target_.Exec(fmt::format("SET LOCAL lock_timeout = '{}'", kRecopyLockTimeout));
  std::string refused;
  try {
    co_await target_.Exec("TRUNCATE " + table.Target());
  } catch (const Error& e) {
    std::string state = e.SqlState();
    if (state != kFeatureNotSupported && state != kLockNotAvailable && state != kInsufficientPrivilege) throw;
    refused = e.what();
  }
  if (!refused.empty()) {
    co_await target_.Exec("ROLLBACK TO SAVEPOINT pgtandem_recopy");
    co_await target_.Exec("RELEASE SAVEPOINT pgtandem_recopy");
    log_.Info("table {}: deleting its rows before copying it whole, its indexes in place, since TRUNCATE was "
              "refused: {}", table.name.Display(), refused);
    co_return false;
  }
  co_await target_.Exec("RELEASE SAVEPOINT pgtandem_recopy");
  co_await target_.Exec("SELECT pg_catalog.set_config('lock_timeout', $1, true)", std::string(lock_timeout.Get(0, 0)));
  co_return true;
}

pg::Awaitable<void> Applier::ApplySegment(pg::Connection& source, const BatchReader& reader, const Batch& batch,
                                          const Segment& segment, ApplyStats& stats) {
  const CapturedTable& table = *segment.table;
  current_table_ = &table;
  for (const auto& relation : segment.truncated) co_await EmptyRelation(target_, relation, log_);
  if (segment.recopy) {
    bool truncated = co_await TruncateForRecopy(table);
    DroppedIndexes indexes;
    pg::Connection::CopyStats rows;
    if (truncated) {
      indexes = co_await DropIndexesForCopy(target_, table, log_);
      rows = co_await source.CopyTo(table.CopyOutSql(), target_, table.CopyInSql());
    } else {
      // The source reads the rows while the target deletes.
      rows = co_await source.CopyToAfter("DELETE FROM " + table.Target(), table.CopyOutSql(), target_,
                                         table.CopyInSql());
    }
    co_await RebuildIndexes(target_, table, indexes);
    log_.Info("table {}: {} changes reach batch.recopy_percent of its rows: copied whole ({} rows){}",
              table.name.Display(), segment.deltas, rows.rows,
              indexes.names.empty() ? "" : fmt::format(", then built {} again", fmt::join(indexes.names, ", ")));
    stats.rows += rows.rows;
    stats.bytes += rows.bytes;
    co_return;
  }
  auto keys = co_await source.CopyTo(reader.KeysCopySql(batch, segment), target_,
                                     fmt::format("COPY {} FROM STDIN", KeyTable(table)));
  stats.keys += keys.rows;
  if (keys.rows == 0) co_return;
  KeyJoin target_join = KeyJoin::kIndexProbes;
  KeyJoin source_join = KeyJoin::kIndexProbes;
  if (keys.rows >= kKeysWorthAScan) {
    double target_pages = co_await RelationPages(target_, table);
    double source_pages = co_await RelationPages(source, table);
    target_join = ChooseKeyJoin(keys.rows, target_pages, pg::Side::kTarget);
    source_join = ChooseKeyJoin(keys.rows, source_pages, pg::Side::kSource);
    log_.Debug("table {}: {} keys, matched by {} on the source and by {} on the target", table.name.Quoted(), keys.rows,
               Describe(source_join), Describe(target_join));
  }
  co_await target_.Exec(KeyJoinSettingsSql(target_join));
  co_await source.Exec(KeyJoinSettingsSql(source_join));
  // A key the source inserted is not deleted: if the target holds it, the
  // COPY below fails on the key instead of overwriting that row. The source
  // reads the rows while the target deletes.
  std::string delete_keys = fmt::format("DELETE FROM {} t USING {} k WHERE {} AND NOT k.{}", table.Target(),
                                        KeyTable(table), KeyEquality(table), kInsertedColumn);
  pg::Connection::CopyStats rows;
  std::string collision;
  std::string sqlstate;
  try {
    rows = co_await source.CopyToAfter(delete_keys, reader.RowsCopySql(batch, segment), target_, table.CopyInSql());
  } catch (const Error& e) {
    if (!segment.inserts_checked || !IsUniqueViolation(e.SqlState())) throw;
    collision = e.what();
    sqlstate = e.SqlState();
  }
  if (!collision.empty()) {
    throw Error(ErrorKind::kState,
                fmt::format("table {}: {}. The source inserted this row as new, so the row in its way on the target "
                            "was written there directly, not by pgtandem; it is left as it is and this target stops "
                            "here. Fix: delete or correct that row on the target (\"pgtandem compare --table {}\" "
                            "lists every difference); the target resumes by itself",
                            table.name.Display(), collision, table.name.Display()),
                sqlstate);
  }
  stats.rows += rows.rows;
  stats.bytes += keys.bytes + rows.bytes;
}

// The row exists first (a placeholder a first batch overwrites), so that two
// first batches also meet on one row lock; after waiting for it, READ
// COMMITTED reads the row as the other transaction left it.
pg::Awaitable<void> Applier::LockProgress(int64_t expected_batches) {
  co_await target_.Exec("INSERT INTO pgtandem.progress (sync, applied_snapshot, source_install) VALUES ($1, $2, '') "
                        "ON CONFLICT (sync) DO NOTHING", sync_, std::string(kBeginningSnapshot));
  pg::Result row = co_await target_.Exec("SELECT batches FROM pgtandem.progress WHERE sync = $1 FOR UPDATE", sync_);
  int64_t batches = row.GetInt(0, 0);
  if (batches == expected_batches) co_return;
  // The caller closes the connection, which rolls the transaction back.
  throw Error(ErrorKind::kState, fmt::format(
      "sync '{}' target '{}': the target's progress shows {} batches applied where this daemon expected {}: another "
      "daemon applied the sync meanwhile (only the holder of the sync's lock on the source may). This batch was "
      "rolled back; replication resumes from the target's progress", sync_, target_.Node(), batches, expected_batches));
}

pg::Awaitable<ApplyResult> Applier::Apply(pg::Connection& source, const BatchReader& reader, const Batch& batch) {
  ApplyStats stats;
  current_table_ = nullptr;
  co_await target_.Exec("BEGIN");
  co_await LockProgress(batch.next.batches);
  for (const auto& segment : batch.segments) co_await ApplySegment(source, reader, batch, segment, stats);
  stats.deltas = batch.Deltas();
  Progress next = batch.next;
  next.batches += 1;
  next.deltas += stats.deltas;
  next.rows_copied += stats.rows;
  co_await WriteProgress(target_, sync_, next);
  if (!gate_.Open()) {
    co_await target_.Exec("ROLLBACK");
    throw Error(ErrorKind::kState,
                fmt::format("sync '{}' target '{}': this daemon lost the sync's lock on the source while applying batch {}; the "
                            "batch was rolled back, and a daemon holding the lock applies it", sync_, target_.Node(),
                            next.batches));
  }
  co_await target_.Exec("COMMIT");
  co_return ApplyResult{std::move(next), stats};
}

}  // namespace pgtandem
