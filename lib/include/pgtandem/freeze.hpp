// Stopping the application's writes on a source for cutover, and letting them back in.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "pgtandem/pg/connection.hpp"

namespace pgtandem {

// A freeze as recorded in pgtandem.freeze on the source.
struct FreezeState {
  std::string database;
  std::string frozen_by;                        // the sync whose cutover froze it
  std::string frozen_at;                        // timestamptz text: new sessions start read-only from then on
  double frozen_seconds = 0;                    // how long so far, by the source's clock
  std::optional<std::string> previous_setting;  // default_transaction_read_only on the database before
  std::optional<std::string> snapshot;          // the freeze point, once taken
  std::optional<std::string> lsn;
};

// The freeze of the connected database; nullopt when writes are not frozen by pgtandem.
pg::Awaitable<std::optional<FreezeState>> ReadFreezeState(pg::Connection& source);

// The source's position once no write transaction of the application is left.
struct FreezePoint {
  std::string snapshot;  // pg_current_snapshot(): every transaction committed before is visible in it
  std::string lsn;       // pg_current_wal_lsn()
  std::string at;        // timestamptz text
};

struct FreezeReport {
  FreezeState state;
  bool already_frozen = false;
  int sessions_ended = 0;    // sessions without a write transaction, ended so that they come back read-only
  int writers_finished = 0;  // write transactions that ended by themselves within the grace period
  int writers_ended = 0;     // write transactions still open after it, ended (rolled back)
};

// Freezes writes on the connected source database, as safely as a role that
// is not a superuser can:
//  1. ALTER DATABASE ... SET default_transaction_read_only = on, recorded in
//     pgtandem.freeze with the setting it replaces: every new session starts
//     read-only (pgtandem's own sessions turn it off; see sync_lock.hpp);
//  2. ends every session that began before that, except pgtandem's: those in a
//     write transaction get `grace` to finish it, the others are ended at once
//     (an application's pool reconnects, read-only).
// Needs ownership of the database, pg_signal_backend and pg_read_all_stats (or
// a superuser); checked first, with nothing changed when one is missing.
// Running it again on a frozen database keeps the first freeze's record.
pg::Awaitable<FreezeReport> FreezeWrites(pg::Connection& source, const std::string& sync,
                                         std::chrono::milliseconds grace);

// Without a freeze by pgtandem: waits, ending nothing, until no session but
// pgtandem's holds a write transaction (or a prepared one); Error(kTimeout)
// naming them after `max_wait`.
pg::Awaitable<void> WaitForWriters(pg::Connection& source, std::chrono::milliseconds max_wait);

// pg_current_snapshot() and the WAL position now; recorded in pgtandem.freeze when frozen.
pg::Awaitable<FreezePoint> TakeFreezePoint(pg::Connection& source);

struct UnfreezeReport {
  bool was_frozen = false;
  std::string database;
  std::optional<std::string> restored_setting;  // nullopt: the database setting was removed
  double frozen_seconds = 0;
  int sessions_ended = 0;  // sessions opened while frozen, read-only until they reconnect
  std::string notes;       // sessions it could not end, and why
};

// Puts back the database setting the freeze replaced, forgets the freeze, and
// ends the sessions opened while it held (they would stay read-only).
pg::Awaitable<UnfreezeReport> UnfreezeWrites(pg::Connection& source);

}  // namespace pgtandem
