// Range checksums on both nodes at once, split where they differ, down to (key, hash) pairs.
#include "pgtandem/table_compare.hpp"

#include <algorithm>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "pgtandem/async.hpp"
#include "pgtandem/progress.hpp"
#include "pgtandem/purger.hpp"

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
// More keys changed since the target's progress than this, and the whole
// table is not compared: its key ranges are.
constexpr int64_t kMaxChangedKeys = 50000;
// Deltas and truncates that a target's applied snapshot, $1, does not see.
constexpr std::string_view kNotApplied =
    "txid >= pg_catalog.pg_snapshot_xmin($1::pg_snapshot) AND NOT pg_catalog.pg_visible_in_snapshot(txid, "
    "$1::pg_snapshot)";
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
  pg::Awaitable<bool> WholeTableEqual();
  pg::Awaitable<std::optional<std::vector<KeyValue>>> ChangedKeys(const std::string& applied);
  pg::Awaitable<bool> TruncatedSince(const std::string& applied);
  pg::Awaitable<void> TakeOut(const std::vector<KeyValue>& keys, Sums& on_source, Sums& on_target);
  pg::Awaitable<std::vector<KeyRange>> CompareRanges(std::vector<KeyRange> ranges, bool first_level);
  pg::Awaitable<void> ListKeys(const std::vector<Differing>& ranges);
  pg::Awaitable<void> ListKeyBatch(std::vector<KeyRange> ranges);
  pg::Awaitable<std::vector<KeyRange>> Split(const std::vector<Differing>& ranges);
  void AddCandidate(KeyValue key);
  void AddDiffering(const pg::Result& on_source, const pg::Result& on_target);

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

// The keys of the changes the source's open snapshot sees and the target's
// applied snapshot `applied` does not; nothing when there are more than
// kMaxChangedKeys: the table's key ranges are compared instead.
pg::Awaitable<std::optional<std::vector<KeyValue>>> RangeComparison::ChangedKeys(const std::string& applied) {
  pg::Result changed = co_await source_.Exec(
      fmt::format("SELECT {} FROM (SELECT DISTINCT {} FROM {} WHERE {} LIMIT {}) d", layout_.TextColumns("d"),
                  QuotedList(layout_.Names()), table_.DeltaTable(), kNotApplied, kMaxChangedKeys + 1),
      applied);
  if (changed.Rows() > kMaxChangedKeys) {
    log_.Debug("table {}: more than {} keys changed since the target's progress", table_.name.Display(),
               kMaxChangedKeys);
    co_return std::nullopt;
  }
  std::vector<KeyValue> keys;
  for (int row = 0; row < changed.Rows(); ++row) keys.push_back(ReadKey(changed, row, layout_.Columns().size()));
  co_return keys;
}

// Whether the table was truncated on the source after the target's applied
// snapshot `applied`, up to now. Asked after the scans, in a snapshot of its
// own: TRUNCATE is not MVCC-safe, and a scan whose snapshot it committed
// after may still read the emptied table.
pg::Awaitable<bool> RangeComparison::TruncatedSince(const std::string& applied) {
  pg::Result truncated = co_await source_.Exec(
      fmt::format("SELECT EXISTS (SELECT 1 FROM pgtandem.truncate_log WHERE table_id = {} AND {})", table_.id,
                  kNotApplied),
      applied);
  if (truncated.GetBool(0, 0)) log_.Debug("table {}: truncated since the target's progress", table_.name.Display());
  co_return truncated.GetBool(0, 0);
}

// Takes the rows of `keys` out of each node's count and sum, each node in its
// open snapshot, and files as candidates those that differ between the nodes.
pg::Awaitable<void> RangeComparison::TakeOut(const std::vector<KeyValue>& keys, Sums& on_source, Sums& on_target) {
  int first = static_cast<int>(layout_.Columns().size()) + 1;
  // Every row carries what remains of the node's totals.
  std::string sql = fmt::format(
      "SELECT {0}, h.hash, ${1}::int8 - pg_catalog.count(*) OVER (), "
      "(${2}::numeric - pg_catalog.sum(h.hash) OVER ())::text "
      "FROM {3} t CROSS JOIN LATERAL (SELECT {4} AS hash) h WHERE ({5}) IN (SELECT {6} FROM {7})",
      layout_.TextColumns("t"), first, first + 1, table_.Target(), hash_.Expr("t"), QuotedList(layout_.Names(), "t."),
      layout_.KeyCasts(), layout_.KeysFrom(1));
  auto params = [&](const Sums& sums) {
    pg::Params all = layout_.KeyParams(keys);
    all.emplace_back(std::to_string(sums.rows));
    all.emplace_back(sums.hashes);
    return all;
  };
  pg::Awaitable<pg::Result> from_source = source_.ExecParams(sql, params(on_source));
  pg::Awaitable<pg::Result> from_target = target_.ExecParams(sql, params(on_target));
  std::pair<pg::Result, pg::Result> results = co_await BothOf(std::move(from_source), std::move(from_target));
  // A node without any of those rows keeps its totals as they were.
  auto remaining = [first](const pg::Result& rows, Sums& sums) {
    if (rows.Rows() > 0) sums = {rows.GetInt(0, first), std::string(rows.Get(0, first + 1))};
  };
  remaining(results.first, on_source);
  remaining(results.second, on_target);
  AddDiffering(results.first, results.second);
}

// Counts and hashes every row of the table at once on each node, in a
// snapshot of its own. The target's is taken first: every change it has
// applied was read on the source before, so the source's snapshot, taken
// next, sees them all, and the nodes may differ only in the keys of the
// changes the source's snapshot sees and the target's progress does not.
// Those rows are taken out of both sums, each node in its snapshot, and
// become candidates for the re-check. Equal sums end the comparison, under a
// write load too, for about 40% less than the first level of ranges costs
// (pgbench_accounts, 10 million rows): no bucket to compute, no hash table to
// group in.
pg::Awaitable<bool> RangeComparison::WholeTableEqual() {
  step_ = "counting and hashing all rows";
  // Held from before the target's snapshot until the changed keys are read:
  // a purge in between could delete deltas that the target's progress does
  // not cover yet, once the daemon has applied them.
  co_await source_.Exec(PurgeLockSql("pg_advisory_lock_shared"));
  co_await target_.Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  Progress progress = co_await ReadProgress(target_, sync_);
  co_await source_.Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  std::string sql = fmt::format("SELECT pg_catalog.count(*), coalesce(pg_catalog.sum({}), 0)::text FROM {} t",
                                hash_.Expr("t"), table_.Target());
  std::pair<pg::Result, pg::Result> whole = co_await OnBoth(sql, sql);
  Sums s{whole.first.GetInt(0, 0), std::string(whole.first.Get(0, 1))};
  Sums t{whole.second.GetInt(0, 0), std::string(whole.second.Get(0, 1))};
  std::optional<std::vector<KeyValue>> changed = co_await ChangedKeys(progress.applied_snapshot);
  if (changed && !changed->empty()) co_await TakeOut(*changed, s, t);
  co_await OnBoth("COMMIT", "COMMIT");
  bool truncated = co_await TruncatedSince(progress.applied_snapshot);
  co_await source_.Exec(PurgeLockSql("pg_advisory_unlock_shared"));
  bool equal = changed && !truncated && s == t;
  log_.Debug("table {}: the whole table {} ({} key(s) changed since the target's progress)", table_.name.Display(),
             equal ? "is equal" : "differs", changed ? std::to_string(changed->size()) : "too many");
  if (!equal) co_return false;
  found_.source_rows = whole.first.GetInt(0, 0);
  found_.target_rows = whole.second.GetInt(0, 0);
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

// Files as candidates the keys whose (key, hash) pairs, listed by each node
// in its first columns, are not the same on both.
void RangeComparison::AddDiffering(const pg::Result& on_source, const pg::Result& on_target) {
  size_t columns = layout_.Columns().size();
  int hash_column = static_cast<int>(columns);
  std::unordered_map<std::string, std::pair<KeyValue, int64_t>> source_rows;
  for (int row = 0; row < on_source.Rows(); ++row) {
    KeyValue key = ReadKey(on_source, row, columns);
    std::string encoded = Encode(key);
    source_rows.emplace(std::move(encoded), std::make_pair(std::move(key), on_source.GetInt(row, hash_column)));
  }
  for (int row = 0; row < on_target.Rows(); ++row) {
    KeyValue key = ReadKey(on_target, row, columns);
    auto found = source_rows.find(Encode(key));
    if (found == source_rows.end()) {
      AddCandidate(std::move(key));
      continue;
    }
    if (found->second.second != on_target.GetInt(row, hash_column)) AddCandidate(std::move(key));
    source_rows.erase(found);
  }
  for (auto& [encoded, entry] : source_rows) AddCandidate(std::move(entry.first));
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
  AddDiffering(results.first, results.second);
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
  bool equal = co_await WholeTableEqual();
  if (equal) co_return std::move(found_);
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
