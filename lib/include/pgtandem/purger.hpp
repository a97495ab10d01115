// Deletes deltas that every target of every sync reading them has applied.
#pragma once

#include <memory>
#include <string>

#include <boost/asio/steady_timer.hpp>

#include "pgtandem/config.hpp"
#include "pgtandem/log.hpp"
#include "pgtandem/pg/connection.hpp"
#include "pgtandem/sync_gate.hpp"

namespace pgtandem {

// The advisory lock (pg_advisory_lock(class, object) on the source) that
// `compare` holds shared while it asks which keys changed after a snapshot:
// the answer is in applied deltas, exactly what purging deletes. A purge
// round that cannot take it exclusively is skipped.
inline constexpr int kPurgeLockClass = 0x70677464;  // "pgtd"
inline constexpr int kPurgeLockObject = 1;

// The statement calling `function` (pg_advisory_lock_shared, pg_try_advisory_lock, ...) on that lock.
std::string PurgeLockSql(std::string_view function);

// Purges only while this daemon is active for at least one sync of the source
// (`gates`): a standby leaves it to the active daemon.
class Purger {
 public:
  Purger(boost::asio::any_io_executor strand, std::shared_ptr<const Config> config, std::string node, SyncGates gates);

  pg::Awaitable<void> Run();
  void Stop();  // call on the purger's strand
  const boost::asio::any_io_executor& Executor() const { return strand_; }

  // One pass; returns the number of deltas deleted (0 while a compare holds the purge lock).
  pg::Awaitable<int64_t> PurgeOnce();

 private:
  boost::asio::any_io_executor strand_;
  std::shared_ptr<const Config> config_;
  std::string node_;
  SyncGates gates_;
  Logger log_;
  pg::Connection connection_;
  boost::asio::steady_timer timer_;
  bool stopping_ = false;
};

}  // namespace pgtandem
