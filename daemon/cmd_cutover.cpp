// pgtandem cutover: the flip to a target as one command; --unfreeze lets writes back into the source.
#include <algorithm>
#include <cstdio>

#include <fmt/format.h>

#include "command.hpp"
#include "pgtandem/async.hpp"
#include "pgtandem/cutover.hpp"
#include "pgtandem/freeze.hpp"

namespace pgtandem::cli {
namespace {

const SyncConfig& OneSync(const Config& config, const ParsedArgs& args) {
  auto syncs = config.SelectSyncs(args.Value("--sync"));
  if (syncs.size() != 1) throw Error(ErrorKind::kUsage, "the config defines several syncs; name one with --sync NAME");
  return *syncs.front();
}

std::string OneTarget(const SyncConfig& sync, const ParsedArgs& args) {
  auto target = args.Value("--target");
  if (!target) {
    if (sync.targets.size() == 1) return sync.targets.front();
    throw Error(ErrorKind::kUsage, fmt::format("sync '{}' has several targets ({}); name the one to cut over to with "
                                               "--target NODE",
                                               sync.name, fmt::join(sync.targets, ", ")));
  }
  if (std::find(sync.targets.begin(), sync.targets.end(), *target) == sync.targets.end()) {
    throw Error(ErrorKind::kUsage, fmt::format("node '{}' is not a target of sync '{}' (its targets: {})", *target,
                                               sync.name, fmt::join(sync.targets, ", ")));
  }
  return *target;
}

void PrintMarker(const CutoverReport& report) {
  fmt::print("  5/5 the marker:\n");
  fmt::print("      source snapshot at the freeze  {}\n", report.point.snapshot);
  fmt::print("      source WAL position            {}\n", report.point.lsn);
  fmt::print("      taken at                       {}\n", report.point.at);
  fmt::print("      writes frozen for              {:.2f} s{}\n", report.frozen_seconds,
             report.frozen_by_pgtandem ? " (so far; they stay frozen)" : " (since the freeze point)");
  size_t width = 5;
  for (const auto& c : report.counts) width = std::max(width, c.table.size());
  fmt::print("      {:<{}}  {:>12}  {:>12}\n", "table", width, "source rows", "target rows");
  for (const auto& c : report.counts) fmt::print("      {:<{}}  {:>12}  {:>12}\n", c.table, width, c.source, c.target);
}

int Unfreeze(const Config& config, const ParsedArgs& args) {
  const SyncConfig& sync = OneSync(config, args);
  UnfreezeReport report =
      RunBlocking<UnfreezeReport>([&](boost::asio::any_io_executor ex) -> pg::Awaitable<UnfreezeReport> {
        pg::Connection source(ex, sync.source, pg::Side::kSource, config.Node(sync.source).dsn,
                              std::chrono::seconds(config.daemon.connect_timeout_s));
        co_await source.Connect();
        co_return co_await UnfreezeWrites(source);
      });
  if (!report.was_frozen) {
    fmt::print("source node '{}' (database {}): writes are not frozen by pgtandem; nothing to undo\n", sync.source,
               report.database);
    return 0;
  }
  fmt::print(
      "source node '{}' (database {}): writes let back in after {:.2f} s frozen; default_transaction_read_only "
      "{}; ended {} session(s) opened while frozen, so that they reconnect read-write\n",
      sync.source, report.database, report.frozen_seconds,
      report.restored_setting ? "set back to " + *report.restored_setting : "no longer set on the database",
      report.sessions_ended);
  if (!report.notes.empty()) fmt::print("note: {}\n", report.notes);
  return 0;
}

int Run(const Config& config, const ParsedArgs& args) {
  if (args.Has("--unfreeze")) {
    for (const char* other : {"--freeze", "--target", "--max-wait", "--grace"}) {
      if (args.Has(other))
        throw Error(ErrorKind::kUsage, fmt::format("pgtandem cutover: --unfreeze takes only --sync, not {}", other));
    }
    return Unfreeze(config, args);
  }
  const SyncConfig& sync = OneSync(config, args);
  std::string target = OneTarget(sync, args);
  CutoverOptions options;
  options.freeze = args.Has("--freeze");
  options.max_wait = std::chrono::seconds(args.Number("--max-wait", 1, 86400).value_or(60));
  options.grace = std::chrono::seconds(args.Number("--grace", 0, 3600).value_or(5));
  fmt::print("cutover of sync '{}' from source '{}' to target '{}':\n", sync.name, sync.source, target);
  std::fflush(stdout);
  CutoverReport report = RunBlocking<CutoverReport>([&](boost::asio::any_io_executor ex) {
    return RunCutover(ex, config, sync, target, options, [](const std::string& line) {
      fmt::print("  {}\n", line);
      std::fflush(stdout);
    });
  });
  if (!report.Safe()) {
    fmt::print("\ntarget '{}' is NOT safe to promote:\n", target);
    for (const auto& problem : report.problems) fmt::print("  {}\n", problem);
    fmt::print("writes stay frozen; \"pgtandem cutover --unfreeze\" lets them back into the source\n");
    return static_cast<int>(ExitCode::kFailure);
  }
  PrintMarker(report);
  fmt::print(
      "\ntarget '{}' is safe to promote: point the application at it, then stop the daemon. The source "
      "stays frozen; \"pgtandem cutover --unfreeze{}\" lets writes back into it.\n",
      target, config.syncs.size() > 1 ? " --sync " + sync.name : "");
  return 0;
}

}  // namespace

const Command& CutoverCommand() {
  static const Command command{
      {"cutover",
       "stop writes on the source, wait for the target, sync sequences, verify, print the marker",
       "Steps, each printed with its duration:\n"
       "  1. writes stop. With --freeze, pgtandem freezes them: the source database's new sessions start read-only\n"
       "     (ALTER DATABASE ... SET default_transaction_read_only = on), then every older session except\n"
       "     pgtandem's is ended, write transactions after --grace seconds to finish. Without it, you have\n"
       "     stopped them, and cutover waits for open write transactions to end. The freeze point is taken.\n"
       "  2. waits until the target has applied every change committed on the source (the daemon must run).\n"
       "  3. final sequence sync: every sequence set past the source's and the target's values.\n"
       "  4. verification: row counts of every table equal on both sides, no change after the freeze point, and\n"
       "     no sequence at risk.\n"
       "Then it prints the marker: the freeze point (pg_current_snapshot(), WAL position), per-table row counts and\n"
       "how long writes have been frozen. Exit 0 only when the target is safe to promote; 1 when verification\n"
       "failed, 6 when no daemon applies or a sequence stays at risk, 7 when --max-wait passed. Writes stay\n"
       "frozen whatever happens; --unfreeze lets them back in (and ends the sessions opened while frozen, which\n"
       "would stay read-only). Needs, for --freeze and --unfreeze, ownership of the source database, and for\n"
       "--freeze pg_signal_backend and pg_read_all_stats (or a superuser).",
       {{"--sync", "NAME", "the sync (required when the config has several)"},
        {"--target", "NODE", "the target to cut over to (required when the sync has several)"},
        {"--freeze", "", "freeze the application's writes on the source first"},
        {"--grace", "SECONDS",
         "with --freeze: time open write transactions get to finish before they are ended "
         "(default 5)"},
        {"--max-wait", "SECONDS",
         "longest wait for the target to catch up, and for writers without --freeze "
         "(default 60)"},
        {"--unfreeze", "", "undo --freeze: let writes back into the source, and do nothing else"}}},
      &Run};
  return command;
}

}  // namespace pgtandem::cli
