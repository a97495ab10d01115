// Range checksums on both nodes at once, split where they differ, down to (key, hash) pairs.
#include "pgtandem/table_compare.hpp"

#include <algorithm>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "pgtandem/async.hpp"
#include "pgtandem/key_recheck.hpp"

namespace pgtandem {
namespace {

// First-level ranges hold about this many rows; 1,024 of them at most per
// query keeps the bucket tree 10 comparisons deep.
constexpr int64_t kRowsPerRange = 10000;
constexpr int kMaxRanges = 1024;
// A differing range with at most this many rows on each node has its
// (key, hash) pairs listed; a larger one is split into up to kMaxFanout parts.
constexpr int64_t kLeafRows = 1000;
constexpr int64_t kMaxFanout = 256;
// Most pairs one listing query returns from a node (they are held in memory).
constexpr int64_t kListBatchRows = 100000;
// Splits stop here whatever the counts: a key order that differs between the
// nodes could otherwise keep a range from shrinking.
constexpr int kMaxDepth = 8;

// Count and hash sum (exact, numeric) of the rows of one range on one node.
struct Sums {
  int64_t rows = 0;
  std::string hashes;

  bool operator==(const Sums&) const = default;
};

// A range whose sums differ, with each node's row count.
struct Differing {
  KeyRange range;
  int64_t source_rows = 0;
  int64_t target_rows = 0;

  int64_t Rows() const { return std::max(source_rows, target_rows); }
};

std::map<int64_t, Sums> ReadSums(const pg::Result& result) {
  std::map<int64_t, Sums> sums;
  for (int row = 0; row < result.Rows(); ++row) {
    sums[result.GetInt(row, 0)] = {result.GetInt(row, 1), std::string(result.Get(row, 2))};
  }
  return sums;
}

Sums Find(const std::map<int64_t, Sums>& sums, int64_t bucket) {
  auto found = sums.find(bucket);
  return found == sums.end() ? Sums{} : found->second;
}

// Keys as map keys: each part length-prefixed, so no text can run into the next.
std::string Encode(const KeyValue& key) {
  std::string out;
  for (const auto& part : key) out += fmt::format("{}:{}", part.size(), part);
  return out;
}

KeyValue ReadKey(const pg::Result& result, int row, size_t columns) {
  KeyValue key;
  for (size_t i = 0; i < columns; ++i) key.emplace_back(result.Get(row, static_cast<int>(i)));
  return key;
}

// A node's query, or nothing when it has no part in this step.
pg::Awaitable<pg::Result> ExecIfAny(pg::Connection& node, const std::string& sql) {
  if (sql.empty()) co_return pg::Result();
  co_return co_await node.Exec(sql);
}

class RangeComparison {
 public:
  RangeComparison(pg::Connection& source, pg::Connection& target, const std::string& sync, const CapturedTable& table,
                  const KeyLayout& layout, const RowHash& hash, std::string& step, const Logger& log)
      : source_(source),
        target_(target),
        sync_(sync),
        table_(table),
        layout_(layout),
        hash_(hash),
        step_(step),
        log_(log) {}

  pg::Awaitable<CandidateKeys> Run();

 private:
  pg::Awaitable<std::pair<pg::Result, pg::Result>> OnBoth(const std::string& source_sql, const std::string& target_sql);
  pg::Awaitable<bool> NothingInFlight();
  pg::Awaitable<bool> WholeTableEqual();
  pg::Awaitable<std::vector<KeyRange>> CompareRanges(std::vector<KeyRange> ranges, bool first_level);
  pg::Awaitable<void> ListKeys(const std::vector<Differing>& ranges);
  pg::Awaitable<void> ListKeyBatch(std::vector<KeyRange> ranges);
  pg::Awaitable<std::vector<KeyRange>> Split(const std::vector<Differing>& ranges);
  void AddCandidate(KeyValue key);

  pg::Connection& source_;
  pg::Connection& target_;
  const std::string& sync_;
  const CapturedTable& table_;
  const KeyLayout& layout_;
  const RowHash& hash_;
  std::string& step_;
  const Logger& log_;
  CandidateKeys found_;
  std::unordered_set<std::string> seen_;
};

pg::Awaitable<std::pair<pg::Result, pg::Result>> RangeComparison::OnBoth(const std::string& source_sql,
                                                                        const std::string& target_sql) {
  pg::Awaitable<pg::Result> on_source = ExecIfAny(source_, source_sql);
  pg::Awaitable<pg::Result> on_target = ExecIfAny(target_, target_sql);
  std::pair<pg::Result, pg::Result> results = co_await BothOf(std::move(on_source), std::move(on_target));
  co_return results;
}

void RangeComparison::AddCandidate(KeyValue key) {
  if (!found_.complete || !seen_.insert(Encode(key)).second) return;
  found_.keys.push_back(std::move(key));
  if (found_.keys.size() >= kMaxKeysPerTable) found_.complete = false;
}

// Whether the target has applied every captured change of the table that
// the source holds now: applied but not yet purged, as in the seconds after
// the writes stop, or none at all. Under a write load some change is nearly
// always on its way, and the whole table would rarely compare equal.
pg::Awaitable<bool> RangeComparison::NothingInFlight() {
  pg::Result queued =
      co_await source_.Exec(fmt::format("SELECT EXISTS (SELECT 1 FROM {})", table_.DeltaTable()));
  if (!queued.GetBool(0, 0)) co_return true;
  pg::Result now = co_await source_.Exec("SELECT pg_catalog.pg_current_snapshot()::text");
  bool applied = co_await TargetHasApplied(source_, target_, sync_, table_, std::string(now.Get(0, 0)));
  co_return applied;
}

// Counts and hashes every row of the table at once, which is all an equal
// table needs. With no range to put rows in (no bucket to compute, no hash
// table to group in), each node spends about 40% less than on the first
// level of ranges (pgbench_accounts, 10 million rows).
pg::Awaitable<bool> RangeComparison::WholeTableEqual() {
  step_ = "counting and hashing all rows";
  std::string sql = fmt::format("SELECT pg_catalog.count(*), pg_catalog.sum({})::text FROM {} t", hash_.Expr("t"),
                                table_.Target());
  std::pair<pg::Result, pg::Result> results = co_await OnBoth(sql, sql);
  Sums s{results.first.GetInt(0, 0), std::string(results.first.Get(0, 1))};
  Sums t{results.second.GetInt(0, 0), std::string(results.second.Get(0, 1))};
  log_.Debug("table {}: the whole table {}", table_.name.Display(), s == t ? "is equal" : "differs");
  if (s != t) co_return false;
  found_.source_rows = s.rows;
  found_.target_rows = t.rows;
  co_return true;
}

// Returns the differing ranges too large to list, split into smaller ones.
pg::Awaitable<std::vector<KeyRange>> RangeComparison::CompareRanges(std::vector<KeyRange> ranges, bool first_level) {
  RangeSet set(layout_, std::move(ranges));
  step_ = fmt::format("counting and hashing rows in {} key range(s)", set.Ranges().size());
  // Grouped by the bucket itself, in a hash table: the planner takes the
  // bucket to have as many values as the key, and would rather sort the whole
  // table, unless sorting is ruled out for this query. Rows between ranges
  // make groups of their own, which are not read.
  std::string sql = fmt::format(
      "SELECT {}, pg_catalog.count(*), pg_catalog.sum({})::text FROM {} t WHERE {} GROUP BY 1", set.BucketExpr("t"),
      hash_.Expr("t"), table_.Target(), set.Filter("t"));
  co_await OnBoth("SET enable_sort = off", "SET enable_sort = off");
  std::pair<pg::Result, pg::Result> results = co_await OnBoth(sql, sql);
  co_await OnBoth("RESET enable_sort", "RESET enable_sort");
  std::map<int64_t, Sums> on_source = ReadSums(results.first);
  std::map<int64_t, Sums> on_target = ReadSums(results.second);
  std::vector<Differing> listed, split;
  for (size_t i = 0; i < set.Ranges().size(); ++i) {
    Sums s = Find(on_source, set.Bucket(i));
    Sums t = Find(on_target, set.Bucket(i));
    if (first_level) {
      found_.source_rows += s.rows;
      found_.target_rows += t.rows;
    }
    if (s == t) continue;
    Differing range{set.Ranges()[i], s.rows, t.rows};
    (range.Rows() <= kLeafRows || range.range.depth >= kMaxDepth ? listed : split).push_back(std::move(range));
  }
  log_.Debug("table {}: {} key range(s) compared, {} differ", table_.name.Display(), set.Ranges().size(),
             listed.size() + split.size());
  co_await ListKeys(listed);
  if (split.empty() || !found_.complete) co_return std::vector<KeyRange>();
  co_return co_await Split(split);
}

// Lists the pairs of consecutive ranges together, kListBatchRows at most per query.
pg::Awaitable<void> RangeComparison::ListKeys(const std::vector<Differing>& ranges) {
  std::vector<KeyRange> batch;
  int64_t rows = 0;
  for (const auto& range : ranges) {
    if (!batch.empty() && rows + range.Rows() > kListBatchRows) {
      co_await ListKeyBatch(std::move(batch));
      batch.clear();
      rows = 0;
    }
    batch.push_back(range.range);
    rows += range.Rows();
  }
  if (!batch.empty()) co_await ListKeyBatch(std::move(batch));
}

pg::Awaitable<void> RangeComparison::ListKeyBatch(std::vector<KeyRange> ranges) {
  if (!found_.complete) co_return;
  RangeSet set(layout_, std::move(ranges));
  step_ = fmt::format("listing the keys of {} differing key range(s)", set.Ranges().size());
  std::string sql = fmt::format("SELECT {}, {} {}", layout_.TextColumns("t"), hash_.Expr("t"),
                                set.From(table_, set.Buckets(), "b"));
  std::pair<pg::Result, pg::Result> results = co_await OnBoth(sql, sql);
  size_t columns = layout_.Columns().size();
  int hash_column = static_cast<int>(columns);
  std::unordered_map<std::string, std::pair<KeyValue, int64_t>> on_source;
  for (int row = 0; row < results.first.Rows(); ++row) {
    KeyValue key = ReadKey(results.first, row, columns);
    std::string encoded = Encode(key);
    on_source.emplace(std::move(encoded), std::make_pair(std::move(key), results.first.GetInt(row, hash_column)));
  }
  for (int row = 0; row < results.second.Rows(); ++row) {
    KeyValue key = ReadKey(results.second, row, columns);
    auto found = on_source.find(Encode(key));
    if (found == on_source.end()) {
      AddCandidate(std::move(key));
      continue;
    }
    if (found->second.second != results.second.GetInt(row, hash_column)) AddCandidate(std::move(key));
    on_source.erase(found);
  }
  for (auto& [encoded, entry] : on_source) AddCandidate(std::move(entry.first));
}

// Each range is split at every step-th key of the node holding more of its
// rows, into parts of about kLeafRows rows there (at most kMaxFanout parts).
pg::Awaitable<std::vector<KeyRange>> RangeComparison::Split(const std::vector<Differing>& ranges) {
  std::vector<KeyRange> parents;
  std::vector<std::pair<size_t, int64_t>> by_source, by_target;
  for (size_t i = 0; i < ranges.size(); ++i) {
    parents.push_back(ranges[i].range);
    int64_t step = std::max(kLeafRows, (ranges[i].Rows() + kMaxFanout - 1) / kMaxFanout);
    (ranges[i].source_rows >= ranges[i].target_rows ? by_source : by_target).emplace_back(i, step);
  }
  RangeSet set(layout_, std::move(parents));
  step_ = fmt::format("splitting {} differing key range(s)", ranges.size());
  std::string source_sql = by_source.empty() ? std::string() : SplitPointsSql(set, table_, by_source);
  std::string target_sql = by_target.empty() ? std::string() : SplitPointsSql(set, table_, by_target);
  std::pair<pg::Result, pg::Result> results = co_await OnBoth(source_sql, target_sql);
  std::map<int64_t, std::vector<KeyValue>> points;
  for (const pg::Result* result : {&results.first, &results.second}) {
    for (int row = 0; row < result->Rows(); ++row) {
      KeyValue key;
      for (int column = 1; column < result->Columns(); ++column) key.emplace_back(result->Get(row, column));
      points[result->GetInt(row, 0)].push_back(std::move(key));
    }
  }
  std::vector<KeyRange> parts;
  for (size_t i = 0; i < set.Ranges().size(); ++i) {
    const KeyRange& parent = set.Ranges()[i];
    std::optional<KeyValue> lo = parent.lo;
    for (auto& point : points[set.Bucket(i)]) {
      parts.push_back({lo, point, parent.depth + 1});
      lo = std::move(point);
    }
    parts.push_back({lo, parent.hi, parent.depth + 1});
  }
  co_return parts;
}

// Ranges are compared level by level, in key order, so that every query's
// ranges are sorted, as the bucket tree needs.
pg::Awaitable<CandidateKeys> RangeComparison::Run() {
  bool whole_first = co_await NothingInFlight();
  if (whole_first) {
    bool equal = co_await WholeTableEqual();
    if (equal) co_return std::move(found_);
  }
  step_ = "sampling key ranges";
  std::vector<KeyRange> level = co_await SampleRanges(source_, table_, layout_, kRowsPerRange, kMaxRanges);
  bool first_level = true;
  while (!level.empty() && found_.complete) {
    std::vector<KeyRange> next;
    for (size_t start = 0; start < level.size() && found_.complete; start += kMaxRanges) {
      size_t end = std::min(level.size(), start + kMaxRanges);
      std::vector<KeyRange> batch(level.begin() + static_cast<long>(start), level.begin() + static_cast<long>(end));
      std::vector<KeyRange> parts = co_await CompareRanges(std::move(batch), first_level);
      next.insert(next.end(), std::make_move_iterator(parts.begin()), std::make_move_iterator(parts.end()));
    }
    first_level = false;
    level = std::move(next);
  }
  co_return std::move(found_);
}

}  // namespace

pg::Awaitable<CandidateKeys> FindCandidateKeys(pg::Connection& source, pg::Connection& target,
                                               const std::string& sync, const CapturedTable& table,
                                               const KeyLayout& layout, const RowHash& hash, std::string& step,
                                               const Logger& log) {
  RangeComparison comparison(source, target, sync, table, layout, hash, step, log);
  CandidateKeys found = co_await comparison.Run();
  co_return found;
}

}  // namespace pgtandem
