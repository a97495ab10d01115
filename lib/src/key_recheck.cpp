// Re-check rounds: source at S, target once it has applied S, deltas for keys changed after S.
#include "pgtandem/key_recheck.hpp"

#include <algorithm>
#include <optional>

#include <fmt/format.h>

#include "pgtandem/async.hpp"
#include "pgtandem/progress.hpp"
#include "pgtandem/purger.hpp"

namespace pgtandem {
namespace {

// Keys per query: each chunk is one text[] parameter per key column.
constexpr size_t kChunk = 10000;
constexpr auto kPollInterval = std::chrono::milliseconds(100);

using Rows = std::vector<std::optional<int64_t>>;  // a row's hash, nullopt where there is no row

std::string SnapshotWindow(std::string_view alias, std::string_view after, std::string_view upto) {
  return fmt::format("{0}.txid >= pg_catalog.pg_snapshot_xmin({1}::pg_snapshot) "
                     "AND {0}.txid < pg_catalog.pg_snapshot_xmax({2}::pg_snapshot) "
                     "AND pg_catalog.pg_visible_in_snapshot({0}.txid, {2}::pg_snapshot) "
                     "AND NOT pg_catalog.pg_visible_in_snapshot({0}.txid, {1}::pg_snapshot)",
                     alias, after, upto);
}

std::vector<KeyValue> Chunk(const std::vector<KeyValue>& keys, size_t start) {
  auto first = keys.begin() + static_cast<long>(start);
  return std::vector<KeyValue>(first, first + static_cast<long>(std::min(kChunk, keys.size() - start)));
}

// Each key's row on a node, as its hash.
pg::Awaitable<Rows> ReadRows(pg::Connection& node, const CapturedTable& table, const KeyLayout& layout,
                             const RowHash& hash,
                             const std::vector<KeyValue>& keys) {
  Rows rows(keys.size());
  std::string sql = fmt::format("SELECT k.ord, {} FROM {} JOIN {} t ON {}", hash.Expr("t"), layout.KeysFrom(1),
                                table.Target(), layout.MatchesKeys("t"));
  for (size_t start = 0; start < keys.size(); start += kChunk) {
    pg::Params params = layout.KeyParams(Chunk(keys, start));
    pg::Result result = co_await node.ExecParams(sql, std::move(params));
    for (int row = 0; row < result.Rows(); ++row) {
      rows[start + static_cast<size_t>(result.GetInt(row, 0) - 1)] = result.GetInt(row, 1);
    }
  }
  co_return rows;
}

// Which keys have a delta committed after `snapshot` (all of them after a TRUNCATE).
pg::Awaitable<std::vector<bool>> ChangedSince(pg::Connection& source, const CapturedTable& table,
                                              const KeyLayout& layout, const std::vector<KeyValue>& keys,
                                              const std::string& snapshot) {
  pg::Result truncated = co_await source.Exec(
      fmt::format("SELECT EXISTS (SELECT 1 FROM pgtandem.truncate_log l WHERE l.table_id = {} AND l.txid >= "
                  "pg_catalog.pg_snapshot_xmin($1::pg_snapshot) AND NOT pg_catalog.pg_visible_in_snapshot(l.txid, "
                  "$1::pg_snapshot))", table.id),
      snapshot);
  std::vector<bool> changed(keys.size(), truncated.GetBool(0, 0));
  if (truncated.GetBool(0, 0)) co_return changed;
  int snapshot_param = static_cast<int>(layout.Columns().size()) + 1;
  std::string sql = fmt::format(
      "SELECT DISTINCT k.ord FROM {0} JOIN {1} d ON {2} WHERE d.txid >= pg_catalog.pg_snapshot_xmin(${3}::pg_snapshot) "
      "AND NOT pg_catalog.pg_visible_in_snapshot(d.txid, ${3}::pg_snapshot)",
      layout.KeysFrom(1), table.DeltaTable(), layout.MatchesKeys("d"), snapshot_param);
  for (size_t start = 0; start < keys.size(); start += kChunk) {
    pg::Params params = layout.KeyParams(Chunk(keys, start));
    params.emplace_back(snapshot);
    pg::Result result = co_await source.ExecParams(sql, std::move(params));
    for (int row = 0; row < result.Rows(); ++row) changed[start + static_cast<size_t>(result.GetInt(row, 0) - 1)] = true;
  }
  co_return changed;
}

// Whether the target has applied every captured change of the table that
// `snapshot` sees. Transactions that captured nothing here do not count, so
// writes elsewhere on the source cannot keep this from ever holding.
pg::Awaitable<bool> TargetHasApplied(pg::Connection& source, pg::Connection& target, const std::string& sync,
                                     const CapturedTable& table, const std::string& snapshot) {
  Progress progress = co_await ReadProgress(target, sync);
  pg::Result pending = co_await source.Exec(
      fmt::format("SELECT EXISTS (SELECT 1 FROM {} d WHERE {}) OR EXISTS (SELECT 1 FROM pgtandem.truncate_log l "
                  "WHERE l.table_id = {} AND {})",
                  table.DeltaTable(), SnapshotWindow("d", "$2", "$1"), table.id, SnapshotWindow("l", "$2", "$1")),
      snapshot, progress.applied_snapshot);
  co_return !pending.GetBool(0, 0);
}

pg::Awaitable<bool> WaitApplied(pg::Connection& source, pg::Connection& target, const std::string& sync,
                                const CapturedTable& table, const std::string& snapshot,
                                std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    bool applied = co_await TargetHasApplied(source, target, sync, table, snapshot);
    if (applied) co_return true;
    if (std::chrono::steady_clock::now() >= deadline) co_return false;
    co_await Sleep(kPollInterval);
  }
}

// What one round read: each key's row on both nodes, and whether it changed after the source's snapshot.
struct Round {
  std::string snapshot;
  bool applied = false;  // the target applied the snapshot in time; otherwise only on_source is read
  Rows on_source;
  Rows on_target;
  std::vector<bool> changed;
};

pg::Awaitable<Round> ReadRound(pg::Connection& source, pg::Connection& target, const std::string& sync,
                               const CapturedTable& table, const KeyLayout& layout, const RowHash& hash,
                               const std::vector<KeyValue>& keys,
                               std::chrono::steady_clock::time_point deadline) {
  Round round;
  // Taken before S, so no delta committed after S can be purged before it is looked for.
  co_await source.Exec(PurgeLockSql("pg_advisory_lock_shared"));
  co_await source.Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  pg::Result current = co_await source.Exec("SELECT pg_catalog.pg_current_snapshot()::text");
  round.snapshot = current.Get(0, 0);
  Rows on_source = co_await ReadRows(source, table, layout, hash, keys);
  round.on_source = std::move(on_source);
  co_await source.Exec("COMMIT");
  bool applied = co_await WaitApplied(source, target, sync, table, round.snapshot, deadline);
  round.applied = applied;
  if (applied) {
    Rows on_target = co_await ReadRows(target, table, layout, hash, keys);
    round.on_target = std::move(on_target);
    std::vector<bool> changed = co_await ChangedSince(source, table, layout, keys, round.snapshot);
    round.changed = std::move(changed);
  }
  co_await source.Exec(PurgeLockSql("pg_advisory_unlock_shared"));
  co_return round;
}

// Files each key that differs and has not changed since the snapshot; returns those that changed.
std::vector<KeyValue> Settle(std::vector<KeyValue>& keys, const Round& round, SettledKeys& settled) {
  std::vector<KeyValue> again;
  for (size_t i = 0; i < keys.size(); ++i) {
    const auto& on_source = round.on_source[i];
    const auto& on_target = round.on_target[i];
    if (on_source == on_target) continue;
    if (round.changed[i]) {
      again.push_back(std::move(keys[i]));
    } else if (!on_target) {
      settled.missing.push_back(std::move(keys[i]));
    } else if (!on_source) {
      settled.extra.push_back(std::move(keys[i]));
    } else {
      settled.different.push_back(std::move(keys[i]));
    }
  }
  return again;
}

}  // namespace

pg::Awaitable<SettledKeys> RecheckKeys(pg::Connection& source, pg::Connection& target, const std::string& sync,
                                       const CapturedTable& table, const KeyLayout& layout, const RowHash& hash,
                                       std::vector<KeyValue> keys, std::chrono::steady_clock::time_point deadline,
                                       const Logger& log) {
  SettledKeys settled;
  for (int number = 1; !keys.empty(); ++number) {
    Round round = co_await ReadRound(source, target, sync, table, layout, hash, keys, deadline);
    if (!round.applied) {
      settled.target_stalled = true;
      settled.unverified = std::move(keys);
      break;
    }
    size_t read = keys.size();
    std::vector<KeyValue> again = Settle(keys, round, settled);
    log.Debug("table {}: re-check round {} at source snapshot {}: {} key(s) read, {} changed since and read again",
              table.name.Display(), number, round.snapshot, read, again.size());
    if (!again.empty() && std::chrono::steady_clock::now() >= deadline) {
      settled.unverified = std::move(again);
      break;
    }
    keys = std::move(again);
  }
  co_return settled;
}

pg::Awaitable<std::vector<KeyValue>> SortKeys(pg::Connection& source, const KeyLayout& layout,
                                              std::vector<KeyValue> keys) {
  if (keys.size() < 2) co_return keys;
  std::vector<KeyValue> sorted;
  std::string sql = fmt::format("SELECT k.ord FROM {} ORDER BY {}", layout.KeysFrom(1), layout.KeysOrder());
  pg::Params params = layout.KeyParams(keys);
  pg::Result order = co_await source.ExecParams(sql, std::move(params));
  for (int row = 0; row < order.Rows(); ++row) sorted.push_back(std::move(keys[static_cast<size_t>(order.GetInt(row, 0) - 1)]));
  co_return sorted;
}

}  // namespace pgtandem
