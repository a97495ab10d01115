// pgtandem sequences sync|check: set the targets' sequences from the source, or report the risks.
#include <cstdio>

#include <fmt/format.h>

#include "command.hpp"
#include "pgtandem/async.hpp"
#include "pgtandem/sequences.hpp"

namespace pgtandem::cli {
namespace {

// Runs each selected sync in turn; as text, each sync's report is printed as soon as it is done.
std::vector<SyncSequencesReport> RunAll(const Config& config, const ParsedArgs& args, SequenceMode mode,
                                        const SequenceOptions& options) {
  std::vector<SyncSequencesReport> reports;
  for (const SyncConfig* sync : SyncsWithTarget(config, args)) {
    reports.push_back(RunBlocking<SyncSequencesReport>([&](boost::asio::any_io_executor ex) {
      return RunSequences(ex, config, *sync, args.Value("--target"), mode, options);
    }));
    if (!args.Has("--json")) std::fputs(FormatSequencesReport(reports.back(), mode).c_str(), stdout);
  }
  return reports;
}

// After the report is out: a target that failed is an error of its own kind (exit 5), else 1 for any risk.
int Exit(const std::vector<SyncSequencesReport>& reports) {
  std::fflush(stdout);  // the report first, then main's error line on stderr
  for (const auto& report : reports) {
    if (const Error* failure = report.Failure()) throw *failure;
  }
  for (const auto& report : reports) {
    if (report.AtRisk()) return static_cast<int>(ExitCode::kFailure);
  }
  return 0;
}

int RunSync(const Config& config, const ParsedArgs& args) {
  SequenceOptions options;
  if (auto margin = args.Number("--margin", 0, 1'000'000'000)) options.margin = *margin;
  options.allow_backwards = args.Has("--allow-backwards");
  options.fix_definitions = args.Has("--fix-definitions");
  options.create_missing = args.Has("--create-missing");
  return Exit(RunAll(config, args, SequenceMode::kSync, options));
}

int RunCheck(const Config& config, const ParsedArgs& args) {
  auto reports = RunAll(config, args, SequenceMode::kCheck, SequenceOptions{});
  if (args.Has("--json")) std::puts(SequencesReportToJson(reports).dump(2).c_str());
  return Exit(reports);
}

constexpr const char* kWhich =
    "A sync's sequences are those its \"sequences\" patterns select, and every sequence behind a column of a\n"
    "replicated table: serial and bigserial columns, GENERATED ... AS IDENTITY, and DEFAULT nextval(...) (one\n"
    "sequence shared by several tables included). A target sequence is found by name, else as the sequence\n"
    "that feeds the same column there.";

}  // namespace

const Command& SequencesSyncCommand() {
  static const Command command{
      {"sequences sync",
       "set each target's sequences to the source's, or past the values the target already holds",
       std::string(kWhich) +
           "\n\nEach target sequence is set (setval) to the source's state (last_value, is_called), or past the\n"
           "furthest value already present on the target in any column it feeds, whichever is further, plus\n"
           "--margin increments. A target sequence that is already further is never moved back, unless\n"
           "--allow-backwards. A sequence whose definition (type, increment, minvalue, maxvalue, cycle)\n"
           "differs, or that is missing on the target, is reported and left alone unless --fix-definitions or\n"
           "--create-missing. Needs SELECT on the source's sequences; on the target SELECT and UPDATE on the\n"
           "sequences and SELECT on the tables they feed. Exit status 1 when a sequence is still at risk.",
       {{"--sync", "NAME", "only this sync (default: every sync in the config)"},
        {"--target", "NODE", "only this target (default: every target of the sync)"},
        {"--margin", "N", "set sequences N increments further than needed (default 0)"},
        {"--allow-backwards", "", "also move back target sequences that are ahead of the source"},
        {"--fix-definitions", "", "ALTER target sequences whose definition differs to the source's"},
        {"--create-missing", "", "create sequences missing on the target, OWNED BY the same column"}}},
      &RunSync};
  return command;
}

const Command& SequencesCheckCommand() {
  static const Command command{
      {"sequences check",
       "list target sequences that are missing, behind the source, or at risk of duplicate keys",
       std::string(kWhich) +
           "\n\nReports, per target: sequences missing there; sequences whose next value is behind the source's;\n"
           "and sequences whose next value is at or before a value already present in a column they feed on the\n"
           "target (the next insert would collide). Definitions that differ are listed too. Changes nothing.\n"
           "Exit status 1 when any sequence is at risk, 0 when none is: a runbook can gate on it.",
       {{"--sync", "NAME", "only this sync (default: every sync in the config)"},
        {"--target", "NODE", "only this target (default: every target of the sync)"},
        {"--json", "", "print JSON (schema in README.md)"}}},
      &RunCheck};
  return command;
}

}  // namespace pgtandem::cli
