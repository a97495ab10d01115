// What the daemon's session on a target waits for: a lock another session holds.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "pgtandem/pg/connection.hpp"

namespace pgtandem {

// The application_name of a worker's target session: how status finds it in
// the target's pg_stat_activity. Printable ASCII ('?' for other bytes), at
// most 63 bytes, so that every PostgreSQL version stores it unchanged.
std::string TargetSessionName(const std::string& sync, const std::string& target);

struct LockWait {
  std::string table;         // the table whose lock (or one of whose rows) is waited for
  std::string blocking_pids;  // "4242" or "4242, 4243"
  std::string blocker;       // who holds it: "pid 4242 (user app, application psql, transaction open since ...)"
  std::string since;         // when the waiting statement started
  double seconds = 0;        // how long it has waited so far
};

// The daemon's session of `sync` on `target`, when it is waiting for a lock now.
pg::Awaitable<std::optional<LockWait>> ReadLockWait(pg::Connection& target, const std::string& sync);

struct LockHolders {
  std::string table;    // schema-qualified
  std::string holders;  // "pid 4242 (AccessExclusiveLock, user app, application 'psql', transaction open since ...)"
};

// The first of `tables` (quoted names) on which other sessions hold locks,
// and who they are, for the message after a lock timeout; nullopt when no
// other session holds a lock on any of them.
pg::Awaitable<std::optional<LockHolders>> FindLockHolders(pg::Connection& target, const std::vector<std::string>& tables);

}  // namespace pgtandem
