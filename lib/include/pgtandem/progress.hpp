// How far a target has applied a sync: the truth on the target, a copy on the source.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "pgtandem/pg/connection.hpp"

namespace pgtandem {

// A source snapshot in which no transaction is visible: a target starting from
// it receives every delta ever captured.
inline constexpr std::string_view kBeginningSnapshot = "1:1:";

// The last delta applied inside a window: deltas are ordered by (table id, txid, seq).
struct Position {
  int table_id = 0;
  int64_t txid = 0;
  int64_t seq = 0;
};

struct Progress {
  // Every source transaction visible in this snapshot has been applied.
  std::string applied_snapshot{kBeginningSnapshot};
  // Set while a window (applied_snapshot, window_end] is applied in several batches.
  std::optional<std::string> window_end;
  Position position;
  // Set while the target may hold rows newer than applied_snapshot: a snapshot
  // in which they are all visible (see sql/target_schema.sql).
  std::optional<std::string> rows_newer_until;
  int64_t batches = 0;
  int64_t deltas = 0;
  int64_t rows_copied = 0;
  // The source install these snapshots belong to; empty before the first batch.
  std::string source_install;
};

// The id of the capture install on the source (new after every uninstall).
pg::Awaitable<std::string> ReadInstallId(pg::Connection& source);

// Creates the target's pgtandem schema if needed. Refuses a node that holds a
// restored copy of the source's capture schema: it must be bootstrapped first.
pg::Awaitable<void> PrepareTargetSchema(pg::Connection& target, const std::string& sync);

// The target's progress for a sync; a fresh Progress when it has none.
pg::Awaitable<Progress> ReadProgress(pg::Connection& target, const std::string& sync);

// Writes progress inside the caller's open target transaction.
pg::Awaitable<void> WriteProgress(pg::Connection& target, const std::string& sync, const Progress& progress);

// Keeps the source's copy of a target's progress up to date (autocommit),
// and samples its applied-delta counter for the apply rate.
pg::Awaitable<void> CopyProgressToSource(pg::Connection& source, const std::string& sync, const std::string& target,
                                         const Progress& progress);

// Throws Error(kState) when the target's progress belongs to an earlier
// install of capture (changes made between uninstall and install were never
// captured), or when deltas this target still needs were purged (its
// progress went back, e.g. restored from an old backup): replaying would
// silently miss changes, so the target must be bootstrapped again.
pg::Awaitable<void> CheckDeltasKept(pg::Connection& source, const std::string& sync, const std::string& target,
                                    const Progress& progress, const std::string& install_id);

// Clears the recorded error once a target's session is healthy again.
pg::Awaitable<void> ClearErrorOnSource(pg::Connection& source, const std::string& sync, const std::string& target);

// What status shows of a target's failure.
struct RecordedError {
  std::string message;
  std::string sqlstate;  // empty when no server error was behind it
  std::string table;     // the table being applied, empty when none was
};

// Records the last error a target hit, for status; best effort.
pg::Awaitable<void> RecordErrorOnSource(pg::Connection& source, const std::string& sync, const std::string& target,
                                        const RecordedError& error);

}  // namespace pgtandem
