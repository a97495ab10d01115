// pgtandem bootstrap: prepare a target restored from a snapshot of the source for catch-up.
#include <fmt/format.h>

#include "command.hpp"
#include "pgtandem/async.hpp"
#include "pgtandem/bootstrap.hpp"
#include "pgtandem/error.hpp"
#include "pgtandem/snapshot_copy.hpp"

namespace pgtandem::cli {
namespace {

const SyncConfig& OneSync(const Config& config, const ParsedArgs& args) {
  auto syncs = config.SelectSyncs(args.Value("--sync"));
  if (syncs.size() != 1) {
    throw Error(ErrorKind::kUsage, "the config defines several syncs; name one with --sync NAME");
  }
  return *syncs.front();
}

int RunCopy(const Config& config, const ParsedArgs& args, const SyncConfig& sync, const std::string& target,
            const Logger& log) {
  CopyOptions options{static_cast<int>(args.Number("--jobs", 1, 64).value_or(2)), nullptr};
  if (args.Has("--schema")) options.schema_from = &config.Node(sync.source).dsn;
  auto report = RunBlocking<CopyReport>([&](boost::asio::any_io_executor ex) -> pg::Awaitable<CopyReport> {
    auto connect = [&, ex](pg::Side side) {
      const std::string& node = side == pg::Side::kSource ? sync.source : target;
      return std::make_unique<pg::Connection>(ex, node, side, config.Node(node).dsn,
                                              std::chrono::seconds(config.daemon.connect_timeout_s));
    };
    co_return co_await CopyFromSnapshot(sync, target, connect, options, log);
  });
  if (report.tables_copied == 0 && report.tables_resumed == 0) {
    fmt::print("target '{}' is already bootstrapped for sync '{}' (applied through source snapshot {}); nothing to do\n",
               target, sync.name, report.applied_snapshot);
    return 0;
  }
  fmt::print("target '{}' bootstrapped for sync '{}' by copy: {} table(s) copied ({} rows, {:.1f} MiB){}\n"
             "  catch-up starts at source snapshot {}\nnext: pgtandem run\n",
             target, sync.name, report.tables_copied, report.rows, static_cast<double>(report.bytes) / 1048576.0,
             report.tables_resumed ? fmt::format(", {} copied by an earlier, interrupted run", report.tables_resumed)
                                   : std::string(),
             report.applied_snapshot);
  return 0;
}

int Run(const Config& config, const ParsedArgs& args) {
  const SyncConfig& sync = OneSync(config, args);
  auto target_name = args.Value("--target");
  if (!target_name) throw Error(ErrorKind::kUsage, "pgtandem bootstrap: --target NODE is required");
  if (std::find(sync.targets.begin(), sync.targets.end(), *target_name) == sync.targets.end()) {
    throw Error(ErrorKind::kUsage, fmt::format("node '{}' is not a target of sync '{}' (its targets: {})", *target_name,
                                               sync.name, fmt::join(sync.targets, ", ")));
  }
  Logger log(LogContext{sync.name, *target_name, "target", ""});
  if (args.Has("--copy")) return RunCopy(config, args, sync, *target_name, log);
  BootstrapOptions options{args.Has("--force")};
  auto report = RunBlocking<BootstrapReport>([&](boost::asio::any_io_executor ex) -> pg::Awaitable<BootstrapReport> {
    auto timeout = std::chrono::seconds(config.daemon.connect_timeout_s);
    pg::Connection source(ex, sync.source, pg::Side::kSource, config.Node(sync.source).dsn, timeout);
    pg::Connection target(ex, *target_name, pg::Side::kTarget, config.Node(*target_name).dsn, timeout);
    co_await source.Connect();
    co_await target.Connect();
    co_return co_await BootstrapRestored(source, target, sync, options, log);
  });
  if (report.already_done) {
    fmt::print("target '{}' is already bootstrapped for sync '{}' (applied through source snapshot {}); nothing to do\n",
               *target_name, sync.name, report.applied_snapshot);
    return 0;
  }
  fmt::print("target '{}' bootstrapped for sync '{}':\n  removed the capture schema the snapshot carried ({} "
             "trigger(s) on user tables)\n  tables match the source\n  catch-up starts at source snapshot {}, from {}\n"
             "next: pgtandem run\n",
             *target_name, sync.name, report.triggers_removed, report.applied_snapshot, report.derivation);
  return 0;
}

}  // namespace

const Command& BootstrapCommand() {
  static const Command command{
      {"bootstrap", "prepare a target restored from a snapshot of the source (pg_dump or physical copy) for catch-up",
       "Removes the capture schema and triggers the snapshot carried (and nothing else), checks every table of the\n"
       "sync matches the source, and records where catch-up starts: the snapshot exported by \"pgtandem snapshot\"\n"
       "when the dump used it, else the point read from the restored copy of the delta tables. Refuses a snapshot\n"
       "taken before install, or older than the deltas the source still keeps. Running it again is harmless.\n"
       "With --copy, pgtandem takes the snapshot itself and copies every table, several at once; interrupted, it\n"
       "resumes table by table when run again.",
       {{"--sync", "NAME", "the sync (required when the config has several)"},
        {"--target", "NODE", "the restored target node"},
        {"--force", "", "accept a snapshot that cannot be placed after install; replay every captured change"},
        {"--copy", "", "pgtandem copies every table itself, from one exported snapshot (target tables must exist)"},
        {"--jobs", "N", "with --copy: tables copied at once (default 2)"},
        {"--schema", "", "with --copy: create missing tables from the source's DDL (pg_dump --schema-only); "
                         "indexes and constraints are added after the data"}}},
      &Run};
  return command;
}

}  // namespace pgtandem::cli
