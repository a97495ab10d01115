// Lag, pending changes and apply rate, in a few bounded queries on the source.
#include "pgtandem/lag.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace pgtandem {
namespace {

// Changes of transactions committed and not visible in snapshot `s`. The
// range on txid lets the (txid, seq) index skip everything older than `s`.
std::string NotIn(const std::string& snapshot, std::string_view alias) {
  std::string s = QuoteLiteral(snapshot) + "::pg_snapshot";
  return fmt::format(
      "{0}.txid >= pg_catalog.pg_snapshot_xmin({1}) AND NOT pg_catalog.pg_visible_in_snapshot({0}.txid, {1})", alias,
      s);
}

std::string TableIds(const std::vector<CapturedTable>& tables) {
  std::string ids;
  for (const auto& table : tables) ids += fmt::format("{}{}", ids.empty() ? "" : ", ", table.id);
  return ids;
}

// One row per delta table: pending deltas counted up to the limit (one more
// means "more"), the age of the oldest, the table's size in pages; then one
// row for the truncates, which are few (purged like deltas).
std::string CountSql(const std::vector<CapturedTable>& tables, const std::string& applied) {
  constexpr std::string_view kAge = "pg_catalog.date_part('epoch', pg_catalog.statement_timestamp() - {}.captured_at)";
  std::string sql;
  for (const auto& table : tables) {
    std::string age = fmt::format(kAge, "d");
    sql += fmt::format(
        "SELECT {0}, (SELECT count(*) FROM (SELECT 1 FROM {1} d WHERE {2} LIMIT {3}) s), "
        "(SELECT {4} FROM {1} d WHERE {2} ORDER BY d.txid, d.seq LIMIT 1), "
        "pg_catalog.pg_relation_size('{1}') / pg_catalog.current_setting('block_size')::bigint UNION ALL ",
        table.id, table.DeltaTable(), NotIn(applied, "d"), kExactPendingLimit + 1, age);
  }
  return sql +
         fmt::format("SELECT 0, count(*), max({}), 0 FROM pgtandem.truncate_log l WHERE l.table_id IN ({}) AND {}",
                     fmt::format(kAge, "l"), TableIds(tables), NotIn(applied, "l"));
}

// TABLESAMPLE SYSTEM reads whole pages picked at random, each with the same
// probability, so the pending rows found, scaled up, estimate the table's without bias.
pg::Awaitable<int64_t> EstimatePending(pg::Connection& source, const CapturedTable& table, int64_t pages,
                                       const std::string& applied) {
  double percent =
      std::min(100.0, 100.0 * static_cast<double>(kLagSamplePages) / static_cast<double>(std::max<int64_t>(pages, 1)));
  pg::Result sampled = co_await source.Exec(fmt::format("SELECT count(*) FROM {} d TABLESAMPLE SYSTEM ({}) WHERE {}",
                                                        table.DeltaTable(), percent, NotIn(applied, "d")));
  co_return static_cast<int64_t>(std::llround(static_cast<double>(sampled.GetInt(0, 0)) * 100.0 / percent));
}

}  // namespace

pg::Awaitable<LagReading> ReadLag(pg::Connection& source, const std::vector<CapturedTable>& tables,
                                  const std::string& applied_snapshot) {
  LagReading lag;
  lag.lag_seconds = 0;
  if (tables.empty()) co_return lag;
  bool age_unknown = false;  // a pending change captured before capture times were recorded
  pg::Result counts = co_await source.Exec(CountSql(tables, applied_snapshot));
  for (int row = 0; row < counts.Rows(); ++row) {
    int64_t pending = counts.GetInt(row, 1);
    if (pending > kExactPendingLimit) {
      int id = static_cast<int>(counts.GetInt(row, 0));
      const auto& table =
          *std::find_if(tables.begin(), tables.end(), [&](const CapturedTable& t) { return t.id == id; });
      int64_t estimate = co_await EstimatePending(source, table, counts.GetInt(row, 3), applied_snapshot);
      pending = std::max(pending, estimate);
      lag.estimated = true;
    }
    lag.pending += pending;
    if (!counts.IsNull(row, 2)) {
      double age = std::max(0.0, std::stod(std::string(counts.Get(row, 2))));
      lag.lag_seconds = std::max(*lag.lag_seconds, age);
    } else if (pending > 0) {
      age_unknown = true;
    }
  }
  if (age_unknown) lag.lag_seconds.reset();
  co_return lag;
}

pg::Awaitable<bool> HasChangesNotIn(pg::Connection& source, const std::vector<CapturedTable>& tables,
                                    const std::string& snapshot) {
  std::string sql;
  for (const auto& table : tables) {
    sql += fmt::format("EXISTS (SELECT 1 FROM {} d WHERE {}) OR ", table.DeltaTable(), NotIn(snapshot, "d"));
  }
  sql += tables.empty() ? "false"
                        : fmt::format("EXISTS (SELECT 1 FROM pgtandem.truncate_log l WHERE l.table_id IN ({}) AND {})",
                                      TableIds(tables), NotIn(snapshot, "l"));
  pg::Result any = co_await source.Exec("SELECT " + sql);
  co_return any.GetBool(0, 0);
}

pg::Awaitable<double> ReadApplyRate(pg::Connection& source, const std::string& sync, const std::string& target) {
  pg::Result rate = co_await source.Exec(R"(
SELECT p.deltas - s.deltas, pg_catalog.date_part('epoch', pg_catalog.statement_timestamp() - s.at)
  FROM pgtandem.target_progress p
  JOIN LATERAL (SELECT deltas, at FROM pgtandem.progress_sample
                 WHERE sync = p.sync AND target = p.target AND at >= pg_catalog.statement_timestamp() - interval '1 minute'
                 ORDER BY at LIMIT 1) s ON true
 WHERE p.sync = $1 AND p.target = $2)",
                                         sync, target);
  if (rate.Rows() == 0) co_return 0.0;
  double deltas = static_cast<double>(std::max<int64_t>(0, rate.GetInt(0, 0)));
  double seconds = std::stod(std::string(rate.Get(0, 1)));
  co_return seconds < 1.0 ? 0.0 : deltas / seconds;
}

}  // namespace pgtandem
