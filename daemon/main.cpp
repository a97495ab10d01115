// pgtandem: global options, subcommand dispatch, and the exit codes of errors.
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <fmt/format.h>

#include "command.hpp"
#include "pgtandem/error.hpp"
#include "pgtandem/log.hpp"

namespace {

using pgtandem::cli::Command;

constexpr const char* kDefaultConfig = "/etc/pgtandem/pgtandem.json";

const std::vector<const Command*>& Commands() {
  static const std::vector<const Command*> commands = {
      &pgtandem::cli::InstallCommand(), &pgtandem::cli::UninstallCommand(), &pgtandem::cli::RunCommand(),
      &pgtandem::cli::StatusCommand(), &pgtandem::cli::SnapshotCommand(), &pgtandem::cli::BootstrapCommand(),
      &pgtandem::cli::CompareCommand(), &pgtandem::cli::RepairCommand(),
      &pgtandem::cli::SequencesSyncCommand(), &pgtandem::cli::SequencesCheckCommand(),
      &pgtandem::cli::CutoverCommand()};
  return commands;
}

std::string MainHelp() {
  std::string text =
      "pgtandem moves a live PostgreSQL database to a new home: triggers capture changes on the source,\n"
      "a daemon applies them to the targets.\n\n"
      "Usage: pgtandem [--config FILE] COMMAND [OPTIONS]\n\n"
      "Global options:\n"
      "  --config FILE  configuration file (default: $PGTANDEM_CONFIG, else /etc/pgtandem/pgtandem.json)\n"
      "  --version      print the version and exit\n"
      "  --help         show this help and exit\n\nCommands:\n";
  for (const Command* c : Commands()) text += fmt::format("  {:<16} {}\n", c->spec.name, c->spec.summary);
  text += "\nRun \"pgtandem COMMAND --help\" for a command's options.\n";
  return text;
}

std::string ConfigPath(const std::string& given) {
  if (!given.empty()) return given;
  if (const char* env = std::getenv("PGTANDEM_CONFIG"); env && *env) return env;
  return kDefaultConfig;
}

// How many arguments, from argv[i] on, spell the command's name ("sequences sync" is two); 0 if they do not.
size_t NameWords(const Command& command, const std::vector<std::string>& argv, size_t i) {
  std::istringstream name(command.spec.name);
  size_t words = 0;
  for (std::string word; name >> word; ++words) {
    if (i + words >= argv.size() || argv[i + words] != word) return 0;
  }
  return words;
}

// "sequences" alone, or with a word that is not one of its subcommands.
[[noreturn]] void UnknownCommand(const std::vector<std::string>& argv, size_t i) {
  std::vector<std::string> subcommands;
  for (const Command* command : Commands()) {
    const std::string& name = command->spec.name;
    if (name.rfind(argv[i] + " ", 0) == 0) subcommands.push_back(name.substr(argv[i].size() + 1));
  }
  if (subcommands.empty() || i + 1 >= argv.size() || argv[i + 1].rfind("--", 0) == 0) {
    throw pgtandem::Error(pgtandem::ErrorKind::kUsage,
                          subcommands.empty()
                              ? fmt::format("unknown command \"{}\"; see \"pgtandem --help\"", argv[i])
                              : fmt::format("\"pgtandem {}\" needs a subcommand: {}; see \"pgtandem --help\"", argv[i],
                                            fmt::join(subcommands, ", ")));
  }
  throw pgtandem::Error(pgtandem::ErrorKind::kUsage,
                        fmt::format("unknown command \"{} {}\"; \"{}\" has: {}; see \"pgtandem --help\"", argv[i],
                                    argv[i + 1], argv[i], fmt::join(subcommands, ", ")));
}

int Dispatch(const std::vector<std::string>& argv) {
  std::string config_path;
  size_t i = 0;
  for (; i < argv.size() && argv[i].rfind("--", 0) == 0; ++i) {
    if (argv[i] == "--help") return std::fputs(MainHelp().c_str(), stdout), 0;
    if (argv[i] == "--version") return std::puts("pgtandem " PGTANDEM_VERSION), 0;
    if (argv[i] == "--config" && i + 1 < argv.size()) {
      config_path = argv[++i];
    } else if (argv[i].rfind("--config=", 0) == 0) {
      config_path = argv[i].substr(9);
    } else {
      throw pgtandem::Error(pgtandem::ErrorKind::kUsage,
                            fmt::format("unknown global option \"{}\"; see \"pgtandem --help\"", argv[i]));
    }
  }
  if (i == argv.size()) {
    std::fputs(MainHelp().c_str(), stderr);
    return static_cast<int>(pgtandem::ExitCode::kBadArguments);
  }
  for (const Command* command : Commands()) {
    size_t words = NameWords(*command, argv, i);
    if (words == 0) continue;
    std::vector<std::string> args(argv.begin() + static_cast<long>(i + words), argv.end());
    for (const auto& arg : args) {
      if (arg == "--help") return std::fputs(pgtandem::HelpText(command->spec).c_str(), stdout), 0;
    }
    pgtandem::ParsedArgs parsed = pgtandem::ParseArgs(command->spec, args);
    pgtandem::Config config = pgtandem::LoadConfig(ConfigPath(config_path));
    pgtandem::SetLogLevel(pgtandem::ParseLogLevel(config.log.level));
    pgtandem::SetLogFormat(pgtandem::ParseLogFormat(config.log.format));
    return command->run(config, parsed);
  }
  UnknownCommand(argv, i);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  const bool journal = pgtandem::JournalStreamMatches(std::getenv("JOURNAL_STREAM"), STDERR_FILENO);
  pgtandem::SetLogToJournal(journal);
  // A config that fails to load under systemd shows in the journal as an error ("<3>").
  const char* error_priority = journal ? "<3>" : "";
  try {
    return Dispatch(args);
  } catch (const pgtandem::Error& e) {
    std::fprintf(stderr, "%spgtandem: error: %s\n", error_priority, e.what());
    return static_cast<int>(e.Code());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%spgtandem: internal error (please report it): %s\n", error_priority, e.what());
    return static_cast<int>(pgtandem::ExitCode::kInternal);
  }
}
