// `pgtandem repair`: queues the keys compare found differing as deltas, so the daemon re-copies them its normal way.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "pgtandem/compare.hpp"
#include "pgtandem/config.hpp"
#include "pgtandem/pg/connection.hpp"

namespace pgtandem {

struct TableRepair {
  TableName table;
  int64_t keys = 0;     // delta rows queued
  std::string skipped;  // why nothing could be queued (its definition differs); empty otherwise
  bool complete = true;  // false: more keys differ than compare lists; run repair again once these are applied
};

struct RepairReport {
  std::string sync;
  std::vector<TableRepair> tables;  // those with something to repair, in capture order

  int64_t Keys() const;
  // Every difference found was queued.
  bool Complete() const;
};

// Inserts, in one source transaction, each differing or unverified key of
// every target in `comparison` into its table's delta table, once, and wakes
// the daemon. Only the key columns are written; txid and seq come from the
// columns' defaults. The daemon then deletes those keys on every target of
// the sync and copies in the source's rows: keys that were equal on another
// target are re-applied there, harmlessly, since apply is state-based.
pg::Awaitable<RepairReport> QueueRepairs(boost::asio::any_io_executor executor, const Config& config,
                                         const SyncComparison& comparison);

std::string FormatRepair(const RepairReport& report);

}  // namespace pgtandem
