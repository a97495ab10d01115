// Keeps one target's sequences of one sync in step with the source while the daemon runs.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <string>

#include "pgtandem/config.hpp"
#include "pgtandem/log.hpp"
#include "pgtandem/pg/connection.hpp"
#include "pgtandem/sequences.hpp"
#include "pgtandem/sync_gate.hpp"

namespace pgtandem {

// Every daemon.sequence_sync_interval_ms, sets the target's sequences forward
// to the source's (never back, never creating or redefining: that is for
// `pgtandem sequences sync`), so that at cutover little is left to do. Runs
// on its own strand with its own connections: a slow or dead node delays
// only this pair, and failures are logged (rate-limited) and retried next round.
class SequenceSyncer {
 public:
  // `sync` lies in `config`, kept alive while the syncer runs; it syncs only while `gate` is open.
  SequenceSyncer(boost::asio::any_io_executor strand, std::shared_ptr<const Config> config, const SyncConfig& sync,
                 std::string target, std::shared_ptr<const SyncGate> gate);

  pg::Awaitable<void> Run();
  void Stop();  // call on the syncer's strand
  const boost::asio::any_io_executor& Executor() const { return strand_; }

  // One round: what was found and done on the target.
  pg::Awaitable<TargetSequencesReport> SyncOnce();

 private:
  void LogRound(const TargetSequencesReport& report);

  boost::asio::any_io_executor strand_;
  std::shared_ptr<const Config> config_;
  const SyncConfig& sync_;
  std::string target_name_;
  SyncGates gates_;  // the sync's gate alone
  Logger log_;
  pg::Connection source_;
  pg::Connection target_;
  boost::asio::steady_timer timer_;
  LogLimiter failures_;
  LogLimiter risks_;
  bool stopping_ = false;
};

}  // namespace pgtandem
