// Which syncs a command works on: --sync, narrowed by --target.
#include <algorithm>

#include <fmt/format.h>

#include "command.hpp"
#include "pgtandem/error.hpp"

namespace pgtandem::cli {

std::vector<const SyncConfig*> SyncsWithTarget(const Config& config, const ParsedArgs& args) {
  std::vector<const SyncConfig*> syncs = config.SelectSyncs(args.Value("--sync"));
  auto target = args.Value("--target");
  if (!target) return syncs;
  config.Node(*target);
  std::vector<const SyncConfig*> selected;
  for (const SyncConfig* sync : syncs) {
    if (std::find(sync->targets.begin(), sync->targets.end(), *target) != sync->targets.end()) selected.push_back(sync);
  }
  if (selected.empty()) {
    throw Error(ErrorKind::kUsage,
                args.Value("--sync") ? fmt::format("node '{}' is not a target of sync '{}' (its targets: {})", *target,
                                                   *args.Value("--sync"), fmt::join(syncs.front()->targets, ", "))
                                     : fmt::format("node '{}' is not a target of any sync in the config", *target));
  }
  return selected;
}

}  // namespace pgtandem::cli
