// Key layout, range buckets and range sampling; every name and value reaches SQL quoted.
#include "pgtandem/key_ranges.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace pgtandem {
namespace {

// More OR-ed intervals than this and the planner gains little from the index.
constexpr size_t kMaxFilterIntervals = 16;

constexpr std::string_view kKeyColumnsSql = R"(
SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attcollation <> 0
  FROM pg_catalog.unnest($2::text[]) WITH ORDINALITY AS k(name, ord)
  JOIN pg_catalog.pg_attribute a ON a.attrelid = $1::oid AND a.attname = k.name
 ORDER BY k.ord)";

// The table and its partitions: reltuples, or -1 where never analyzed, and their size.
constexpr std::string_view kEstimateSql = R"(
SELECT coalesce(sum(greatest(c.reltuples, 0)), 0)::bigint, coalesce(bool_or(c.reltuples < 0), false),
       coalesce(sum(pg_catalog.pg_relation_size(c.oid)), 0)::bigint
  FROM pg_catalog.pg_class c
 WHERE c.oid = $1::oid OR c.oid IN (SELECT relid FROM pg_catalog.pg_partition_tree($1::oid::regclass)))";

std::string Column(std::string_view alias, const KeyColumn& column) {
  return fmt::format("{}.{}", alias, QuoteIdent(column.name));
}

std::string Ordered(std::string expr, const KeyColumn& column) {
  return column.collatable ? expr + " COLLATE \"C\"" : expr;
}

std::string Comparison(std::string_view alias, const KeyLayout& layout, const KeyRange& range) {
  std::string expr = layout.Expr(alias);
  std::vector<std::string> parts;
  if (range.lo) parts.push_back(fmt::format("{} >= {}", expr, layout.Literal(*range.lo)));
  if (range.hi) parts.push_back(fmt::format("{} < {}", expr, layout.Literal(*range.hi)));
  return parts.empty() ? "true" : fmt::format("({})", fmt::join(parts, " AND "));
}

}  // namespace

std::vector<std::string> KeyLayout::Names() const {
  std::vector<std::string> names;
  for (const auto& column : columns_) names.push_back(column.name);
  return names;
}

std::string KeyLayout::Expr(std::string_view alias) const {
  if (columns_.size() == 1) return Ordered(Column(alias, columns_[0]), columns_[0]);
  std::vector<std::string> parts;
  for (const auto& column : columns_) parts.push_back(Ordered(Column(alias, column), column));
  return fmt::format("ROW({})", fmt::join(parts, ", "));
}

std::string KeyLayout::Literal(const KeyValue& key) const {
  std::vector<std::string> parts;
  for (size_t i = 0; i < columns_.size(); ++i) {
    parts.push_back(fmt::format("{}::{}", QuoteLiteral(key[i]), columns_[i].type));
  }
  return columns_.size() == 1 ? parts[0] : fmt::format("ROW({})", fmt::join(parts, ", "));
}

std::string KeyLayout::TextColumns(std::string_view alias) const {
  std::vector<std::string> parts;
  for (size_t i = 0; i < columns_.size(); ++i) parts.push_back(fmt::format("{}::text AS k{}", Column(alias, columns_[i]), i));
  return fmt::format("{}", fmt::join(parts, ", "));
}

std::string KeyLayout::TextColumnRefs(std::string_view alias) const {
  std::vector<std::string> parts;
  for (size_t i = 0; i < columns_.size(); ++i) parts.push_back(fmt::format("{}.k{}", alias, i));
  return fmt::format("{}", fmt::join(parts, ", "));
}

std::string KeyLayout::OrderColumns(std::string_view alias) const {
  std::vector<std::string> parts;
  for (size_t i = 0; i < columns_.size(); ++i) parts.push_back(fmt::format("{} AS o{}", Column(alias, columns_[i]), i));
  return fmt::format("{}", fmt::join(parts, ", "));
}

std::string KeyLayout::OrderBy(std::string_view alias) const {
  std::vector<std::string> parts;
  for (size_t i = 0; i < columns_.size(); ++i) parts.push_back(Ordered(fmt::format("{}.o{}", alias, i), columns_[i]));
  return fmt::format("{}", fmt::join(parts, ", "));
}

std::string KeyLayout::KeysFrom(int first_param) const {
  std::vector<std::string> arrays, names;
  for (size_t i = 0; i < columns_.size(); ++i) {
    arrays.push_back(fmt::format("pg_catalog.unnest(${}::text[])", first_param + static_cast<int>(i)));
    names.push_back(fmt::format("c{}", i));
  }
  return fmt::format("ROWS FROM ({}) WITH ORDINALITY AS k({}, ord)", fmt::join(arrays, ", "), fmt::join(names, ", "));
}

pg::Params KeyLayout::KeyParams(const std::vector<KeyValue>& keys) const {
  pg::Params params;
  for (size_t i = 0; i < columns_.size(); ++i) {
    std::vector<std::string> column;
    column.reserve(keys.size());
    for (const auto& key : keys) column.push_back(key[i]);
    params.emplace_back(TextArrayLiteral(column));
  }
  return params;
}

std::string KeyLayout::MatchesKeys(std::string_view alias) const {
  std::vector<std::string> parts;
  for (size_t i = 0; i < columns_.size(); ++i) {
    parts.push_back(fmt::format("{} = k.c{}::{}", Column(alias, columns_[i]), i, columns_[i].type));
  }
  return fmt::format("{}", fmt::join(parts, " AND "));
}

std::string KeyLayout::KeyCasts() const {
  std::vector<std::string> parts;
  for (size_t i = 0; i < columns_.size(); ++i) parts.push_back(fmt::format("k.c{}::{}", i, columns_[i].type));
  return fmt::format("{}", fmt::join(parts, ", "));
}

std::string KeyLayout::KeysOrder() const {
  std::vector<std::string> parts;
  for (size_t i = 0; i < columns_.size(); ++i) {
    parts.push_back(Ordered(fmt::format("k.c{}::{}", i, columns_[i].type), columns_[i]));
  }
  return fmt::format("{}", fmt::join(parts, ", "));
}

std::string KeyLayout::Display(const KeyValue& key) const {
  std::vector<std::string> names;
  for (const auto& column : columns_) names.push_back(column.name);
  return fmt::format("({})=({})", fmt::join(names, ", "), fmt::join(key, ", "));
}

pg::Awaitable<KeyLayout> LoadKeyLayout(pg::Connection& source, const CapturedTable& table) {
  pg::Result rows = co_await source.Exec(kKeyColumnsSql, table.relid, TextArrayLiteral(table.key_columns));
  std::vector<KeyColumn> columns;
  for (int row = 0; row < rows.Rows(); ++row) {
    columns.push_back({std::string(rows.Get(row, 0)), std::string(rows.Get(row, 1)), rows.GetBool(row, 2)});
  }
  if (columns.size() != table.key_columns.size()) {
    throw source.Failure(fmt::format("table {}: the primary key columns captured ({}) are no longer all in the table; "
                                     "run \"pgtandem install\" again", table.name.Display(),
                                     QuotedList(table.key_columns)));
  }
  co_return KeyLayout(std::move(columns));
}

RangeSet::RangeSet(const KeyLayout& layout, std::vector<KeyRange> ranges) : layout_(layout), ranges_(std::move(ranges)) {
  for (const auto& range : ranges_) {
    int64_t bucket = 0;
    if (range.lo) {
      if (bounds_.empty() || bounds_.back() != *range.lo) bounds_.push_back(*range.lo);
      bucket = static_cast<int64_t>(bounds_.size());
    }
    buckets_.push_back(bucket);
    if (range.hi) bounds_.push_back(*range.hi);
  }
  range_of_.assign(bounds_.size() + 1, -1);
  for (size_t i = 0; i < buckets_.size(); ++i) range_of_[static_cast<size_t>(buckets_[i])] = static_cast<int>(i);
}

int RangeSet::RangeOf(int64_t bucket) const {
  if (bucket < 0 || static_cast<size_t>(bucket) >= range_of_.size()) return -1;
  return range_of_[static_cast<size_t>(bucket)];
}

// Bucket b holds the keys with exactly b bounds at or below them.
std::string RangeSet::Tree(size_t lo_bucket, size_t hi_bucket, std::string_view alias) const {
  if (lo_bucket == hi_bucket) return std::to_string(lo_bucket);
  size_t mid = (lo_bucket + hi_bucket + 1) / 2;
  return fmt::format("CASE WHEN {} < {} THEN {} ELSE {} END", layout_.Expr(alias), layout_.Literal(bounds_[mid - 1]),
                     Tree(lo_bucket, mid - 1, alias), Tree(mid, hi_bucket, alias));
}

std::string RangeSet::BucketExpr(std::string_view alias) const { return Tree(0, bounds_.size(), alias); }

std::string RangeSet::Filter(std::string_view alias) const {
  std::vector<KeyRange> intervals;
  for (const auto& range : ranges_) {
    if (!intervals.empty() && intervals.back().hi && range.lo && *intervals.back().hi == *range.lo) {
      intervals.back().hi = range.hi;
    } else {
      intervals.push_back(range);
    }
  }
  if (intervals.size() > kMaxFilterIntervals) return "true";
  std::vector<std::string> parts;
  for (const auto& interval : intervals) parts.push_back(Comparison(alias, layout_, interval));
  return fmt::format("({})", fmt::join(parts, " OR "));
}

std::string RangeSet::BucketArray() const { return fmt::format("'{{{}}}'::bigint[]", fmt::join(buckets_, ",")); }

// The set-returning function in the select list keeps the planner from
// merging this subquery into the query around it. Merged, each expression
// would be evaluated once per reference (the row's text twice, the bucket
// tree again in WHERE), and the GROUP BY would be planned as a sort, since
// the planner takes the bucket to have as many values as the key. Unlike
// OFFSET 0, this fence leaves a parallel scan possible.
std::string RangeSet::RowsSql(const CapturedTable& table, std::string_view columns) const {
  return fmt::format("SELECT {} AS b, {}, pg_catalog.generate_series(1, 1) AS fence FROM {} t WHERE {}", BucketExpr("t"),
                     columns, table.Target(), Filter("t"));
}

pg::Awaitable<std::vector<KeyRange>> SampleRanges(pg::Connection& source, const CapturedTable& table,
                                                  const KeyLayout& layout, int64_t rows_per_range, int max_ranges) {
  pg::Result estimate = co_await source.Exec(kEstimateSql, table.relid);
  int64_t rows = estimate.GetInt(0, 0);
  // Never analyzed: guess from its size, at 100 bytes a row; a wrong guess costs one more split.
  if (estimate.GetBool(0, 1)) rows = std::max(rows, estimate.GetInt(0, 2) / 100);
  int64_t wanted = std::clamp<int64_t>(rows / rows_per_range, 1, max_ranges);
  std::vector<KeyRange> ranges;
  if (wanted == 1) {
    ranges.emplace_back();
    co_return ranges;
  }
  // About 50 sampled keys a range: SYSTEM samples whole blocks, whose keys are often consecutive.
  double percent = std::min(100.0, 100.0 * static_cast<double>(wanted * 50) / static_cast<double>(rows));
  pg::Result sample = co_await source.Exec(
      fmt::format("SELECT {} FROM (SELECT {}, {} FROM {} t TABLESAMPLE SYSTEM ({:.6f})) s ORDER BY {}",
                  layout.TextColumnRefs("s"), layout.TextColumns("t"), layout.OrderColumns("t"), table.Target(),
                  percent, layout.OrderBy("s")));
  std::optional<KeyValue> lo;
  int64_t sampled = sample.Rows();
  for (int64_t i = 1; i < wanted && i < sampled; ++i) {
    int row = static_cast<int>(i * sampled / wanted);
    KeyValue key;
    for (int column = 0; column < sample.Columns(); ++column) key.emplace_back(sample.Get(row, column));
    if (lo && *lo == key) continue;
    ranges.push_back({lo, key, 0});
    lo = std::move(key);
  }
  ranges.push_back({lo, std::nullopt, 0});
  co_return ranges;
}

std::string SplitPointsSql(const RangeSet& set, const CapturedTable& table,
                           const std::vector<std::pair<size_t, int64_t>>& steps) {
  const KeyLayout& layout = set.Layout();
  std::vector<std::string> values, buckets;
  for (const auto& [range, step] : steps) {
    values.push_back(fmt::format("({}::bigint, {}::bigint)", set.Bucket(range), step));
    buckets.push_back(std::to_string(set.Bucket(range)));
  }
  return fmt::format(
      "SELECT w.b, {0} FROM (SELECT s.b, {1}, pg_catalog.row_number() OVER (PARTITION BY s.b ORDER BY {2}) AS n "
      "FROM ({3}) s WHERE s.b = ANY('{{{4}}}'::bigint[])) w JOIN (VALUES {5}) AS p(b, step) ON p.b = w.b "
      "WHERE w.n > 1 AND (w.n - 1) % p.step = 0 ORDER BY w.b, w.n",
      layout.TextColumnRefs("w"), layout.TextColumnRefs("s"), layout.OrderBy("s"),
      set.RowsSql(table, layout.TextColumns("t") + ", " + layout.OrderColumns("t")), fmt::join(buckets, ","),
      fmt::join(values, ", "));
}

}  // namespace pgtandem
