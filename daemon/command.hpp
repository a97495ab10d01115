// A subcommand: its declared options and the function that runs it.
#pragma once

#include "pgtandem/command_line.hpp"
#include "pgtandem/compare.hpp"
#include "pgtandem/config.hpp"

namespace pgtandem::cli {

struct Command {
  CommandSpec spec;
  // Returns the process exit code; throws pgtandem::Error for failures.
  int (*run)(const Config& config, const ParsedArgs& args);
};

const Command& InstallCommand();
const Command& UninstallCommand();
const Command& RunCommand();
const Command& StatusCommand();
const Command& SnapshotCommand();
const Command& BootstrapCommand();
const Command& CutoverCommand();
const Command& CompareCommand();
const Command& RepairCommand();
// "sequences sync" and "sequences check": a command name may be two words.
const Command& SequencesSyncCommand();
const Command& SequencesCheckCommand();

// Shared by compare and repair.
CompareOptions ReadCompareOptions(const ParsedArgs& args);
// The syncs selected by --sync, narrowed to those that have --target as a target.
std::vector<const SyncConfig*> SyncsWithTarget(const Config& config, const ParsedArgs& args);
// Compares each selected sync in turn; prints each one's report as it is done when `print`.
std::vector<SyncComparison> CompareAll(const Config& config, const ParsedArgs& args, const CompareOptions& options,
                                       bool print, int examples);
// After the report: throws the first target's failure (exit 5), if any.
void ThrowTargetFailure(const std::vector<SyncComparison>& comparisons);

}  // namespace pgtandem::cli
