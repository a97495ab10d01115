// pgtandem repair: compare, then queue the differing keys as deltas for the daemon to apply.
#include <cstdio>

#include <fmt/format.h>

#include "command.hpp"
#include "pgtandem/async.hpp"
#include "pgtandem/repair.hpp"

namespace pgtandem::cli {
namespace {

int Run(const Config& config, const ParsedArgs& args) {
  CompareOptions options = ReadCompareOptions(args);
  std::vector<SyncComparison> comparisons = CompareAll(config, args, options, true, 10);
  bool complete = true;
  for (const auto& comparison : comparisons) {
    RepairReport report = RunBlocking<RepairReport>([&](boost::asio::any_io_executor ex) {
      return QueueRepairs(ex, config, comparison);
    });
    std::fputs(FormatRepair(report).c_str(), stdout);
    complete = complete && report.Complete();
  }
  ThrowTargetFailure(comparisons);
  return complete ? 0 : static_cast<int>(ExitCode::kFailure);
}

}  // namespace

const Command& RepairCommand() {
  static const Command command{
      {"repair", "compare, then queue the keys that differ so the daemon copies them again from the source",
       "Runs compare (see \"pgtandem compare --help\"), then inserts each key that differs, or could not be\n"
       "verified, into its table's delta table on the source, in one transaction. The daemon then applies them\n"
       "the way it applies every change: it deletes those keys on the target and copies in the source's rows.\n"
       "Nothing is written on a target by this command. Every target of the sync re-applies the queued keys,\n"
       "which changes nothing where they were already equal. Run compare again once the daemon has applied them.\n"
       "Exit status 0 when every difference found was queued, 1 when a table could not be repaired (its\n"
       "definition differs) or more keys differ than one run lists.",
       {{"--sync", "NAME", "only this sync (default: every sync in the config)"},
        {"--target", "NODE", "only compare this target (default: every target of the sync)"},
        {"--table", "PATTERN", "only the sync's tables matching this schema.table pattern (* wildcards)"},
        {"--wait", "SECONDS", "longest wait per table for the target to apply changes in flight (default 60)"}}},
      &Run};
  return command;
}

}  // namespace pgtandem::cli
