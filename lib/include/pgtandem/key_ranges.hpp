// Primary-key ranges of a table, and the SQL that puts each row in one: how compare narrows a difference down.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pgtandem/catalog.hpp"
#include "pgtandem/pg/connection.hpp"

namespace pgtandem {

// A primary key, as each column's text output (canonical under the compare
// session's settings, so equal keys have equal text on both nodes).
using KeyValue = std::vector<std::string>;

// One column of a table's primary key.
struct KeyColumn {
  std::string name;
  std::string type;  // format_type(), qualified where needed: usable in a cast
  bool collatable = false;
  bool fixed_length = false;  // pg_type.typlen > 0: integers, uuid, dates and times, ...
};

// How compare orders, names and looks up a table's keys. Collatable key
// columns are ordered byte-wise (COLLATE "C"): both nodes then put every key
// in the same range whatever their collations, and a range boundary means the
// same thing on each side.
class KeyLayout {
 public:
  explicit KeyLayout(std::vector<KeyColumn> columns) : columns_(std::move(columns)) {}

  const std::vector<KeyColumn>& Columns() const { return columns_; }
  std::vector<std::string> Names() const;

  // The key of row `alias` as ranges compare it: t."id", or ROW(t."a" COLLATE "C", t."b").
  std::string Expr(std::string_view alias) const;
  // `key` as a value comparable with Expr().
  std::string Literal(const KeyValue& key) const;
  // t."a"::text AS k0, t."b"::text AS k1: the key's text, one output column each.
  std::string TextColumns(std::string_view alias) const;
  // s.k0, s.k1: those columns read back from a subquery.
  std::string TextColumnRefs(std::string_view alias) const;
  // t."a" COLLATE "C", t."b": ORDER BY in the order Expr() compares.
  std::string OrderBy(std::string_view alias) const;

  // ROWS FROM (unnest($1::text[]), unnest($2::text[])) WITH ORDINALITY AS k(c0, c1, ord): keys passed
  // as one text[] parameter per column, from parameter `first_param` on.
  std::string KeysFrom(int first_param) const;
  pg::Params KeyParams(const std::vector<KeyValue>& keys) const;
  // t."a" = k.c0::integer AND t."b" = k.c1::text: rows of `alias` with a key from KeysFrom().
  std::string MatchesKeys(std::string_view alias) const;
  // k.c0::integer, k.c1::text: the keys of KeysFrom() as values of their types.
  std::string KeyCasts() const;
  // k.c0::integer, k.c1::text COLLATE "C": sorts KeysFrom() rows in key order.
  std::string KeysOrder() const;

  // (a, b)=(1, x): a key as PostgreSQL shows one in messages.
  std::string Display(const KeyValue& key) const;

 private:
  std::vector<KeyColumn> columns_;
};

// Reads the key columns' types on the source, in key order.
pg::Awaitable<KeyLayout> LoadKeyLayout(pg::Connection& source, const CapturedTable& table);

// A key range [lo, hi); an absent bound is open.
struct KeyRange {
  std::optional<KeyValue> lo;
  std::optional<KeyValue> hi;
  int depth = 0;  // how many times it was split from a first-level range
};

// Sorted, non-overlapping ranges examined in one query. Their bounds give
// every row of the table its bucket in O(log n) comparisons: width_bucket()
// for a key of one fixed-length, non-collatable column (a binary search in
// C), else a decision tree, CASE WHEN key < bound ..., for any key, since
// width_bucket() scans the bounds of variable-length types one by one. Each
// range is one bucket; rows between ranges fall in buckets of no range.
class RangeSet {
 public:
  RangeSet(const KeyLayout& layout, std::vector<KeyRange> ranges);

  const KeyLayout& Layout() const { return layout_; }
  const std::vector<KeyRange>& Ranges() const { return ranges_; }
  int64_t Bucket(size_t range) const { return buckets_[range]; }

  // The bucket of row `alias`.
  std::string BucketExpr(std::string_view alias) const;
  // A WHERE condition keeping the rows of the ranges, written so an index on
  // the key can serve it when the ranges are few; "true" otherwise.
  std::string Filter(std::string_view alias) const;
  // "(b), (b), ...": a VALUES row per range, its bucket.
  std::string Buckets() const;
  // FROM the table's rows (alias t) in the ranges listed by `values`, each
  // joined to its range's VALUES row (alias r, columns `columns`, the first
  // being b, the range's bucket).
  std::string From(const CapturedTable& table, std::string_view values, std::string_view columns) const;

 private:
  std::string Tree(size_t lo_bucket, size_t hi_bucket, std::string_view alias) const;

  const KeyLayout& layout_;
  std::vector<KeyRange> ranges_;
  std::vector<KeyValue> bounds_;  // sorted, distinct
  std::vector<int64_t> buckets_;  // per range
};

// The first ranges of a table, about `rows_per_range` source rows each (at
// most `max_ranges`), from a block sample of the source: cheap, and close
// enough, since a range that turns out large is split further.
pg::Awaitable<std::vector<KeyRange>> SampleRanges(pg::Connection& source, const CapturedTable& table,
                                                  const KeyLayout& layout, int64_t rows_per_range, int max_ranges);

// Splits ranges at every `step`-th key of a node's rows: SQL selecting
// (bucket, key texts...), in key order, of the rows that become new lower
// bounds, for the ranges of `set` listed in `steps` as (range index, step).
std::string SplitPointsSql(const RangeSet& set, const CapturedTable& table,
                           const std::vector<std::pair<size_t, int64_t>>& steps);

}  // namespace pgtandem
