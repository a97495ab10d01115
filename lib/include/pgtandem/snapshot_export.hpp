// "pgtandem snapshot": an exported source snapshot that the DBA's own pg_dump uses as an exact boundary.
#pragma once

#include <chrono>
#include <string>

#include "pgtandem/log.hpp"
#include "pgtandem/pg/connection.hpp"

namespace pgtandem {

struct ExportedSnapshot {
  std::string id;        // for pg_dump --snapshot
  std::string snapshot;  // the pg_snapshot it stands for
};

// Waits until no transaction that was running when capture was installed is
// still running (one of them could have written before its table's trigger
// existed), then exports a snapshot on `exporter`, whose transaction stays
// open, and records it on the source through `recorder`.
pg::Awaitable<ExportedSnapshot> ExportSnapshot(pg::Connection& exporter, pg::Connection& recorder,
                                               std::chrono::seconds wait_limit, const Logger& log);

// Returns once a pg_dump session has connected to the database and every
// pg_dump session has ended; throws Error(kTimeout) when none came in time.
pg::Awaitable<void> HoldUntilDumped(pg::Connection& watcher, std::chrono::seconds limit, const Logger& log);

}  // namespace pgtandem
