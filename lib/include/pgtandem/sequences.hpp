// Sequences: nextval() fires no trigger, so a target's sequences are set from
// the source's (and past the target's own data) by `pgtandem sequences`, by the
// daemon every few seconds, and one last time at cutover.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "pgtandem/config.hpp"
#include "pgtandem/error.hpp"
#include "pgtandem/pg/connection.hpp"
#include "pgtandem/sequence_catalog.hpp"
#include "pgtandem/sequence_plan.hpp"

namespace pgtandem {

// Every sequence of a sync on one target.
struct TargetSequencesReport {
  std::string target;
  std::vector<SequenceReport> sequences;
  // Why this target could not be checked or synced (unreachable, a missing
  // grant): the others still are, and callers throw it after reporting them.
  std::optional<Error> failure;

  bool AtRisk() const;
};

// One sync: its source, its sequences on each target examined.
struct SyncSequencesReport {
  std::string sync;
  std::string source;
  std::vector<std::string> unmatched_patterns;  // `sequences` patterns that select nothing
  std::vector<TargetSequencesReport> targets;

  bool AtRisk() const;
  // The first target's failure, if any.
  const Error* Failure() const;
};

// Reads the target and reports, per sequence, whether it is missing, behind
// the source, or at or before a value already present in a column it feeds.
// Changes nothing. Throws an Error naming any privilege the role lacks.
pg::Awaitable<TargetSequencesReport> CheckTargetSequences(pg::Connection& target, const SyncSequenceSet& source,
                                                          const SequenceOptions& options);

// Sets each target sequence to the source's state, or past the furthest value
// present on the target in a column it feeds, whichever is further, plus the
// margin; never backwards unless allowed. Creates and redefines only when asked.
// Privileges are checked before anything changes; a sequence the server then
// refuses is reported as failed and the others go on.
pg::Awaitable<TargetSequencesReport> SyncTargetSequences(pg::Connection& target, const SyncSequenceSet& source,
                                                         const SequenceOptions& options);

// `pgtandem sequences check|sync` for one sync: connects to its source and to
// each of its targets (only `only_target` when given) in turn. A source that
// fails throws; a target that fails is recorded in its report and the next
// target goes on.
enum class SequenceMode { kCheck, kSync };
pg::Awaitable<SyncSequencesReport> RunSequences(boost::asio::any_io_executor executor, const Config& config,
                                                const SyncConfig& sync, const std::optional<std::string>& only_target,
                                                SequenceMode mode, const SequenceOptions& options);

// Cutover's last step once writes on the source have stopped: syncs every
// sequence of `sync` on every target (only `only_target` when given),
// scanning every column it feeds, and throws Error(kState) naming each
// sequence that is still at risk.
pg::Awaitable<SyncSequencesReport> FinalSequenceSync(boost::asio::any_io_executor executor, const Config& config,
                                                     const SyncConfig& sync, int64_t margin = 0,
                                                     const std::optional<std::string>& only_target = std::nullopt);

// One sentence on why a sequence is still at risk after a sync, with the command that fixes it.
std::string DescribeRisk(const SequenceReport& report, const std::string& sync, const std::string& target);

// The text `pgtandem sequences check|sync` prints for one sync.
std::string FormatSequencesReport(const SyncSequencesReport& report, SequenceMode mode);
// `pgtandem sequences check --json` (schema in README.md).
nlohmann::json SequencesReportToJson(const std::vector<SyncSequencesReport>& reports);

}  // namespace pgtandem
