// LISTENs on a source and wakes the workers that read from it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "pgtandem/config.hpp"
#include "pgtandem/log.hpp"
#include "pgtandem/pg/connection.hpp"
#include "pgtandem/sync_lock.hpp"
#include "pgtandem/target_worker.hpp"

namespace pgtandem {

// A listening session holds advisory lock (kLockClass, kListenerLockObject)
// shared. The capture triggers send their NOTIFY only while some session
// holds it: otherwise nobody would hear it, and it would still cost each
// commit the notification queue's cluster-wide lock. sql/source_schema.sql and
// sql/pgtandem_capture.c write the same two numbers.
inline constexpr int32_t kListenerLockObject = 2;

// Commits reach the targets within milliseconds when the source is idle;
// while this listener is down, the workers' polling carries on alone. It
// serves every sync of its source, and listens only while this daemon is
// active for at least one of them.
class SourceListener {
 public:
  SourceListener(boost::asio::any_io_executor strand, std::shared_ptr<const Config> config, std::string node,
                 std::vector<std::shared_ptr<TargetWorker>> workers);

  pg::Awaitable<void> Run();
  void Stop();  // call on the listener's strand
  // Call on the listener's strand: the workers to wake from now on (after a reload).
  void SetWorkers(std::vector<std::shared_ptr<TargetWorker>> workers);
  const boost::asio::any_io_executor& Executor() const { return strand_; }

 private:
  pg::Awaitable<void> Listen();
  void WakeWorkers();

  boost::asio::any_io_executor strand_;
  std::shared_ptr<const Config> config_;
  Logger log_;
  pg::Connection connection_;
  std::vector<std::shared_ptr<TargetWorker>> workers_;
  SyncGates gates_;  // the workers' gates
  boost::asio::steady_timer retry_timer_;
  bool stopping_ = false;
};

}  // namespace pgtandem
