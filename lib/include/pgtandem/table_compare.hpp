// Finds the keys whose rows may differ between the source and a target, without shipping rows.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pgtandem/catalog.hpp"
#include "pgtandem/key_ranges.hpp"
#include "pgtandem/log.hpp"
#include "pgtandem/pg/connection.hpp"
#include "pgtandem/row_hash.hpp"

namespace pgtandem {

// More differing keys than this in one table are not looked for: their
// (key, hash) pairs would have to be held, and a table that far off is a case
// for bootstrap, not for repair.
inline constexpr size_t kMaxKeysPerTable = 100000;

// What the range comparison found in one table.
struct CandidateKeys {
  std::vector<KeyValue> keys;  // rows that differed when read, in no particular order
  int64_t source_rows = 0;
  int64_t target_rows = 0;
  bool complete = true;  // false: kMaxKeysPerTable reached, more keys may differ
};

// Compares one table between two nodes, querying both at once. First each
// node counts and hashes the whole table in a snapshot of its own, the
// target's taken first; the rows of the keys changed since the target's
// progress (at most 50,000) are taken out of both sums and listed as
// (key, row hash) pairs, and equal sums end there. Otherwise each node counts
// and hashes its own rows per primary-key range; ranges whose sums differ are
// split and compared again, down to ranges small enough to list (key, row
// hash) pairs, which pgtandem diffs. The nodes read at their own moments, so
// keys whose change is still on its way to the target are among the
// candidates: RecheckKeys() tells them from real differences. `step` says
// what it is doing, for a progress display.
pg::Awaitable<CandidateKeys> FindCandidateKeys(pg::Connection& source, pg::Connection& target,
                                               const std::string& sync, const CapturedTable& table, const KeyLayout& layout,
                                               const RowHash& hash, std::string& step, const Logger& log);

}  // namespace pgtandem
