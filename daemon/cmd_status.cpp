// pgtandem status: lag, pending changes, apply rate and state per sync and target; watch it, or wait for it.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <thread>

#include <fmt/format.h>

#include "command.hpp"
#include "pgtandem/async.hpp"
#include "pgtandem/status.hpp"

namespace pgtandem::cli {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kWaitPoll = std::chrono::milliseconds(500);
constexpr auto kWaitReport = std::chrono::seconds(10);

std::vector<SyncStatus> Read(const Config& config, const ParsedArgs& args) {
  auto syncs = config.SelectSyncs(args.Value("--sync"));
  auto target = args.Value("--target");
  if (target) config.Node(*target);
  return RunBlocking<std::vector<SyncStatus>>(
      [&](boost::asio::any_io_executor ex) { return ReadStatus(ex, config, syncs, target); });
}

void Print(const std::vector<SyncStatus>& status, const ParsedArgs& args, bool one_line_json = false) {
  if (args.Has("--json")) {
    std::puts(StatusToJson(status).dump(one_line_json ? -1 : 2).c_str());
  } else {
    std::fputs(FormatStatusTable(status).c_str(), stdout);
  }
  std::fflush(stdout);
}

// Redraws in place on a terminal; elsewhere (a log, a pipe) appends, JSON one object a line.
[[noreturn]] void Watch(const Config& config, const ParsedArgs& args) {
  std::string given = *args.Value("--watch");
  auto interval = std::chrono::seconds(given.empty() ? 2 : *args.Number("--watch", 1, 3600));
  bool terminal = isatty(STDOUT_FILENO) != 0;
  for (;;) {
    auto status = Read(config, args);
    if (terminal) {
      std::time_t now = std::time(nullptr);
      char clock[16];
      std::strftime(clock, sizeof clock, "%H:%M:%S", std::localtime(&now));
      std::fputs(fmt::format("\x1b[H\x1b[2J{}, every {} s; Ctrl-C stops\n\n", clock, interval.count()).c_str(), stdout);
    }
    Print(status, args, !terminal);
    std::this_thread::sleep_for(interval);
  }
}

std::vector<std::string> Behind(const std::vector<SyncStatus>& status, double max_lag) {
  std::vector<std::string> behind;
  for (const auto& sync : status) {
    for (const auto& t : sync.targets) {
      if (t.WithinLag(max_lag)) continue;
      behind.push_back(fmt::format("sync {} target {}: {}, lag {}, {} pending", sync.sync, t.target, t.state,
                                   t.lag_seconds ? FormatDuration(*t.lag_seconds) : "unknown",
                                   t.pending_deltas ? std::to_string(*t.pending_deltas) : "?"));
    }
  }
  return behind;
}

int WaitCaughtUp(const Config& config, const ParsedArgs& args) {
  double max_lag = static_cast<double>(args.Number("--max-lag", 0, 86400).value_or(0));
  auto timeout = args.Number("--timeout", 1, 30 * 86400);
  auto started = Clock::now();
  auto last_report = started;
  for (;;) {
    auto status = Read(config, args);
    auto behind = Behind(status, max_lag);
    if (behind.empty()) return Print(status, args), 0;
    auto waited = Clock::now() - started;
    if (timeout && waited >= std::chrono::seconds(*timeout)) {
      Print(status, args);
      throw Error(ErrorKind::kTimeout, fmt::format("not caught up within --timeout {} s (--max-lag {} s): {}", *timeout,
                                                   max_lag, fmt::join(behind, "; ")));
    }
    if (Clock::now() - last_report >= kWaitReport) {
      std::fprintf(stderr, "pgtandem status: still waiting after %lld s: %s\n",
                   static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(waited).count()),
                   fmt::format("{}", fmt::join(behind, "; ")).c_str());
      last_report = Clock::now();
    }
    std::this_thread::sleep_for(kWaitPoll);
  }
}

int Run(const Config& config, const ParsedArgs& args) {
  bool wait = args.Has("--wait-caught-up");
  if (args.Has("--watch") && wait) {
    throw Error(ErrorKind::kUsage, "pgtandem status: --watch and --wait-caught-up do not go together; pick one");
  }
  if (!wait && (args.Has("--max-lag") || args.Has("--timeout"))) {
    throw Error(ErrorKind::kUsage, "pgtandem status: --max-lag and --timeout only apply with --wait-caught-up");
  }
  if (args.Has("--watch")) Watch(config, args);
  if (wait) return WaitCaughtUp(config, args);
  Print(Read(config, args), args);
  return 0;
}

}  // namespace

const Command& StatusCommand() {
  static const Command command{
      {"status",
       "show, per sync and target, lag, pending changes, apply rate, ETA and state",
       "Reads the databases, not the daemon: it works whether the daemon runs or not, and says which (a running\n"
       "daemon holds an advisory lock per sync on the source). LAG is the age of the oldest change committed on\n"
       "the source and not yet applied on the target; PENDING counts those changes (~ marks an estimate, made\n"
       "when a table has more than 100000 of them); RATE is deltas applied per second over the last minute, and\n"
       "ETA is PENDING at that rate. STATE: streaming (lag under 10 s), catching up, copying (bootstrap --copy),\n"
       "stopped (no daemon runs the sync), error (the daemon's last attempt failed), unreachable, unknown.\n\n"
       "--wait-caught-up exits 0 once every selected target's lag is within --max-lag seconds (default 0: no\n"
       "change pending), and 7 when --timeout passes first.",
       {{"--sync", "NAME", "only this sync"},
        {"--target", "NODE", "only this target"},
        {"--json", "", "print JSON (schema in README.md)"},
        {"--watch", "[SECONDS]", "refresh every SECONDS (default 2) until interrupted"},
        {"--wait-caught-up", "", "wait until every selected target is within --max-lag, then print status"},
        {"--max-lag", "SECONDS", "with --wait-caught-up: lag accepted (default 0: nothing pending)"},
        {"--timeout", "SECONDS", "with --wait-caught-up: give up after this long, exit 7 (default: wait on)"}}},
      &Run};
  return command;
}

}  // namespace pgtandem::cli
