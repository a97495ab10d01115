// pgtandem install: capture on the source of each selected sync.
#include <fmt/format.h>

#include "command.hpp"
#include "pgtandem/async.hpp"
#include "pgtandem/capture_installer.hpp"

namespace pgtandem::cli {
namespace {

int Run(const Config& config, const ParsedArgs& args) {
  InstallOptions options;
  if (auto ms = args.Number("--lock-timeout", 10, 600000)) options.lock_timeout = std::chrono::milliseconds(*ms);
  if (auto n = args.Number("--max-attempts", 1, 1000)) options.max_attempts = static_cast<int>(*n);
  for (const SyncConfig* sync : config.SelectSyncs(args.Value("--sync"))) {
    options.method = config.Node(sync->source).capture;
    options.library = config.Node(sync->source).capture_library;
    Logger log(LogContext{sync->name, sync->source, "source", ""});
    auto report = RunBlocking<InstallReport>([&](boost::asio::any_io_executor ex) -> pg::Awaitable<InstallReport> {
      pg::Connection source(ex, sync->source, pg::Side::kSource, config.Node(sync->source).dsn,
                            std::chrono::seconds(config.daemon.connect_timeout_s));
      co_await source.Connect();
      co_return co_await InstallCapture(source, *sync, options, log);
    });
    fmt::print("sync '{}' on source node '{}': capture installed on {} new table(s), {} already captured\n",
               sync->name, sync->source, report.added.size(), report.existing.size());
    for (const auto& table : report.added) fmt::print("  added    {}\n", table);
    for (const auto& table : report.existing) fmt::print("  existing {}\n", table);
    if (report.c_capture) {
      fmt::print("  capture: the C trigger, from {}\n", options.library);
    } else if (report.c_unavailable.empty()) {
      fmt::print("  capture: PL/pgSQL\n");
    } else {
      fmt::print("  capture: PL/pgSQL, because {}\n", report.c_unavailable);
    }
  }
  return 0;
}

}  // namespace

const Command& InstallCommand() {
  static const Command command{
      {"install",
       "install change capture on the source of a sync (idempotent; run again after adding tables)",
       "Creates schema pgtandem and capture triggers for every table the sync selects, in one transaction.\n"
       "Every selected table needs a primary key. Creating a trigger waits for the table's writers, so each\n"
       "lock is awaited at most --lock-timeout, then released and retried with backoff. The source node's\n"
       "\"capture\" picks the trigger: \"auto\" (the default) the C one where the server can load the module\n"
       "and the role may create it, PL/pgSQL otherwise; it says which it used, and why not C.",
       {{"--sync", "NAME", "only this sync (default: every sync in the config)"},
        {"--lock-timeout", "MS", "longest wait for one table's lock before backing off (default 2000)"},
        {"--max-attempts", "N", "attempts before giving up on a busy table (default 20)"}}},
      &Run};
  return command;
}

}  // namespace pgtandem::cli
