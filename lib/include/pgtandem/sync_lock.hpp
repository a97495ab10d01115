// The advisory locks pgtandem holds on a source: one per sync while a daemon
// runs it, and a shared one in every pgtandem session.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "pgtandem/config.hpp"
#include "pgtandem/log.hpp"
#include "pgtandem/metrics.hpp"
#include "pgtandem/pg/connection.hpp"
#include "pgtandem/sync_gate.hpp"

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

// A daemon's lock session on the source, as pg_stat_activity shows it.
struct DaemonSession {
  int64_t pid = 0;  // its backend on the source
  std::optional<std::string> client_addr;
  std::optional<std::string> application_name;  // "pgtandem@HOST:PID" (see DaemonApplicationName)
  std::optional<std::string> since;              // when that session started
};

// Who holds a sync's lock, i.e. which daemon is active for it, as the source
// sees it, and the daemons standing by to take over.
struct DaemonPresence {
  bool running = false;
  std::optional<int64_t> pid;  // the active daemon's backend on the source
  std::optional<std::string> client_addr;
  std::optional<std::string> application_name;
  std::optional<std::string> since;  // when that session started
  std::vector<DaemonSession> standbys;
};
pg::Awaitable<DaemonPresence> ReadDaemonPresence(pg::Connection& source, const std::string& sync);

// "pgtandem@HOST:PID": the application_name of a daemon's lock sessions, so
// that status and pg_stat_activity tell which machine is active.
std::string DaemonApplicationName();

// Held shared by every daemon's lock session for a sync (active or standing
// by), so status can list the standbys: class kDaemonClass, object SyncLockKey(sync).
inline constexpr int32_t kDaemonClass = 0x70677465;  // "pgte"

// Holds the sync's lock on a connection of its own while the daemon runs,
// and so makes this daemon the sync's only active one: it opens the sync's
// gate while it holds the lock and closes it the moment the connection is
// lost. Without the lock (another daemon has it) the daemon stands by and
// tries again every second, so it takes over within seconds when the active
// daemon dies or loses its connection.
class SyncLock {
 public:
  SyncLock(boost::asio::any_io_executor strand, std::shared_ptr<const Config> config, const SyncConfig& sync,
           std::shared_ptr<SyncGate> gate, Metrics& metrics);

  pg::Awaitable<void> Run();
  void Stop();  // call on the lock's strand; the lock is released as Run() returns
  const boost::asio::any_io_executor& Executor() const { return strand_; }

 private:
  pg::Awaitable<void> Session();
  pg::Awaitable<void> TryTake();
  void Lose(const std::string& reason);

  boost::asio::any_io_executor strand_;
  std::shared_ptr<const Config> config_;
  const SyncConfig& sync_;
  std::shared_ptr<SyncGate> gate_;
  Logger log_;
  Metrics& metrics_;
  pg::Connection connection_;
  boost::asio::steady_timer timer_;
  LogLimiter limiter_;
  LogLimiter standby_limiter_;
  bool held_ = false;
  bool stopping_ = false;
};

}  // namespace pgtandem
