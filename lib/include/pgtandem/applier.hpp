// Applies a batch to one target: one transaction, rows streamed from the source, progress inside.
#pragma once

#include <string>
#include <vector>

#include "pgtandem/batch_reader.hpp"
#include "pgtandem/catalog.hpp"
#include "pgtandem/log.hpp"
#include "pgtandem/pg/connection.hpp"
#include "pgtandem/sync_gate.hpp"
#include "pgtandem/progress.hpp"

namespace pgtandem {

struct ApplyStats {
  int64_t deltas = 0;
  int64_t keys = 0;
  int64_t rows = 0;
  int64_t bytes = 0;
};

struct ApplyResult {
  Progress progress;  // as committed on the target
  ApplyStats stats;
};

// Replica mode (no target triggers or foreign-key checks on replicated rows;
// the error names the grant when the role lacks it) and durable commits.
pg::Awaitable<void> PrepareReplicaSession(pg::Connection& target);

// TRUNCATE, or DELETE when another table references the relation by foreign
// key (TRUNCATE refuses that even in replica mode) or the role lacks the
// TRUNCATE grant (logged at info, with the server's reason); inside the caller's transaction.
pg::Awaitable<void> EmptyRelation(pg::Connection& target, const std::string& relation, const Logger& log);

class Applier {
 public:
  // Commits only while `gate` is open (this daemon holds the sync's lock).
  Applier(pg::Connection& target, std::string sync, const SyncGate& gate, const Logger& log)
      : target_(target), sync_(std::move(sync)), gate_(gate), log_(log) {}

  // Once per connection: replica mode (no target triggers or foreign-key
  // checks on replicated rows) and a temporary key table per replicated table.
  pg::Awaitable<void> Prepare(const std::vector<CapturedTable>& tables);

  // Makes the target match the source's current rows for every key in the
  // batch, and records `batch.next` as its progress, in one transaction.
  // Apply is state-based, so applying a batch twice changes nothing; still,
  // the progress row is compare-and-set under a row lock, so a batch is
  // committed once even should two daemons both apply the sync: the second
  // finds the row moved on, rolls back and throws Error(kState). The batch is
  // also rolled back when the sync's gate closed while it was applied.
  pg::Awaitable<ApplyResult> Apply(pg::Connection& source, const BatchReader& reader, const Batch& batch);

  // The table Apply() was at when it last stopped, for the error status shows; null before any.
  const CapturedTable* CurrentTable() const { return current_table_; }

 private:
  pg::Awaitable<void> LockProgress(int64_t expected_batches);
  // False when the target refused: the rows are to be deleted instead.
  pg::Awaitable<bool> TruncateForRecopy(const CapturedTable& table);
  pg::Awaitable<void> ApplySegment(pg::Connection& source, const BatchReader& reader, const Batch& batch,
                                   const Segment& segment, ApplyStats& stats);

  pg::Connection& target_;
  std::string sync_;
  const SyncGate& gate_;
  const Logger& log_;
  const CapturedTable* current_table_ = nullptr;
};

}  // namespace pgtandem
