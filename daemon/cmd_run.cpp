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
       "exits at once. SIGHUP reloads the config file, all or nothing: syncs and targets added start, removed\n"
       "ones stop after their batch in flight, changed ones restart; an invalid file is logged and ignored.\n"
       "Each target is applied independently: one that is down is retried with backoff while the others go on.\n"
       "Daemons sharing a config take turns: the one holding a sync's lock on the source applies it, the\n"
       "others stand by and take over within seconds. Under systemd (Type=notify) it sends READY=1,\n"
       "RELOADING=1, STOPPING=1 and, with WatchdogSec, WATCHDOG=1 to $NOTIFY_SOCKET.",
       {{"--sync", "NAME", "only this sync (default: every sync in the config)"}}},
      &Run};
  return command;
}

}  // namespace pgtandem::cli
