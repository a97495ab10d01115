// Key layout, range buckets and range sampling; every name and value reaches SQL quoted.
#include "pgtandem/key_ranges.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace pgtandem {
namespace {

// More OR-ed intervals than this and the planner gains little from the index.
constexpr size_t kMaxFilterIntervals = 16;

constexpr std::string_view kKeyColumnsSql = R"(
SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attcollation <> 0, t.typlen > 0
  FROM pg_catalog.unnest($2::text[]) WITH ORDINALITY AS k(name, ord)
  JOIN pg_catalog.pg_attribute a ON a.attrelid = $1::oid AND a.attname = k.name
  JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
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

std::string KeyLayout::OrderBy(std::string_view alias) const {
  std::vector<std::string> parts;
  for (const auto& column : columns_) parts.push_back(Ordered(Column(alias, column), column));
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
    columns.push_back(
        {std::string(rows.Get(row, 0)), std::string(rows.Get(row, 1)), rows.GetBool(row, 2), rows.GetBool(row, 3)});
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
}

// Bucket b holds the keys with exactly b bounds at or below them, as width_bucket() counts.
std::string RangeSet::Tree(size_t lo_bucket, size_t hi_bucket, std::string_view alias) const {
  if (lo_bucket == hi_bucket) return std::to_string(lo_bucket);
  size_t mid = (lo_bucket + hi_bucket + 1) / 2;
  return fmt::format("CASE WHEN {} < {} THEN {} ELSE {} END", layout_.Expr(alias), layout_.Literal(bounds_[mid - 1]),
                     Tree(lo_bucket, mid - 1, alias), Tree(mid, hi_bucket, alias));
}

std::string RangeSet::BucketExpr(std::string_view alias) const {
  const std::vector<KeyColumn>& columns = layout_.Columns();
  if (bounds_.empty() || columns.size() != 1 || !columns[0].fixed_length || columns[0].collatable) {
    return Tree(0, bounds_.size(), alias);
  }
  std::vector<std::string> values;
  for (const auto& bound : bounds_) values.push_back(bound[0]);
  return fmt::format("pg_catalog.width_bucket({}.{}, {}::{}[])", alias, QuoteIdent(columns[0].name),
                     QuoteLiteral(TextArrayLiteral(values)), columns[0].type);
}

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

std::string RangeSet::Buckets() const {
  std::vector<std::string> rows;
  for (int64_t bucket : buckets_) rows.push_back(fmt::format("({})", bucket));
  return fmt::format("{}", fmt::join(rows, ", "));
}

// Rows meet their range through a join with the list of buckets, so that
// rows between ranges join nothing and each row carries its range's columns.
std::string RangeSet::From(const CapturedTable& table, std::string_view values, std::string_view columns) const {
  return fmt::format("FROM {} t JOIN (VALUES {}) AS r({}) ON r.b = ({}) WHERE {}", table.Target(), values, columns,
                     BucketExpr("t"), Filter("t"));
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
      fmt::format("SELECT {} FROM {} t TABLESAMPLE SYSTEM ({:.6f}) ORDER BY {}", layout.TextColumns("t"), table.Target(),
                  percent, layout.OrderBy("t")));
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
  std::vector<std::string> values;
  for (const auto& [range, step] : steps) values.push_back(fmt::format("({}, {}::bigint)", set.Bucket(range), step));
  return fmt::format(
      "SELECT w.b, {0} FROM (SELECT r.b, r.step, {1}, pg_catalog.row_number() OVER (PARTITION BY r.b ORDER BY {2}) AS n "
      "{3}) w WHERE w.n > 1 AND (w.n - 1) % w.step = 0 ORDER BY w.b, w.n",
      layout.TextColumnRefs("w"), layout.TextColumns("t"), layout.OrderBy("t"),
      set.From(table, fmt::format("{}", fmt::join(values, ", ")), "b, step"));
}

}  // namespace pgtandem
