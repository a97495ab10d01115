// Tells keys that really differ from keys whose change was still on its way to the target.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "pgtandem/catalog.hpp"
#include "pgtandem/key_ranges.hpp"
#include "pgtandem/log.hpp"
#include "pgtandem/pg/connection.hpp"
#include "pgtandem/row_hash.hpp"

namespace pgtandem {

// The keys of one table that differ once changes in flight are accounted for.
struct SettledKeys {
  std::vector<KeyValue> missing;     // on the source, not on the target
  std::vector<KeyValue> extra;       // on the target, not on the source
  std::vector<KeyValue> different;   // on both, with different contents
  std::vector<KeyValue> unverified;  // still changing, or the target had not caught up, at the deadline
  bool target_stalled = false;       // the target did not apply the source's changes before the deadline
};

// Re-reads `keys` in rounds. Each round reads them on the source in a
// snapshot S, waits until the target has applied every change of the table
// that S sees (its progress, pgtandem.progress, against the source's deltas),
// reads them on the target, then looks in the deltas for keys changed after
// S. A key that differs and has not changed since S differs for good: the
// target, having applied S, must hold the source's row as of S. A changed key
// goes to the next round. Purging is held off meanwhile (see kPurgeLockClass).
pg::Awaitable<SettledKeys> RecheckKeys(pg::Connection& source, pg::Connection& target, const std::string& sync,
                                       const CapturedTable& table, const KeyLayout& layout, const RowHash& hash,
                                       std::vector<KeyValue> keys, std::chrono::steady_clock::time_point deadline,
                                       const Logger& log);

// `keys` in the source's key order (the order compare's ranges use).
pg::Awaitable<std::vector<KeyValue>> SortKeys(pg::Connection& source, const KeyLayout& layout,
                                              std::vector<KeyValue> keys);

}  // namespace pgtandem
