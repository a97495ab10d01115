// Purging by snapshot: a delta older than the xmin of every target's applied
// snapshot is visible in all of them, so no target can need it again.
#include "pgtandem/purger.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

namespace pgtandem {
namespace asio = boost::asio;

namespace {

// A target without a progress row yet (never applied) keeps every delta of its sync.
// So does a target bootstrapped for one of these syncs (its start copied here,
// no batch applied yet) that the config does not list yet: the DBA adds it to
// the config and reloads once the bootstrap is done, and the deltas after its
// start must still be there then.
constexpr std::string_view kPurgeableSql = R"(
WITH configured AS (
    SELECT * FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[])) AS p(sync, target)),
pairs AS (
    SELECT sync, target FROM configured
    UNION
    SELECT tp.sync, tp.target FROM pgtandem.target_progress tp
     WHERE tp.sync IN (SELECT sync FROM configured) AND tp.batches = 0 AND tp.applied_at IS NOT NULL),
progress AS (
    SELECT p.sync, pg_catalog.pg_snapshot_xmin(tp.applied_snapshot) AS xmin
      FROM pairs p LEFT JOIN pgtandem.target_progress tp ON tp.sync = p.sync AND tp.target = p.target)
SELECT st.table_id, min(pr.xmin)::text
  FROM pgtandem.sync_table st JOIN progress pr ON pr.sync = st.sync
 GROUP BY st.table_id
HAVING bool_and(pr.xmin IS NOT NULL))";

// Deleting in slices keeps each purge transaction short on a busy source.
constexpr int kSlice = 50000;

}  // namespace

std::string PurgeLockSql(std::string_view function) {
  return fmt::format("SELECT pg_catalog.{}({}, {})", function, kPurgeLockClass, kPurgeLockObject);
}

Purger::Purger(asio::any_io_executor strand, std::shared_ptr<const Config> config, std::string node, SyncGates gates)
    : strand_(strand),
      config_(std::move(config)),
      node_(node),
      gates_(std::move(gates)),
      log_(LogContext{"", node, "source", "purge"}),
      connection_(strand, node, pg::Side::kSource, config_->Node(node).dsn,
                  std::chrono::seconds(config_->daemon.connect_timeout_s), std::chrono::seconds(config_->daemon.io_timeout_s)),
      timer_(strand) {}

void Purger::Stop() {
  stopping_ = true;
  timer_.cancel();
}

pg::Awaitable<int64_t> Purger::PurgeOnce() {
  if (!connection_.Connected()) co_await connection_.Connect();
  // A session lock: released below, or with the connection, which Run() closes on any failure.
  pg::Result locked = co_await connection_.Exec(PurgeLockSql("pg_try_advisory_lock"));
  if (!locked.GetBool(0, 0)) {
    log_.Debug("a compare is checking recent deltas; purging in the next round");
    co_return 0;
  }
  std::vector<std::string> syncs, targets;
  for (const auto& sync : config_->syncs) {
    if (sync.source != node_) continue;
    for (const auto& target : sync.targets) {
      syncs.push_back(sync.name);
      targets.push_back(target);
    }
  }
  pg::Result tables = co_await connection_.Exec(kPurgeableSql, TextArrayLiteral(syncs), TextArrayLiteral(targets));
  int64_t purged = 0;
  for (int row = 0; row < tables.Rows() && !stopping_; ++row) {
    std::string delta = fmt::format("pgtandem.d_{}", tables.Get(row, 0));
    std::string sql = fmt::format(
        "DELETE FROM {0} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {0} WHERE txid < '{1}'::xid8 LIMIT {2}))", delta,
        tables.Get(row, 1), kSlice);
    // The horizon is raised before deleting: a crash in between leaves a
    // horizon that is merely conservative, never deltas gone unrecorded.
    co_await connection_.Exec(
        "UPDATE pgtandem.captured_table SET purged_below = $2::xid8 WHERE id = $1 "
        "AND (purged_below IS NULL OR purged_below < $2::xid8)",
        std::string(tables.Get(row, 0)), std::string(tables.Get(row, 1)));
    co_await connection_.Exec("DELETE FROM pgtandem.truncate_log WHERE table_id = $1 AND txid < $2::xid8",
                              std::string(tables.Get(row, 0)), std::string(tables.Get(row, 1)));
    for (;;) {
      pg::Result deleted = co_await connection_.Exec(sql);
      purged += deleted.AffectedRows();
      if (deleted.AffectedRows() < kSlice) break;
    }
  }
  co_await connection_.Exec(PurgeLockSql("pg_advisory_unlock"));
  co_return purged;
}

pg::Awaitable<void> Purger::Run() {
  LogLimiter limiter;
  while (!stopping_) {
    timer_.expires_after(std::chrono::milliseconds(config_->daemon.purge_interval_ms));
    boost::system::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (stopping_) break;
    if (!AnyOpen(gates_)) {
      connection_.Close();  // a standby holds no session open on the source
      continue;
    }
    std::string failure;
    try {
      int64_t purged = co_await PurgeOnce();
      if (purged > 0) log_.Debug("purged {} applied deltas", purged);
    } catch (const Error& e) {
      failure = e.what();
    }
    if (failure.empty()) continue;
    connection_.Close();
    int suppressed = 0;
    if (limiter.Allow(failure, suppressed)) {
      log_.Warning("{}; purging again in the next round{}", failure, HeldBack(suppressed));
    }
  }
}

}  // namespace pgtandem
