// The advisory locks pgtandem holds on a source: one per sync while a daemon
// runs it, and a shared one in every pgtandem session.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "pgtandem/config.hpp"
#include "pgtandem/log.hpp"
#include "pgtandem/metrics.hpp"
#include "pgtandem/pg/connection.hpp"

namespace pgtandem {

// Both locks use the two-integer form, so pg_locks shows them as
// locktype 'advisory', classid kLockClass, objsubid 2: objid 0 for the
// session marker, SyncLockKey(sync) (as an unsigned oid) for a sync.
inline constexpr int32_t kLockClass = 0x70677464;  // "pgtd"

// FNV-1a of the sync's name, never 0 (0 is the session marker).
int32_t SyncLockKey(std::string_view sync);

// Run by every pgtandem session on a source (pg::Connection does it): it may
// write while cutover has made the database's new sessions read-only, and the
// shared marker lock lets the freeze tell pgtandem's sessions from the application's.
std::string_view SourceSessionSetupSql();

// The SQL condition, on pg_locks aliased `l`, that holds for marked pgtandem sessions.
std::string MarkedSessionCondition();

// Who holds a sync's lock, i.e. which daemon runs it, as the source sees it.
struct DaemonPresence {
  bool running = false;
  std::optional<int64_t> pid;  // the daemon's backend on the source
  std::optional<std::string> client_addr;
  std::optional<std::string> application_name;
  std::optional<std::string> since;  // when that session started
};
pg::Awaitable<DaemonPresence> ReadDaemonPresence(pg::Connection& source, const std::string& sync);

// Holds the sync's lock for as long as the daemon runs, on a connection of
// its own, reconnecting when it is lost: status reads it to say whether a
// daemon runs the sync, and issue #8's standby will wait on it. A second
// daemon running the same sync is logged, not stopped.
class SyncLock {
 public:
  SyncLock(boost::asio::any_io_executor strand, const Config& config, const SyncConfig& sync, Metrics& metrics);

  pg::Awaitable<void> Run();
  void Stop();  // call on the lock's strand; the lock is released as Run() returns
  const boost::asio::any_io_executor& Executor() const { return strand_; }

 private:
  pg::Awaitable<void> Check();

  boost::asio::any_io_executor strand_;
  const SyncConfig& sync_;
  Logger log_;
  Metrics& metrics_;
  pg::Connection connection_;
  boost::asio::steady_timer timer_;
  LogLimiter limiter_;
  bool held_ = false;
  bool stopping_ = false;
};

}  // namespace pgtandem
