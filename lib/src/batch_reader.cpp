// Batch planning on the source. Deltas are found by snapshot visibility, never
// by "id greater than the last one seen": ids are assigned at write time and
// transactions commit in another order.
#include "pgtandem/batch_reader.hpp"

#include <limits>

#include <fmt/format.h>

#include "pgtandem/xid_snapshot.hpp"

namespace pgtandem {
namespace {

// Below this many deltas a recopy saves little, and the key path keeps what
// a recopy gives up: the target's readers are not locked out, and rows
// written on the target directly are left alone.
constexpr int64_t kRecopyMinDeltas = 10'000;

// The deltas of transactions visible in `end` and not in `applied`. The range
// on txid lets the (txid, seq) index skip everything older than `applied`.
std::string WindowCondition(const std::string& applied, const std::string& end, std::string_view alias = "d") {
  std::string a = QuoteLiteral(applied) + "::pg_snapshot";
  std::string e = QuoteLiteral(end) + "::pg_snapshot";
  return fmt::format(
      "{2}.txid >= pg_catalog.pg_snapshot_xmin({0}) AND {2}.txid < pg_catalog.pg_snapshot_xmax({1}) "
      "AND NOT pg_catalog.pg_visible_in_snapshot({2}.txid, {0}) AND pg_catalog.pg_visible_in_snapshot({2}.txid, {1})",
      a, e, alias);
}

// Relations truncated inside the window, named from the catalog (never from
// stored text) and only if they are the table or one of its partitions.
std::string TruncationsSql(const CapturedTable& table, const std::string& window) {
  return fmt::format(
      "SELECT DISTINCT pg_catalog.format('%I.%I', n.nspname, c.relname) FROM pgtandem.truncate_log l "
      "JOIN pg_catalog.pg_class c ON c.oid = l.relid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
      "WHERE l.table_id = {0} AND {1} AND (l.relid = {2} OR l.relid IN "
      "(SELECT relid FROM pg_catalog.pg_partition_tree({2}::oid::regclass)))",
      table.id, window, table.relid);
}

// The table's rows as the planner last estimated them: its own, or its
// partitions' for a partitioned table (whose own estimate would count them
// twice). Looked up by oid, as it is asked at every batch.
std::string TableRowsSql(const CapturedTable& table) {
  return fmt::format(
      "(SELECT (CASE WHEN c.relkind = 'p' THEN (SELECT pg_catalog.sum(GREATEST(l.reltuples, 0)) "
      "FROM pg_catalog.pg_partition_tree(c.oid) p JOIN pg_catalog.pg_class l ON l.oid = p.relid WHERE p.isleaf) "
      "ELSE GREATEST(c.reltuples, 0) END)::bigint FROM pg_catalog.pg_class c WHERE c.oid = {})",
      table.relid);
}

std::string After(const Position& from) {
  if (from.txid == 0) return {};
  return fmt::format(" AND (d.txid, d.seq) > ('{}'::xid8, {})", from.txid, from.seq);
}

Position StartOf(const CapturedTable& table, const Position& from) {
  return table.id == from.table_id ? from : Position{table.id, 0, 0};
}

// True while the target may hold rows newer than `applied`: every transaction
// below the xmin of `applied` has ended, so once the newer rows' snapshot lies
// wholly below it, `applied` covers them.
bool RowsNewerThan(const std::optional<std::string>& rows_newer_until, const std::string& applied) {
  if (!rows_newer_until) return false;
  return XidSnapshot::Parse(*rows_newer_until).xmax > XidSnapshot::Parse(applied).xmin;
}

}  // namespace

int64_t Batch::Deltas() const {
  int64_t total = 0;
  for (const auto& s : segments) total += s.deltas;
  return total;
}

pg::Awaitable<std::vector<BatchReader::PendingTable>> BatchReader::PendingTables(const std::string& applied,
                                                                               const std::string& end,
                                                                               const Position& from) {
  std::string sql;
  std::string window = WindowCondition(applied, end);
  for (const auto& table : tables_) {
    if (table.id < from.table_id) continue;
    if (!sql.empty()) sql += " UNION ALL ";
    Position start = StartOf(table, from);
    // Only a window's first piece may be recopied, so only it needs the table's size.
    std::string rows = start.txid == 0 && recopy_percent_ > 0 ? TableRowsSql(table) : "0::bigint";
    sql += fmt::format("SELECT {0}, {4} WHERE EXISTS (SELECT 1 FROM {1} d WHERE {2}{3})", table.id, table.DeltaTable(),
                       window, After(start), rows);
    // A window holding only a TRUNCATE still has work for the table's first segment.
    if (start.txid == 0) {
      sql += fmt::format(" OR EXISTS (SELECT 1 FROM pgtandem.truncate_log l WHERE l.table_id = {} AND {})", table.id,
                         WindowCondition(applied, end, "l"));
    }
  }
  std::vector<PendingTable> pending;
  if (sql.empty()) co_return pending;
  pg::Result ids = co_await source_.Exec(sql);
  for (int row = 0; row < ids.Rows(); ++row) {
    int id = static_cast<int>(ids.GetInt(row, 0));
    for (const auto& table : tables_) {
      if (table.id == id) pending.push_back({&table, ids.IsNull(row, 1) ? 0 : ids.GetInt(row, 1)});
    }
  }
  co_return pending;
}

// Deltas of the window from `segment.from` on, `cap` at most: counting
// needs no order, and stops at the cap however long the window is.
pg::Awaitable<void> BatchReader::CountDeltas(Segment& segment, const std::string& window, int64_t cap) {
  pg::Result count = co_await source_.Exec(fmt::format(
      "SELECT pg_catalog.count(*), pg_catalog.count(*) FILTER (WHERE s.inserted) FROM "
      "(SELECT d.inserted FROM {} d WHERE {} LIMIT {}) s",
      segment.table->DeltaTable(), window, cap));
  segment.deltas = count.GetInt(0, 0);
  segment.inserted = count.GetInt(0, 1);
}

// Only a window as long as the budget or longer is read in order, to find
// where this batch's piece of it ends.
pg::Awaitable<Segment> BatchReader::ReadSegment(const PendingTable& pending, const std::string& applied,
                                                const std::string& end, const Position& from, int64_t budget,
                                                bool rows_newer) {
  const CapturedTable& table = *pending.table;
  Segment segment{&table, StartOf(table, from), std::nullopt, 0, {}};
  std::string window = WindowCondition(applied, end) + After(segment.from);
  // A window that may be recopied is counted whole, at once: both the choice
  // and the batch's figures need its whole count, and counting it to the
  // budget first would read it twice.
  bool may_recopy = pending.rows > 0;
  constexpr int64_t kWhole = std::numeric_limits<int64_t>::max();
  int64_t cap = may_recopy || budget == kWhole ? kWhole : budget + 1;
  co_await CountDeltas(segment, window, cap);
  // A segment that uses the whole budget ends the batch, and Next() keeps
  // the window open only for a segment with an end: so it gets one even
  // when the window ends there too.
  bool split = segment.deltas >= budget;
  segment.inserts_checked = !rows_newer && segment.from.txid == 0 && !split;
  segment.recopy = may_recopy && WorthRecopy(segment, pending.rows);
  if (split) {
    // A recopy takes the rest of the window, past the budget: its cost is the table's size, whatever the count.
    int64_t offset = segment.recopy ? 0 : budget - 1;
    std::string direction = segment.recopy ? "DESC" : "";
    pg::Result last = co_await source_.Exec(fmt::format(
        "SELECT d.txid::text, d.seq FROM {0} d WHERE {1} ORDER BY d.txid {2}, d.seq {2} OFFSET {3} LIMIT 1",
        table.DeltaTable(), window, direction, offset));
    segment.to = std::make_pair(last.GetInt(0, 0), last.GetInt(0, 1));
    if (!segment.recopy) segment.deltas = budget;
  }
  if (segment.from.txid == 0) {
    pg::Result truncated = co_await source_.Exec(TruncationsSql(table, WindowCondition(applied, end, "l")));
    for (int row = 0; row < truncated.Rows(); ++row) segment.truncated.emplace_back(truncated.Get(row, 0));
  }
  co_return segment;
}

// Copying a table whole costs about a third of what applying the same rows
// key by key does (no DELETE, no second entry per key in its indexes), so
// once a window's deltas reach batch.recopy_percent of the table's `rows`
// the copy is cheaper, however many of them hit the same keys.
bool BatchReader::WorthRecopy(const Segment& segment, int64_t rows) const {
  // A row written on the target in the way of a key the source inserted is found only key by key.
  if (segment.inserts_checked && segment.inserted > 0) return false;
  return segment.deltas >= kRecopyMinDeltas && segment.deltas * 100 >= rows * recopy_percent_;
}

pg::Awaitable<std::optional<Batch>> BatchReader::Next(const Progress& progress, int64_t max_deltas) {
  co_await source_.Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  Batch batch;
  batch.applied = progress.applied_snapshot;
  Position from = progress.window_end ? progress.position : Position{};
  // The transaction's snapshot, which every row of the batch is read in.
  pg::Result now = co_await source_.Exec("SELECT pg_catalog.pg_current_snapshot()::text");
  batch.end = progress.window_end ? *progress.window_end : now.Get(0, 0);
  std::vector<PendingTable> pending = co_await PendingTables(batch.applied, batch.end, from);
  if (pending.empty() && !progress.window_end) {
    co_await Finish();
    co_return std::nullopt;
  }
  int64_t budget = max_deltas;
  batch.next = progress;
  bool rows_newer = RowsNewerThan(progress.rows_newer_until, batch.applied);
  // A piece of a window reads rows newer than the window's end.
  if (progress.window_end) {
    batch.next.rows_newer_until = now.Get(0, 0);
  } else if (!rows_newer) {
    batch.next.rows_newer_until.reset();
  }
  for (const PendingTable& table : pending) {
    Segment segment = co_await ReadSegment(table, batch.applied, batch.end, from, budget, rows_newer);
    budget -= segment.deltas;
    batch.segments.push_back(std::move(segment));
    if (budget <= 0) break;
  }
  const Segment* last = batch.segments.empty() ? nullptr : &batch.segments.back();
  if (last && last->to) {
    batch.next.window_end = batch.end;
    batch.next.position = {last->table->id, last->to->first, last->to->second};
  } else {
    batch.next.applied_snapshot = batch.end;
    batch.next.window_end.reset();
    batch.next.position = {};
  }
  co_return batch;
}

pg::Awaitable<void> BatchReader::Finish() { co_await source_.Exec("COMMIT"); }

std::string BatchReader::DeltaFilter(const Batch& batch, const Segment& segment) const {
  std::string filter = WindowCondition(batch.applied, batch.end) + After(segment.from);
  if (segment.to) filter += fmt::format(" AND (d.txid, d.seq) <= ('{}'::xid8, {})", segment.to->first, segment.to->second);
  return filter;
}

std::string BatchReader::KeysCopySql(const Batch& batch, const Segment& segment) const {
  // In key order, so that the target's deletes probe its index page by page.
  // seq cannot order one key's changes (backends cache blocks of it), so a key
  // counts as inserted only when every change to it was that insert: any
  // delete or update, before or after, clears it.
  std::string keys = QuotedList(segment.table->key_columns, "d.");
  if (segment.inserts_checked) {
    return fmt::format("COPY (SELECT {0}, pg_catalog.bool_and(d.inserted) FROM {1} d WHERE {2} GROUP BY {0} ORDER BY {0}) "
                       "TO STDOUT",
                       keys, segment.table->DeltaTable(), DeltaFilter(batch, segment));
  }
  return fmt::format("COPY (SELECT DISTINCT {0}, false FROM {1} d WHERE {2} ORDER BY {0}) TO STDOUT", keys,
                     segment.table->DeltaTable(), DeltaFilter(batch, segment));
}

std::string BatchReader::RowsCopySql(const Batch& batch, const Segment& segment) const {
  const CapturedTable& table = *segment.table;
  return table.CopyOutSql(fmt::format("WHERE ({}) IN (SELECT {} FROM {} d WHERE {})", QuotedList(table.key_columns, "t."),
                                      QuotedList(table.key_columns, "d."), table.DeltaTable(),
                                      DeltaFilter(batch, segment)));
}

}  // namespace pgtandem
