// A subcommand: its declared options and the function that runs it.
#pragma once

#include "pgtandem/command_line.hpp"
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
// "sequences sync" and "sequences check": a command name may be two words.
const Command& SequencesSyncCommand();
const Command& SequencesCheckCommand();

// The syncs selected by --sync, narrowed to those that have --target as a target.
std::vector<const SyncConfig*> SyncsWithTarget(const Config& config, const ParsedArgs& args);

}  // namespace pgtandem::cli
