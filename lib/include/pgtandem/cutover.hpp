// "pgtandem cutover": freeze, wait for the target, final sequence sync, verify, marker.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "pgtandem/config.hpp"
#include "pgtandem/freeze.hpp"
#include "pgtandem/pg/connection.hpp"

namespace pgtandem {

struct CutoverOptions {
  bool freeze = false;                        // freeze writes (freeze.hpp); otherwise the DBA has stopped them
  std::chrono::milliseconds grace{5000};      // open write transactions get this long to finish
  std::chrono::milliseconds max_wait{60000};  // longest wait for writers (without freeze) and for the target
};

struct TableCount {
  std::string table;  // display name
  int64_t source = 0;
  int64_t target = 0;
};

// What cutover found; the command prints it as the marker.
struct CutoverReport {
  FreezePoint point;  // the source's position once writes had stopped
  std::vector<TableCount> counts;
  int sequences = 0;  // sequences of the sync on the target, all set by the final sync
  // How long writes had been frozen when verification ended: since the freeze
  // by pgtandem, or since the freeze point when the DBA froze them.
  double frozen_seconds = 0;
  bool frozen_by_pgtandem = false;
  // Why the target is not safe to promote; empty when it is.
  std::vector<std::string> problems;

  bool Safe() const { return problems.empty(); }
};

// Called with one line as each step ends, its duration included.
using CutoverStepLog = std::function<void(const std::string& line)>;

// The flip, for one target of one sync:
//  1. writes stop: frozen here (options.freeze), or the open write transactions
//     are waited out; then the freeze point is taken;
//  2. waits until the target has applied every change committed on the source
//     (the daemon does the applying), up to options.max_wait;
//  3. final sequence sync (sequences.hpp), every column scanned;
//  4. row counts of every table compared, no change may have reached the
//     source after the freeze point, and no sequence may be at risk.
// Throws Error for what stops it (kTimeout for max_wait, kState when no daemon
// runs the sync while changes are pending, or a sequence stays at risk); a
// verification that fails is reported in `problems`. Writes stay frozen
// either way: "cutover --unfreeze" lets them back in.
pg::Awaitable<CutoverReport> RunCutover(boost::asio::any_io_executor executor, const Config& config,
                                        const SyncConfig& sync, const std::string& target,
                                        const CutoverOptions& options, const CutoverStepLog& step);

}  // namespace pgtandem
