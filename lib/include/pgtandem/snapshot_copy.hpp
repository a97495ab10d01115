// "bootstrap --copy": pgtandem copies every table of a sync from one exported source snapshot.
#pragma once

#include <functional>
#include <string>

#include "pgtandem/config.hpp"
#include "pgtandem/dsn.hpp"
#include "pgtandem/log.hpp"
#include "pgtandem/pg/connection.hpp"

namespace pgtandem {

struct CopyOptions {
  int jobs = 2;  // tables copied at once
  // Create missing tables from the source's DDL (pg_dump --schema-only):
  // tables before the data, indexes and constraints after it.
  const Dsn* schema_from = nullptr;
};

struct CopyReport {
  int tables_copied = 0;
  int tables_resumed = 0;  // already copied by an interrupted run
  int64_t rows = 0;
  int64_t bytes = 0;
  std::string applied_snapshot;
};

// Copies the tables not yet copied, several at once, each in one target
// transaction that also records it as done; then records where catch-up
// starts. `make_connection(side)` opens a new connection to the source or the target.
pg::Awaitable<CopyReport> CopyFromSnapshot(const SyncConfig& sync, const std::string& target,
                                           const std::function<std::unique_ptr<pg::Connection>(pg::Side)>& connect,
                                           const CopyOptions& options, const Logger& log);

}  // namespace pgtandem
