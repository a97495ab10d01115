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
const Command& CutoverCommand();
// "sequences sync" and "sequences check": a command name may be two words.
const Command& SequencesSyncCommand();
const Command& SequencesCheckCommand();

}  // namespace pgtandem::cli
