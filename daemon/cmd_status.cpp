// pgtandem status: pending deltas and last applied batch, per sync and target.
#include <cstdio>

#include <fmt/format.h>

#include "command.hpp"
#include "pgtandem/async.hpp"
#include "pgtandem/status.hpp"

namespace pgtandem::cli {
namespace {

int Run(const Config& config, const ParsedArgs& args) {
  auto syncs = config.SelectSyncs(args.Value("--sync"));
  auto status = RunBlocking<std::vector<SyncStatus>>(
      [&](boost::asio::any_io_executor ex) { return ReadStatus(ex, config, syncs); });
  if (args.Has("--json")) {
    std::puts(StatusToJson(status).dump(2).c_str());
  } else {
    std::fputs(FormatStatusTable(status).c_str(), stdout);
  }
  return 0;
}

}  // namespace

const Command& StatusCommand() {
  static const Command command{
      {"status", "show, per sync and target, pending changes, the last applied batch and errors",
       "Reads the databases, not the daemon: it works whether the daemon runs or not.",
       {{"--sync", "NAME", "only this sync"}, {"--json", "", "print JSON (schema in README.md)"}}},
      &Run};
  return command;
}

}  // namespace pgtandem::cli
