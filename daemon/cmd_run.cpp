// pgtandem run: the replication daemon, in the foreground.
#include "command.hpp"
#include "pgtandem/daemon.hpp"

namespace pgtandem::cli {
namespace {

int Run(const Config& config, const ParsedArgs& args) { return RunDaemon(config, args.Value("--sync")); }

}  // namespace

const Command& RunCommand() {
  static const Command command{
      {"run", "run the replication daemon in the foreground, logging to stderr",
       "Signals: SIGTERM or SIGINT finish the batches in flight and exit 0; a second one rolls them back and\n"
       "exits at once. Each target is applied independently: one that is down is retried with backoff while\n"
       "the others go on.",
       {{"--sync", "NAME", "only this sync (default: every sync in the config)"}}},
      &Run};
  return command;
}

}  // namespace pgtandem::cli
