// Replicates one sync to one target: connect, catch up, follow; survives node failures.
#pragma once

#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "pgtandem/applier.hpp"
#include "pgtandem/batch_reader.hpp"
#include "pgtandem/config.hpp"
#include "pgtandem/log.hpp"
#include "pgtandem/metrics.hpp"
#include "pgtandem/pg/connection.hpp"
#include "pgtandem/progress.hpp"
#include "pgtandem/schema_guard.hpp"
#include "pgtandem/sync_gate.hpp"

namespace pgtandem {

// Runs on its own strand, so batches for one target apply in order while
// targets proceed in parallel: a slow or dead target never holds back another.
class TargetWorker {
 public:
  // `sync` lies in `config`, which the worker keeps alive while it runs.
  TargetWorker(boost::asio::any_io_executor strand, std::shared_ptr<const Config> config, const SyncConfig& sync,
               std::string target, std::shared_ptr<const SyncGate> gate, Metrics& metrics);

  // Until Stop(): a failed session is logged, recorded for status, and retried
  // with backoff; while the sync's gate is closed (another daemon is active)
  // the worker stands by, and a batch is committed only while it is open.
  pg::Awaitable<void> Run();
  // Call on the worker's strand. Wake: new deltas may be waiting.
  void Wake();
  // Call on the worker's strand. Finishes the batch in flight, then Run() returns.
  void Stop();

  const boost::asio::any_io_executor& Executor() const { return strand_; }
  const std::string& SourceNode() const { return sync_.source; }
  const std::shared_ptr<const SyncGate>& Gate() const { return gate_; }

 private:
  pg::Awaitable<Progress> Connect();
  // Names the session (for status), bounds its lock waits, and ends this
  // worker's previous session if the server still holds it open.
  pg::Awaitable<void> PrepareTargetSession();
  // After a lock timeout: rolls back, and rewrites the error to name the table and who holds it.
  pg::Awaitable<void> ExplainLockTimeout(RecordedError& failure);
  // After a reconnect: says whether the batch whose commit was in doubt committed.
  void ResolveInDoubt(const Progress& progress);
  pg::Awaitable<void> Session();
  pg::Awaitable<Progress> ApplyBatch(BatchReader& reader, const Batch& batch, bool split);
  pg::Awaitable<void> CopyProgress(const Progress& progress, bool force);
  pg::Awaitable<void> LoadTables();
  // The worker's own (mutable) entries for a batch's tables.
  std::vector<CapturedTable*> TablesOf(const Batch& batch);
  pg::Awaitable<void> WaitForWork();
  pg::Awaitable<void> Pace();
  pg::Awaitable<void> RecordError(const RecordedError& error);
  void CountBatch(const Batch& batch, const ApplyStats& stats, std::chrono::steady_clock::duration took);
  void AdaptBudget(const ApplyStats& stats);

  boost::asio::any_io_executor strand_;
  std::shared_ptr<const Config> config_;
  const SyncConfig& sync_;
  std::string target_name_;
  std::shared_ptr<const SyncGate> gate_;
  Logger log_;
  Metrics& metrics_;
  pg::Connection source_;
  pg::Connection target_;
  std::vector<CapturedTable> tables_;
  std::unique_ptr<Applier> applier_;
  SchemaGuard schema_guard_{log_};
  boost::asio::steady_timer wake_timer_;
  boost::asio::steady_timer retry_timer_;
  boost::asio::steady_timer pace_timer_;
  std::chrono::steady_clock::time_point last_batch_start_{};
  bool last_batch_full_ = false;  // it stopped at the budget: more is waiting, no pause
  bool wake_pending_ = false;
  bool stopping_ = false;
  bool prepared_ = false;  // the target connection has its temporary key tables
  bool healthy_ = false;   // the current session applied a batch or found none: a batch that keeps failing backs off
  bool consistent_next_ = false;  // apply the next batch whole, unsplit (see ApplyBatch)
  bool progress_copied_ = true;   // the source's copy shows the latest progress
  std::string failed_table_;      // the table a failed batch was applying, for status
  int64_t in_doubt_batch_ = 0;    // the batch whose COMMIT got no answer; 0 when none
  int previous_target_pid_ = 0;   // the server process of the last target session
  std::chrono::steady_clock::time_point last_progress_copy_{};
  int64_t budget_;
};

}  // namespace pgtandem
