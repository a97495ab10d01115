// The freeze: new sessions read-only by database setting, older sessions ended, the setting put back after.
#include "pgtandem/freeze.hpp"

#include <set>

#include <fmt/format.h>

#include "pgtandem/async.hpp"
#include "pgtandem/identifier.hpp"
#include "pgtandem/sync_lock.hpp"

namespace pgtandem {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kPoll = std::chrono::milliseconds(20);
// An ended session leaves within milliseconds; one that has not after this is
// stuck (a long rollback, a hung client socket), and the DBA must look.
constexpr auto kEndWait = std::chrono::seconds(30);
constexpr std::string_view kInsufficientPrivilege = "42501";

// The application's sessions: client backends of this database that are
// neither this session nor one of pgtandem's (marked with a shared lock).
std::string SessionsSql(std::string_view condition) {
  return fmt::format(R"(
SELECT a.pid, coalesce(a.usename, '?'), coalesce(a.state, '?'), a.backend_xid IS NOT NULL,
       left(regexp_replace(coalesce(a.query, ''), '\s+', ' ', 'g'), 60)
  FROM pg_catalog.pg_stat_activity a
 WHERE a.datname = pg_catalog.current_database() AND a.backend_type = 'client backend'
   AND a.pid <> pg_catalog.pg_backend_pid()
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_locks l WHERE l.pid = a.pid AND {})
   AND {}
 ORDER BY a.pid)",
                     MarkedSessionCondition(), condition);
}

constexpr std::string_view kPreparedSql = R"(
SELECT pg_catalog.string_agg(pg_catalog.format('%L (owner %s)', gid, owner), ', ')
  FROM pg_catalog.pg_prepared_xacts WHERE database = pg_catalog.current_database())";

std::string DescribeSession(const pg::Result& rows, int row) {
  return fmt::format("pid {} ({}, {}{}: {})", rows.Get(row, 0), rows.Get(row, 1), rows.Get(row, 2),
                     rows.GetBool(row, 3) ? ", in a write transaction" : "", rows.Get(row, 4));
}

pg::Awaitable<void> CheckFreezePrivileges(pg::Connection& source) {
  pg::Result can = co_await source.Exec(R"(
SELECT current_user, d.datname, pg_catalog.pg_get_userbyid(d.datdba), pg_catalog.pg_has_role(d.datdba, 'USAGE'),
       pg_catalog.pg_has_role('pg_signal_backend', 'USAGE'), pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE')
  FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())");
  std::string role = QuoteIdent(can.Get(0, 0)), database = QuoteIdent(can.Get(0, 1)), owner = QuoteIdent(can.Get(0, 2));
  std::vector<std::string> missing;
  if (!can.GetBool(0, 3))
    missing.push_back(
        fmt::format("the rights of database {}'s owner (to ALTER DATABASE ... SET): run as {}, or GRANT {} "
                    "TO {}",
                    database, owner, owner, role));
  if (!can.GetBool(0, 4))
    missing.push_back(
        fmt::format("pg_signal_backend (to end the application's sessions): GRANT pg_signal_backend TO {}", role));
  if (!can.GetBool(0, 5))
    missing.push_back(
        fmt::format("pg_read_all_stats (to see which sessions write): GRANT pg_read_all_stats TO {}", role));
  if (missing.empty()) co_return;
  throw source.Failure(fmt::format("role {} cannot freeze writes; nothing was changed. It lacks {}. Or freeze the "
                                   "application's writes yourself and run cutover without --freeze",
                                   role, fmt::join(missing, "; ")),
                       std::string(kInsufficientPrivilege));
}

// In one transaction: the database setting, and the record of what it replaced.
// Returns false when the database was already frozen (the record is kept).
pg::Awaitable<bool> SetReadOnly(pg::Connection& source, const std::string& sync) {
  co_await source.Exec("BEGIN");
  pg::Result frozen =
      co_await source.Exec("SELECT 1 FROM pgtandem.freeze WHERE database = pg_catalog.current_database() FOR UPDATE");
  if (frozen.Rows() > 0) {
    co_await source.Exec("COMMIT");
    co_return false;
  }
  pg::Result previous = co_await source.Exec(R"(
SELECT pg_catalog.current_database(),
       (SELECT pg_catalog.substr(v, 31) FROM pg_catalog.pg_db_role_setting s, pg_catalog.unnest(s.setconfig) v
         WHERE s.setrole = 0 AND s.setdatabase = (SELECT oid FROM pg_catalog.pg_database
                                                   WHERE datname = pg_catalog.current_database())
           AND v LIKE 'default\_transaction\_read\_only=%'))");
  co_await source.Exec(
      fmt::format("ALTER DATABASE {} SET default_transaction_read_only = on", QuoteIdent(previous.Get(0, 0))));
  co_await source.Exec(
      "INSERT INTO pgtandem.freeze (database, previous_setting, frozen_by, frozen_at) "
      "VALUES (pg_catalog.current_database(), $1, $2, pg_catalog.clock_timestamp())",
      previous.GetOptional(0, 1), sync);
  co_await source.Exec("COMMIT");
  // Stamped after the commit: any session that starts later reads the new setting.
  co_await source.Exec(
      "UPDATE pgtandem.freeze SET frozen_at = pg_catalog.clock_timestamp() "
      "WHERE database = pg_catalog.current_database()");
  co_return true;
}

pg::Awaitable<bool> SetReadOnlyOrRollBack(pg::Connection& source, const std::string& sync) {
  std::exception_ptr failure;
  try {
    co_return co_await SetReadOnly(source, sync);
  } catch (const Error&) {
    failure = std::current_exception();
  }
  if (source.Connected()) co_await source.Exec("ROLLBACK");
  std::rethrow_exception(failure);
}

// Ends one session; a refusal (a superuser's session, say) is returned, not thrown.
pg::Awaitable<std::string> EndSession(pg::Connection& source, const std::string& pid, const std::string& who) {
  std::string refused;
  try {
    co_await source.Exec("SELECT pg_catalog.pg_terminate_backend($1::integer)", pid);
  } catch (const Error& e) {
    if (e.SqlState() != kInsufficientPrivilege) throw;
    refused = fmt::format("{}: {}", who, e.what());
  }
  co_return refused;
}

// The sessions that began before `cut`, until none is left: at once for those
// without a write transaction, after `grace` for the others.
class SessionEnder {
 public:
  SessionEnder(pg::Connection& source, std::string cut, std::chrono::milliseconds grace, FreezeReport& report)
      : source_(source), cut_(std::move(cut)), grace_end_(Clock::now() + grace), report_(report) {}

  pg::Awaitable<void> Run() {
    for (;;) {
      pg::Result sessions = co_await source_.Exec(SessionsSql("a.backend_start < $1::timestamptz"), cut_);
      if (sessions.Rows() == 0) co_return;
      std::vector<std::string> refused;
      for (int row = 0; row < sessions.Rows(); ++row) {
        std::string why = co_await Consider(sessions, row);
        if (!why.empty()) refused.push_back(why);
      }
      if (!refused.empty()) {
        throw source_.Failure(
            fmt::format("writes are frozen for new sessions, but these older sessions could not be "
                        "ended (GRANT pg_signal_backend, or run as a superuser, or end them "
                        "yourself and run cutover again): {}",
                        fmt::join(refused, "; ")));
      }
      if (Clock::now() > grace_end_ + kEndWait) {
        throw Error(ErrorKind::kTimeout, fmt::format("source node '{}': sessions still there {} s after they were "
                                                     "ended: {}",
                                                     source_.Node(), kEndWait.count(), DescribeSession(sessions, 0)));
      }
      co_await Sleep(kPoll);
    }
  }

 private:
  pg::Awaitable<std::string> Consider(const pg::Result& sessions, int row) {
    int64_t pid = sessions.GetInt(row, 0);
    bool writing = sessions.GetBool(row, 3);
    if (writing) writers_.insert(pid);
    if (ended_.contains(pid) || (writing && Clock::now() < grace_end_)) co_return std::string();
    std::string refused = co_await EndSession(source_, std::to_string(pid), DescribeSession(sessions, row));
    if (!refused.empty()) co_return refused;
    ended_.insert(pid);
    if (writing)
      ++report_.writers_ended;
    else if (writers_.contains(pid))
      ++report_.writers_finished;
    else
      ++report_.sessions_ended;
    co_return std::string();
  }

  pg::Connection& source_;
  std::string cut_;
  Clock::time_point grace_end_;
  FreezeReport& report_;
  std::set<int64_t> writers_;
  std::set<int64_t> ended_;
};

// A prepared transaction belongs to no session and may commit at any time.
pg::Awaitable<void> WaitForPrepared(pg::Connection& source, Clock::time_point deadline) {
  for (;;) {
    pg::Result prepared = co_await source.Exec(kPreparedSql);
    if (prepared.IsNull(0, 0)) co_return;
    if (Clock::now() > deadline) {
      throw Error(ErrorKind::kState, fmt::format("source node '{}': prepared transactions may still commit writes: "
                                                 "{}; COMMIT PREPARED or ROLLBACK PREPARED them, then run cutover "
                                                 "again",
                                                 source.Node(), prepared.Get(0, 0)));
    }
    co_await Sleep(kPoll);
  }
}

}  // namespace

pg::Awaitable<std::optional<FreezeState>> ReadFreezeState(pg::Connection& source) {
  pg::Result exists = co_await source.Exec("SELECT pg_catalog.to_regclass('pgtandem.freeze') IS NOT NULL");
  if (!exists.GetBool(0, 0)) co_return std::nullopt;
  pg::Result row = co_await source.Exec(R"(
SELECT database, frozen_by, frozen_at::text,
       pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() - frozen_at), previous_setting,
       freeze_snapshot::text, freeze_lsn::text
  FROM pgtandem.freeze WHERE database = pg_catalog.current_database())");
  if (row.Rows() == 0) co_return std::nullopt;
  FreezeState state{std::string(row.Get(0, 0)), std::string(row.Get(0, 1)),
                    std::string(row.Get(0, 2)), std::stod(std::string(row.Get(0, 3))),
                    row.GetOptional(0, 4),      row.GetOptional(0, 5),
                    row.GetOptional(0, 6)};
  co_return state;
}

pg::Awaitable<FreezeReport> FreezeWrites(pg::Connection& source, const std::string& sync,
                                         std::chrono::milliseconds grace) {
  co_await CheckFreezePrivileges(source);
  FreezeReport report;
  bool frozen_now = co_await SetReadOnlyOrRollBack(source, sync);
  report.already_frozen = !frozen_now;
  std::optional<FreezeState> state = co_await ReadFreezeState(source);
  report.state = *state;
  SessionEnder ender(source, state->frozen_at, grace, report);
  co_await ender.Run();
  co_await WaitForPrepared(source, Clock::now() + grace);
  co_return report;
}

pg::Awaitable<void> WaitForWriters(pg::Connection& source, std::chrono::milliseconds max_wait) {
  auto deadline = Clock::now() + max_wait;
  for (;;) {
    pg::Result writers = co_await source.Exec(SessionsSql("a.backend_xid IS NOT NULL"));
    if (writers.Rows() == 0) break;
    if (Clock::now() > deadline) {
      throw Error(ErrorKind::kTimeout,
                  fmt::format("source node '{}': writes are not frozen: {} session(s) still in a write transaction "
                              "after {} s, e.g. {}; stop the application's writes, or use --freeze",
                              source.Node(), writers.Rows(), max_wait.count() / 1000, DescribeSession(writers, 0)));
    }
    co_await Sleep(kPoll);
  }
  co_await WaitForPrepared(source, deadline);
}

pg::Awaitable<FreezePoint> TakeFreezePoint(pg::Connection& source) {
  pg::Result now = co_await source.Exec(
      "SELECT pg_catalog.pg_current_snapshot()::text, pg_catalog.pg_current_wal_lsn()::text, pg_catalog.now()::text");
  FreezePoint point{std::string(now.Get(0, 0)), std::string(now.Get(0, 1)), std::string(now.Get(0, 2))};
  co_await source.Exec(
      "UPDATE pgtandem.freeze SET freeze_snapshot = $1::pg_snapshot, freeze_lsn = $2::pg_lsn "
      "WHERE database = pg_catalog.current_database()",
      point.snapshot, point.lsn);
  co_return point;
}

pg::Awaitable<UnfreezeReport> UnfreezeWrites(pg::Connection& source) {
  UnfreezeReport report;
  std::optional<FreezeState> state = co_await ReadFreezeState(source);
  pg::Result database = co_await source.Exec("SELECT pg_catalog.current_database()");
  report.database = database.Get(0, 0);
  if (!state) co_return report;
  report.was_frozen = true;
  report.frozen_seconds = state->frozen_seconds;
  report.restored_setting = state->previous_setting;
  std::string alter =
      state->previous_setting
          ? fmt::format("ALTER DATABASE {} SET default_transaction_read_only = {}", QuoteIdent(report.database),
                        QuoteLiteral(*state->previous_setting))
          : fmt::format("ALTER DATABASE {} RESET default_transaction_read_only", QuoteIdent(report.database));
  co_await source.Exec(
      fmt::format("BEGIN; {}; DELETE FROM pgtandem.freeze WHERE database = pg_catalog.current_database(); "
                  "COMMIT",
                  alter));
  // Every session of the application now began while frozen: read-only until it reconnects.
  pg::Result cut = co_await source.Exec("SELECT pg_catalog.clock_timestamp()::text");
  pg::Result sessions =
      co_await source.Exec(SessionsSql("a.backend_start < $1::timestamptz"), std::string(cut.Get(0, 0)));
  std::vector<std::string> refused;
  for (int row = 0; row < sessions.Rows(); ++row) {
    std::string why = co_await EndSession(source, std::string(sessions.Get(row, 0)), DescribeSession(sessions, row));
    if (why.empty())
      ++report.sessions_ended;
    else
      refused.push_back(why);
  }
  if (!refused.empty()) {
    report.notes = fmt::format("these sessions, opened while frozen, stay read-only until they reconnect: {}",
                               fmt::join(refused, "; "));
  }
  co_return report;
}

}  // namespace pgtandem
