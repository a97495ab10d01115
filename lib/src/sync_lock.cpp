// Taking, keeping and reading the sync's advisory lock on the source.
#include "pgtandem/sync_lock.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

namespace pgtandem {
namespace asio = boost::asio;

namespace {

// A lost connection (and so a lost lock) is noticed within this, and status
// then says the daemon is not running until the lock is back.
constexpr auto kCheckInterval = std::chrono::seconds(2);

constexpr std::string_view kPresenceSql = R"(
SELECT l.pid, pg_catalog.host(a.client_addr), a.application_name, a.backend_start::text
  FROM pg_catalog.pg_locks l LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
 WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
   AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
   AND l.classid = $1::pg_catalog.oid AND l.objid = $2::pg_catalog.oid
 LIMIT 1)";

std::string AsOid(int32_t key) { return std::to_string(static_cast<uint32_t>(key)); }

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
  if (row.Rows() == 0) co_return presence;
  presence.running = true;
  presence.pid = row.GetInt(0, 0);
  presence.client_addr = row.GetOptional(0, 1);
  presence.application_name = row.GetOptional(0, 2);
  presence.since = row.GetOptional(0, 3);
  co_return presence;
}

SyncLock::SyncLock(asio::any_io_executor strand, const Config& config, const SyncConfig& sync, Metrics& metrics)
    : strand_(strand),
      sync_(sync),
      log_(fmt::format("sync {} source {} lock", sync.name, sync.source)),
      metrics_(metrics),
      connection_(strand, sync.source, pg::Side::kSource, config.Node(sync.source).dsn,
                  std::chrono::seconds(config.daemon.connect_timeout_s), std::chrono::seconds(config.daemon.io_timeout_s)),
      timer_(strand) {}

void SyncLock::Stop() {
  stopping_ = true;
  timer_.cancel();
}

pg::Awaitable<void> SyncLock::Check() {
  if (!connection_.Connected()) {
    held_ = false;
    co_await connection_.Connect();
  }
  if (held_) {
    co_await connection_.Exec("SELECT 1");
    co_return;
  }
  pg::Result taken = co_await connection_.Exec("SELECT pg_catalog.pg_try_advisory_lock($1::integer, $2::integer)",
                                               std::to_string(kLockClass), std::to_string(SyncLockKey(sync_.name)));
  held_ = taken.GetBool(0, 0);
  metrics_.SetSyncLockHeld(sync_.name, held_);
  if (held_) {
    log_.Info("holding the sync's advisory lock on the source: status shows this daemon as running it");
    co_return;
  }
  DaemonPresence other = co_await ReadDaemonPresence(connection_, sync_.name);
  int suppressed = 0;
  if (limiter_.Allow("held", suppressed)) {
    log_.Warning(
        "another daemon runs sync '{}' (it holds the sync's advisory lock: source backend pid {}, client {}); "
        "both replicate it, which is safe but wasteful: stop one",
        sync_.name, other.pid ? std::to_string(*other.pid) : "?", other.client_addr.value_or("local"));
  }
}

pg::Awaitable<void> SyncLock::Run() {
  while (!stopping_) {
    std::string failure;
    try {
      co_await Check();
    } catch (const Error& e) {
      failure = e.what();
    }
    if (!failure.empty()) {
      connection_.Close();
      held_ = false;
      metrics_.SetSyncLockHeld(sync_.name, false);
      int suppressed = 0;
      if (limiter_.Allow(failure, suppressed))
        log_.Warning("{}; status shows the daemon as stopped until it is back", failure);
    }
    timer_.expires_after(kCheckInterval);
    boost::system::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  connection_.Close();
}

}  // namespace pgtandem
