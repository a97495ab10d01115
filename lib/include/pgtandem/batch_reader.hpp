// Plans batches on the source: the deltas visible in one snapshot and not in the previous one.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "pgtandem/catalog.hpp"
#include "pgtandem/pg/connection.hpp"
#include "pgtandem/progress.hpp"

namespace pgtandem {

// The deltas of one table inside a batch: after `from`, up to and including `to`.
struct Segment {
  const CapturedTable* table = nullptr;
  Position from;                                   // exclusive; txid 0: the table's first delta
  std::optional<std::pair<int64_t, int64_t>> to;   // (txid, seq); nullopt: to the window's end
  int64_t deltas = 0;
  // Relations truncated inside the window; emptied on the target before any row.
  std::vector<std::string> truncated;
  // The segment holds every delta of the table's window and the target holds
  // nothing newer than the window's start: a key the source first inserted
  // in it must be absent from the target, and finding it there is a collision.
  bool inserts_checked = false;
  // Deltas in the segment that inserted their key.
  int64_t inserted = 0;
  // The segment's deltas touch so much of the table that emptying it and
  // copying it whole in the batch's snapshot is cheaper than key by key.
  bool recopy = false;
};

// A window (applied, end] of source transactions, or the next piece of one.
// Batches follow snapshots, not delta ids: a transaction that commits late is
// in the window of the first snapshot that sees it, whatever its ids.
struct Batch {
  std::string applied;
  std::string end;
  std::vector<Segment> segments;
  Progress next;  // the target's progress once this batch is committed
  int64_t Deltas() const;
};

class BatchReader {
 public:
  // `recopy_percent`: batch.recopy_percent.
  BatchReader(pg::Connection& source, const std::vector<CapturedTable>& tables, int recopy_percent)
      : source_(source), tables_(tables), recopy_percent_(recopy_percent) {}

  // Opens a REPEATABLE READ, READ ONLY transaction on the source and plans a
  // batch of at most `max_deltas`; returns nullopt (and ends the transaction)
  // when nothing is pending. The transaction stays open until Finish(), so the
  // rows read for the batch all come from one snapshot.
  pg::Awaitable<std::optional<Batch>> Next(const Progress& progress, int64_t max_deltas);
  pg::Awaitable<void> Finish();

  // COPY ... TO STDOUT of the distinct keys a segment names, each with
  // whether its only change in the segment inserted it (always false when
  // the segment's inserts are not checked).
  std::string KeysCopySql(const Batch& batch, const Segment& segment) const;
  // COPY ... TO STDOUT of the current rows for those keys (rows deleted since are absent).
  std::string RowsCopySql(const Batch& batch, const Segment& segment) const;

 private:
  // A table with deltas in the window, and its estimated rows when this
  // batch may recopy it (0 when it may not).
  struct PendingTable {
    const CapturedTable* table;
    int64_t rows;
  };

  std::string DeltaFilter(const Batch& batch, const Segment& segment) const;
  pg::Awaitable<std::vector<PendingTable>> PendingTables(const std::string& applied, const std::string& end,
                                                        const Position& from);
  pg::Awaitable<Segment> ReadSegment(const PendingTable& pending, const std::string& applied, const std::string& end,
                                     const Position& from, int64_t budget, bool rows_newer);
  pg::Awaitable<void> CountDeltas(Segment& segment, const std::string& window, int64_t cap);
  bool WorthRecopy(const Segment& segment, int64_t rows) const;

  pg::Connection& source_;
  const std::vector<CapturedTable>& tables_;
  int recopy_percent_;
};

}  // namespace pgtandem
