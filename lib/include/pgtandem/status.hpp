// What "pgtandem status" reports: per sync and target, how far behind, how fast, and why.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <nlohmann/json.hpp>

#include "pgtandem/config.hpp"
#include "pgtandem/freeze.hpp"
#include "pgtandem/lock_wait.hpp"
#include "pgtandem/pg/connection.hpp"
#include "pgtandem/sync_lock.hpp"

namespace pgtandem {

// A target's lag is "streaming" below this, "catching up" from it.
inline constexpr double kStreamingLagSeconds = 10.0;

struct TargetStatus {
  std::string target;
  bool reachable = false;
  std::string unreachable_reason;
  // "bootstrap --copy" has started on this target and not finished.
  bool copying = false;
  int tables_copied = 0;
  std::optional<int64_t> pending_deltas;  // changes captured, not yet applied on this target
  bool pending_estimated = false;         // pending_deltas is sampled (see lag.hpp)
  std::optional<double> lag_seconds;      // age of the oldest pending change; 0 when caught up
  double apply_rate = 0;                  // deltas per second over the last minute
  std::optional<std::string> last_applied_at;
  std::optional<std::string> applied_snapshot;
  int64_t batches = 0;
  int64_t deltas_applied = 0;
  int64_t rows_copied = 0;
  std::optional<std::string> last_error;  // recorded by the daemon; cleared when it is healthy again
  std::optional<std::string> last_error_at;
  std::optional<std::string> last_error_sqlstate;
  std::optional<std::string> last_error_table;
  // The daemon's batch on this target waits for a lock another session holds.
  std::optional<LockWait> lock_wait;
  // unreachable, copying, unknown (the source could not be read), stopped
  // (no daemon runs the sync), error, streaming or catching up.
  std::string state;

  bool CaughtUp() const { return pending_deltas == 0; }
  // Seconds until caught up at the current rate: 0 when caught up, nullopt
  // when nothing is being applied, no daemon applies, or pending is unknown.
  std::optional<double> EtaSeconds() const;
  // Lag within `max_lag` seconds; 0 asks for no pending change at all.
  bool WithinLag(double max_lag) const;
};

struct SyncStatus {
  std::string sync;
  std::string source;
  bool source_reachable = false;
  std::string source_unreachable_reason;
  // Reachable, but not replicating: e.g. capture not installed.
  std::string source_problem;
  std::optional<DaemonPresence> daemon;  // nullopt when the source could not be read
  std::optional<FreezeState> freeze;     // set while cutover keeps writes frozen
  int tables = 0;                        // captured tables of the sync
  // Tables the sync's patterns select on the source that have no capture
  // (created since install): their changes are not replicated until "install".
  std::vector<std::string> not_captured;
  std::vector<TargetStatus> targets;
};

// Reads the databases (not the daemon), so it works whether the daemon runs
// or not. `only_target` narrows every sync to that target.
pg::Awaitable<std::vector<SyncStatus>> ReadStatus(boost::asio::any_io_executor executor, const Config& config,
                                                  const std::vector<const SyncConfig*>& syncs,
                                                  const std::optional<std::string>& only_target = std::nullopt);

// "0.4 s", "12 s", "3 min 12 s", "2 h 05 min": how long, for people.
std::string FormatDuration(double seconds);
std::string FormatStatusTable(const std::vector<SyncStatus>& status);
// Schema in README.md ("status --json"); fields are only ever added.
nlohmann::json StatusToJson(const std::vector<SyncStatus>& status);

}  // namespace pgtandem
