// Bootstrap: turn a target restored from a snapshot of the source into one the daemon can catch up.
#pragma once

#include <string>

#include "pgtandem/config.hpp"
#include "pgtandem/log.hpp"
#include "pgtandem/pg/connection.hpp"

namespace pgtandem {

struct BootstrapOptions {
  // Accept a target whose snapshot cannot be placed after install: every
  // change captured since install is replayed, and changes before it are
  // the DBA's business.
  bool force = false;
};

struct BootstrapReport {
  bool already_done = false;
  std::string applied_snapshot;  // where catch-up starts
  std::string derivation;        // how that was worked out, for the DBA
  int triggers_removed = 0;
};

// Strips the capture artifacts the snapshot carried, checks the tables match
// the source, works out which captured transactions the snapshot holds, and
// records that as the target's progress, all in one target transaction.
// Running it again on a bootstrapped target changes nothing.
pg::Awaitable<BootstrapReport> BootstrapRestored(pg::Connection& source, pg::Connection& target,
                                                const SyncConfig& sync, const BootstrapOptions& options,
                                                const Logger& log);

}  // namespace pgtandem
