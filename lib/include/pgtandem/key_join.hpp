// How a segment's keys meet the table they name: on the source to read the
// rows to copy, on the target to delete the old ones.
#pragma once

#include <cstdint>
#include <string>

#include "pgtandem/catalog.hpp"
#include "pgtandem/pg/connection.hpp"

namespace pgtandem {

// The planner cannot tell how many deltas pass pg_visible_in_snapshot(), nor
// how many keys the target's temporary key table holds, so left to itself it
// guesses: index probes for a million keys, or, worse, a scan of the whole
// table for each of many batches, which makes catch-up time grow with the
// square of the backlog. We know both counts, so we choose.
enum class KeyJoin {
  kIndexProbes,  // one primary key lookup per key: cost follows the keys
  kTableScan,    // one pass over the table, keys hashed: cost follows the table
};

// Below this many keys, probes win on any table worth replicating; the
// table's size is not even looked up.
inline constexpr int64_t kKeysWorthAScan = 10000;

// A scan costs what the table's pages hold, dead rows included, so it is
// priced by the pages on disk now (pg_class's counts are as old as the last
// vacuum, and a catch-up doubles a table's size between two vacuums).
// Measured on pgbench_accounts (61 rows a page): on the source a probe costs
// about 3 us and a scanned page 12 us, so a scan wins from 4 keys a page; on
// the target a probe costs less than the delete it leads to, and a scan wins
// from about 8 keys a page.
KeyJoin ChooseKeyJoin(int64_t keys, double pages, pg::Side side);

// "index probes" or "a table scan", for logs.
std::string_view Describe(KeyJoin join);

// Statement that makes the current transaction use `join` (settings are
// transaction-local, so every segment sets them for itself).
std::string KeyJoinSettingsSql(KeyJoin join);

// The table's heap pages on `node`, partitions included.
pg::Awaitable<double> RelationPages(pg::Connection& node, const CapturedTable& table);

}  // namespace pgtandem
