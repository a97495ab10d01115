// How far a target is behind its source, read from the source's delta tables
// cheaply enough for a backlog of 100 million deltas.
#pragma once

#include <string>
#include <vector>

#include "pgtandem/catalog.hpp"
#include "pgtandem/metrics.hpp"
#include "pgtandem/pg/connection.hpp"

namespace pgtandem {

// Up to this many pending deltas per table are counted exactly (an index
// range scan that stops there); a larger backlog is estimated from a sample
// of about kLagSamplePages pages of the delta table, and marked as such.
inline constexpr int64_t kExactPendingLimit = 100'000;
inline constexpr int64_t kLagSamplePages = 2'000;

// Pending changes of `tables` for a target that has applied `applied_snapshot`
// (delta rows and truncates committed on the source, not visible in it), and
// the age of the oldest: its capture time, as the source's clock tells it.
pg::Awaitable<LagReading> ReadLag(pg::Connection& source, const std::vector<CapturedTable>& tables,
                                  const std::string& applied_snapshot);

// Whether any change of `tables` committed on the source is not visible in
// `snapshot`: exact, and stops at the first one it finds.
pg::Awaitable<bool> HasChangesNotIn(pg::Connection& source, const std::vector<CapturedTable>& tables,
                                    const std::string& snapshot);

// Deltas per second applied to a target over the last minute, from the
// samples its progress copies leave on the source (0 with none in that minute).
pg::Awaitable<double> ReadApplyRate(pg::Connection& source, const std::string& sync, const std::string& target);

}  // namespace pgtandem
