// Applies a batch to one target: one transaction, rows streamed from the source, progress inside.
#pragma once

#include <string>
#include <vector>

#include "pgtandem/batch_reader.hpp"
#include "pgtandem/catalog.hpp"
#include "pgtandem/log.hpp"
#include "pgtandem/pg/connection.hpp"
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
// key (TRUNCATE refuses that even in replica mode); inside the caller's transaction.
pg::Awaitable<void> EmptyRelation(pg::Connection& target, const std::string& relation);

class Applier {
 public:
  Applier(pg::Connection& target, std::string sync, const Logger& log)
      : target_(target), sync_(std::move(sync)), log_(log) {}

  // Once per connection: replica mode (no target triggers or foreign-key
  // checks on replicated rows) and a temporary key table per replicated table.
  pg::Awaitable<void> Prepare(const std::vector<CapturedTable>& tables);

  // Makes the target match the source's current rows for every key in the
  // batch, and records `batch.next` as its progress, in one transaction.
  // Apply is state-based, so applying a batch twice changes nothing.
  pg::Awaitable<ApplyResult> Apply(pg::Connection& source, const BatchReader& reader, const Batch& batch);

  // The table Apply() was at when it last stopped, for the error status shows; null before any.
  const CapturedTable* CurrentTable() const { return current_table_; }

 private:
  pg::Awaitable<void> ApplySegment(pg::Connection& source, const BatchReader& reader, const Batch& batch,
                                   const Segment& segment, ApplyStats& stats);

  pg::Connection& target_;
  std::string sync_;
  const Logger& log_;
  const CapturedTable* current_table_ = nullptr;
};

}  // namespace pgtandem
