// Reads pg_stat_activity and pg_locks on a target: who keeps the daemon's batch waiting.
#include "pgtandem/lock_wait.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace pgtandem {
namespace {

// A session waiting for a row lock holds the tuple lock of that row's table
// and waits for the other transaction's id: the table comes from the tuple lock.
constexpr std::string_view kWaitSql = R"(
SELECT coalesce((SELECT pg_catalog.format('%I.%I', n.nspname, c.relname)
                   FROM pg_catalog.pg_locks l
                   JOIN pg_catalog.pg_class c ON c.oid = l.relation
                   JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                  WHERE l.pid = a.pid AND l.database = (SELECT oid FROM pg_catalog.pg_database
                                                         WHERE datname = pg_catalog.current_database())
                    AND ((l.locktype = 'relation' AND NOT l.granted) OR l.locktype = 'tuple')
                  ORDER BY l.locktype = 'relation' DESC LIMIT 1), ''),
       pg_catalog.array_to_string(pg_catalog.pg_blocking_pids(a.pid), ', '),
       a.query_start::text,
       pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() - a.query_start),
       coalesce((SELECT pg_catalog.format('pid %s (user %s, application %s, transaction open since %s)', b.pid,
                                          b.usename, pg_catalog.quote_literal(b.application_name), b.xact_start)
                   FROM pg_catalog.pg_stat_activity b
                  WHERE b.pid = (pg_catalog.pg_blocking_pids(a.pid))[1]), '')
  FROM pg_catalog.pg_stat_activity a
 WHERE a.application_name = $1 AND a.wait_event_type = 'Lock'
 LIMIT 1)";

// Every lock another session holds on the table, whatever its mode: a batch
// takes ROW EXCLUSIVE (DELETE, COPY) and now and then ACCESS EXCLUSIVE
// (TRUNCATE), and a writer holding ROW EXCLUSIVE may hold the row it waited
// for. A table someone holds a strong lock on comes first, then the order
// given. Names come as a JSON array, which carries any identifier safely.
constexpr std::string_view kHoldersSql = R"(
WITH wanted AS (
    SELECT pg_catalog.to_regclass(t.name) AS relation, t.position
      FROM pg_catalog.jsonb_array_elements_text($1::pg_catalog.jsonb) WITH ORDINALITY AS t(name, position))
SELECT pg_catalog.format('%I.%I', n.nspname, c.relname),
       pg_catalog.string_agg(pg_catalog.format('pid %s (%s, user %s, application %s, transaction open since %s)',
                                               l.pid, l.mode, a.usename, pg_catalog.quote_literal(a.application_name),
                                               a.xact_start), ', ' ORDER BY l.pid)
  FROM wanted w
  JOIN pg_catalog.pg_locks l ON l.locktype = 'relation' AND l.relation = w.relation AND l.granted
  JOIN pg_catalog.pg_class c ON c.oid = w.relation
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
 WHERE l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
   AND l.pid <> pg_catalog.pg_backend_pid()
 GROUP BY w.position, n.nspname, c.relname
 ORDER BY pg_catalog.bool_or(l.mode NOT IN ('AccessShareLock', 'RowShareLock', 'RowExclusiveLock')) DESC, w.position
 LIMIT 1)";

}  // namespace

std::string TargetSessionName(const std::string& sync, const std::string& target) {
  std::string name = fmt::format("pgtandem sync {} target {}", sync, target);
  // PostgreSQL keeps only printable ASCII in application_name (15 turns the
  // rest into '?', 16 into escapes): made ASCII here, the name is stored as is.
  for (char& c : name) {
    if (c < 32 || c > 126) c = '?';
  }
  if (name.size() > 63) name.resize(63);
  return name;
}

pg::Awaitable<std::optional<LockWait>> ReadLockWait(pg::Connection& target, const std::string& sync) {
  pg::Result row = co_await target.Exec(kWaitSql, TargetSessionName(sync, target.Node()));
  if (row.Rows() == 0) co_return std::nullopt;
  LockWait wait;
  wait.table = row.Get(0, 0);
  wait.blocking_pids = row.Get(0, 1);
  wait.since = row.Get(0, 2);
  wait.seconds = std::stod(std::string(row.Get(0, 3)));
  wait.blocker = row.Get(0, 4);
  co_return wait;
}

pg::Awaitable<std::optional<LockHolders>> FindLockHolders(pg::Connection& target,
                                                          const std::vector<std::string>& tables) {
  pg::Result row = co_await target.Exec(kHoldersSql, nlohmann::json(tables).dump());
  if (row.Rows() == 0) co_return std::nullopt;
  co_return LockHolders{std::string(row.Get(0, 0)), std::string(row.Get(0, 1))};
}

}  // namespace pgtandem
