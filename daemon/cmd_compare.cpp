// pgtandem compare: does each target hold exactly the source's rows? Exit status 0, 1 (differs) or 7 (unverified).
#include <cstdio>

#include <fmt/format.h>

#include "command.hpp"
#include "pgtandem/async.hpp"
#include "pgtandem/compare.hpp"

namespace pgtandem::cli {

CompareOptions ReadCompareOptions(const ParsedArgs& args) {
  CompareOptions options;
  if (auto pattern = args.Value("--table")) {
    try {
      options.table = TablePattern::Parse(*pattern);
    } catch (const Error& e) {
      throw Error(ErrorKind::kUsage, fmt::format("invalid --table: {}", e.what()));
    }
  }
  options.wait = std::chrono::seconds(args.Number("--wait", 0, 86400).value_or(60));
  return options;
}

std::vector<SyncComparison> CompareAll(const Config& config, const ParsedArgs& args, const CompareOptions& options,
                                       bool print, int examples) {
  std::vector<SyncComparison> comparisons;
  for (const SyncConfig* sync : SyncsWithTarget(config, args)) {
    comparisons.push_back(RunBlocking<SyncComparison>([&](boost::asio::any_io_executor ex) {
      return CompareSync(ex, config, *sync, args.Value("--target"), options);
    }));
    if (print) std::fputs(FormatComparison(comparisons.back(), examples).c_str(), stdout);
  }
  return comparisons;
}

// After the report is out: a target that could not be compared is an error of its own kind (exit 5).
void ThrowTargetFailure(const std::vector<SyncComparison>& comparisons) {
  std::fflush(stdout);
  for (const auto& sync : comparisons) {
    for (const auto& target : sync.targets) {
      if (target.failure) throw *target.failure;
    }
  }
}

namespace {

int Run(const Config& config, const ParsedArgs& args) {
  CompareOptions options = ReadCompareOptions(args);
  int examples = static_cast<int>(args.Number("--examples", 0, 100000).value_or(10));
  bool json = args.Has("--json");
  std::vector<SyncComparison> comparisons = CompareAll(config, args, options, !json, examples);
  if (json) std::puts(ComparisonToJson(comparisons, examples).dump(2).c_str());
  ThrowTargetFailure(comparisons);
  return static_cast<int>(CompareExitCode(comparisons));
}

}  // namespace

const Command& CompareCommand() {
  static const Command command{
      {"compare", "check that each target holds exactly the source's rows, while writes go on",
       "Each node counts and hashes its own rows per primary-key range, source and target at once; ranges that\n"
       "differ are split until the differing keys are found, so rows are not shipped to pgtandem. Keys that\n"
       "differed are then re-read once the target has applied everything the source's snapshot saw: a row whose\n"
       "change was only on its way is not reported. Needs capture installed and, under writes, the daemon running.\n"
       "Exit status 0 when every table is equal, 1 when some row or definition differs, 7 when nothing differs\n"
       "for certain but some keys could not be verified within --wait.",
       {{"--sync", "NAME", "only this sync (default: every sync in the config)"},
        {"--target", "NODE", "only this target (default: every target of the sync)"},
        {"--table", "PATTERN", "only the sync's tables matching this schema.table pattern (* wildcards)"},
        {"--examples", "N", "differing keys shown per table and kind (default 10)"},
        {"--wait", "SECONDS", "longest wait per table for the target to apply changes in flight (default 60)"},
        {"--json", "", "print JSON (schema in README.md)"}}},
      &Run};
  return command;
}

}  // namespace pgtandem::cli
