// Taking, keeping and reading the sync's advisory lock on the source.
#include "pgtandem/sync_lock.hpp"

#include <unistd.h>

#include <cstdio>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

namespace pgtandem {
namespace asio = boost::asio;

namespace {

// A standby tries to take the lock this often, so it takes over within about
// this much of the active daemon's session ending.
constexpr auto kRetryInterval = std::chrono::seconds(1);
// The active daemon renews the gate's lease after each round trip, one a
// second; the lease outlives two missed rounds, and ends before the server
// notices a silent client (kKeepaliveSql) and releases the lock to a standby.
constexpr auto kHeldCheck = std::chrono::seconds(1);
constexpr auto kLease = std::chrono::seconds(3);

// The server notices a dead or unreachable daemon on the lock session within
// about 4 s (keepalive probes while idle, a send timeout while not) instead of
// the kernel's hours, and so releases its lock to a standby. Only settings the
// server knows are set (tcp_user_timeout is PostgreSQL 12+); they are user-settable.
constexpr std::string_view kKeepaliveSql = R"(
SELECT pg_catalog.set_config(v.name, v.value, false)
  FROM (VALUES ('tcp_keepalives_idle', '2'), ('tcp_keepalives_interval', '1'), ('tcp_keepalives_count', '2'),
               ('tcp_user_timeout', '4000')) AS v(name, value)
  JOIN pg_catalog.pg_settings s ON s.name = v.name)";

constexpr std::string_view kPresenceSql = R"(
SELECT l.pid, pg_catalog.host(a.client_addr), a.application_name, a.backend_start::text
  FROM pg_catalog.pg_locks l LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
 WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
   AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
   AND l.classid = $1::pg_catalog.oid AND l.objid = $2::pg_catalog.oid
 LIMIT 1)";

std::string AsOid(int32_t key) { return std::to_string(static_cast<uint32_t>(key)); }

constexpr std::string_view kStandbysSql = R"(
SELECT l.pid, pg_catalog.host(a.client_addr), a.application_name, a.backend_start::text
  FROM pg_catalog.pg_locks l LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
 WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
   AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
   AND l.classid = $1::pg_catalog.oid AND l.objid = $2::pg_catalog.oid AND l.pid <> $3::integer
 ORDER BY l.pid)";

std::string Describe(const DaemonPresence& presence) {
  return fmt::format("{} (source backend pid {}, client {})", presence.application_name.value_or("a daemon"),
                     presence.pid ? std::to_string(*presence.pid) : "?", presence.client_addr.value_or("local"));
}

}  // namespace

int32_t SyncLockKey(std::string_view sync) {
  uint32_t hash = 2166136261u;
  for (unsigned char c : sync) hash = (hash ^ c) * 16777619u;
  return hash == 0 ? 1 : static_cast<int32_t>(hash);
}

std::string_view SourceSessionSetupSql() {
  static const std::string sql = fmt::format(
      "SET default_transaction_read_only = off; SELECT pg_catalog.pg_advisory_lock_shared({}, 0)", kLockClass);
  return sql;
}

std::string MarkedSessionCondition() {
  return fmt::format("l.locktype = 'advisory' AND l.classid = {} AND l.objid = 0 AND l.objsubid = 2 AND l.granted",
                     AsOid(kLockClass));
}

pg::Awaitable<DaemonPresence> ReadDaemonPresence(pg::Connection& source, const std::string& sync) {
  pg::Result row = co_await source.Exec(kPresenceSql, AsOid(kLockClass), AsOid(SyncLockKey(sync)));
  DaemonPresence presence;
  if (row.Rows() > 0) {
    presence.running = true;
    presence.pid = row.GetInt(0, 0);
    presence.client_addr = row.GetOptional(0, 1);
    presence.application_name = row.GetOptional(0, 2);
    presence.since = row.GetOptional(0, 3);
  }
  pg::Result standbys = co_await source.Exec(kStandbysSql, AsOid(kDaemonClass), AsOid(SyncLockKey(sync)),
                                             std::to_string(presence.pid.value_or(0)));
  for (int i = 0; i < standbys.Rows(); ++i) {
    presence.standbys.push_back(DaemonSession{standbys.GetInt(i, 0), standbys.GetOptional(i, 1),
                                              standbys.GetOptional(i, 2), standbys.GetOptional(i, 3)});
  }
  co_return presence;
}

std::string DaemonApplicationName() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "unknown-host");
  return fmt::format("pgtandem@{}:{}", host, getpid());
}

SyncLock::SyncLock(asio::any_io_executor strand, std::shared_ptr<const Config> config, const SyncConfig& sync,
                   std::shared_ptr<SyncGate> gate, Metrics& metrics)
    : strand_(strand),
      config_(std::move(config)),
      sync_(sync),
      gate_(std::move(gate)),
      log_(LogContext{sync.name, sync.source, "source", "lock"}),
      metrics_(metrics),
      connection_(strand, sync.source, pg::Side::kSource, config_->Node(sync.source).dsn,
                  std::chrono::seconds(config_->daemon.connect_timeout_s), std::chrono::seconds(config_->daemon.io_timeout_s)),
      timer_(strand) {}

void SyncLock::Stop() {
  stopping_ = true;
  timer_.cancel();
}

void SyncLock::Lose(const std::string& reason) {
  gate_->Close();
  metrics_.SetSyncLockHeld(sync_.name, false);
  if (!held_) return;
  held_ = false;
  log_.Warning("lost the sync's lock on the source ({}): stopped applying sync '{}'; standing by until this daemon "
               "takes the lock again", reason, sync_.name);
}

pg::Awaitable<void> SyncLock::TryTake() {
  std::string key = std::to_string(SyncLockKey(sync_.name));
  pg::Result taken = co_await connection_.Exec("SELECT pg_catalog.pg_try_advisory_lock($1::integer, $2::integer)",
                                               std::to_string(kLockClass), key);
  held_ = taken.GetBool(0, 0);
  if (held_) {
    gate_->Renew(kLease);
    metrics_.SetSyncLockHeld(sync_.name, true);
    log_.Info("active: this daemon ({}) holds the sync's lock on the source and applies sync '{}'",
              DaemonApplicationName(), sync_.name);
    co_return;
  }
  DaemonPresence other = co_await ReadDaemonPresence(connection_, sync_.name);
  std::string message = fmt::format(
      "standing by: {} is active for sync '{}'; this daemon takes over within seconds of that one stopping or "
      "losing its connection", Describe(other), sync_.name);
  int suppressed = 0;
  if (standby_limiter_.Allow(message, suppressed)) log_.Info("{}{}", message, HeldBack(suppressed));
}

pg::Awaitable<void> SyncLock::Session() {
  co_await connection_.Connect();
  co_await connection_.Exec(kKeepaliveSql);
  co_await connection_.Exec("SELECT pg_catalog.set_config('application_name', $1, false)", DaemonApplicationName());
  co_await connection_.Exec("SELECT pg_catalog.pg_advisory_lock_shared($1::integer, $2::integer)",
                            std::to_string(kDaemonClass), std::to_string(SyncLockKey(sync_.name)));
  while (!stopping_) {
    if (!held_) co_await TryTake();
    if (held_) {
      // Returns at once with an error when the session is lost; the round
      // trip after it proves the session (and so the lock) is still there.
      co_await connection_.WaitNotification(kHeldCheck);
      co_await connection_.Exec("SELECT 1");
      gate_->Renew(kLease);
      continue;
    }
    timer_.expires_after(kRetryInterval);
    boost::system::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

pg::Awaitable<void> SyncLock::Run() {
  while (!stopping_) {
    std::string failure;
    try {
      co_await Session();
    } catch (const Error& e) {
      failure = e.what();
    }
    if (failure.empty()) break;
    Lose(failure);
    connection_.Close();
    if (stopping_) break;
    int suppressed = 0;
    if (limiter_.Allow(failure, suppressed)) {
      log_.Warning("{}; status shows no daemon running the sync until this one or another holds its lock{}", failure,
                   HeldBack(suppressed));
    }
    timer_.expires_after(kRetryInterval);
    boost::system::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  // Closed before the session ends, so nothing is applied once a standby may take over.
  gate_->Close();
  metrics_.SetSyncLockHeld(sync_.name, false);
  connection_.Close();
}

}  // namespace pgtandem
