// What the daemon counts while it runs, rendered in the Prometheus text format.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "pgtandem/error.hpp"

namespace pgtandem {

// A target's backlog as the lag monitor last read it from the source.
struct LagReading {
  int64_t pending = 0;                // committed changes not yet in the target's applied snapshot
  bool estimated = false;             // pending was sampled, not counted (see lag.hpp)
  std::optional<double> lag_seconds;  // age of the oldest of them; 0 when none
};

// Workers, monitors and the sync lock update it from any thread; the metrics
// server renders it. Every call holds one mutex for a few map operations and
// never touches a database, so a scrape cannot hold back replication, and a
// stuck database cannot hold back a scrape.
class Metrics {
 public:
  // Upper bounds of the batch duration histogram, in seconds.
  static constexpr std::array<double, 13> kBatchSeconds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                           1,     2.5,  5,     10,   30,  60};

  // Counters of a (sync, target) start at 0 from here, so they exist before
  // the first event. Events of a target not added, or removed, are dropped:
  // a worker stopping after a reload does not bring its series back.
  void AddTarget(const std::string& sync, const std::string& target);
  void RemoveTarget(const std::string& sync, const std::string& target);
  // The sync's lock gauge exists from here; RemoveSync drops it and every target of the sync.
  void AddSync(const std::string& sync);
  void RemoveSync(const std::string& sync);
  // `table_deltas`: deltas applied per table (display name) in the batch.
  void RecordBatch(const std::string& sync, const std::string& target, std::chrono::duration<double> duration,
                   int64_t rows, const std::vector<std::pair<std::string, int64_t>>& table_deltas);
  void RecordError(const std::string& sync, const std::string& target, ErrorKind kind);
  void SetLag(const std::string& sync, const std::string& target, const LagReading& lag);
  void SetNodeUp(const std::string& node, bool up);
  void SetSyncLockHeld(const std::string& sync, bool held);

  // The whole exposition, "# HELP" and "# TYPE" lines included.
  std::string Render() const;

 private:
  struct TargetCounters {
    int64_t batches = 0;
    int64_t rows = 0;
    std::map<std::string, int64_t> table_deltas;
    std::array<int64_t, kBatchSeconds.size()> buckets{};  // not cumulative; Render() adds them up
    double seconds_sum = 0;
    std::optional<double> last_batch_unix;
    std::map<std::string, int64_t> errors;  // by kind
    std::optional<LagReading> lag;
    double lag_read_unix = 0;
  };
  using Key = std::pair<std::string, std::string>;  // (sync, target)

  mutable std::mutex mutex_;
  std::map<Key, TargetCounters> targets_;
  std::map<std::string, bool> nodes_up_;
  std::map<std::string, bool> sync_locks_;
  const double started_unix_ = UnixNow();

  // The target's counters, or null when it was not added or was removed; the caller holds mutex_.
  TargetCounters* Find(const std::string& sync, const std::string& target);
  static double UnixNow();
};

// The label ErrorKind has in pgtandem_errors_total: "source", "target", ...
std::string_view ErrorKindLabel(ErrorKind kind);

}  // namespace pgtandem
