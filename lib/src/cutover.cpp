// The cutover's steps, each timed; the target is safe to promote only if every one passes.
#include "pgtandem/cutover.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "pgtandem/async.hpp"
#include "pgtandem/catalog.hpp"
#include "pgtandem/lag.hpp"
#include "pgtandem/progress.hpp"
#include "pgtandem/sequences.hpp"
#include "pgtandem/sync_lock.hpp"

namespace pgtandem {
namespace asio = boost::asio;

namespace {

using Clock = std::chrono::steady_clock;
// The daemon applies a commit within milliseconds of its NOTIFY; polling
// this often keeps the frozen window short without loading the nodes.
constexpr auto kCatchUpPoll = std::chrono::milliseconds(50);

class StepTimer {
 public:
  explicit StepTimer(const CutoverStepLog& step) : step_(step) {}
  void Done(int number, const std::string& what) {
    double seconds = std::chrono::duration<double>(Clock::now() - started_).count();
    step_(fmt::format("{}/5 {} ({:.2f} s)", number, what, seconds));
    started_ = Clock::now();
  }

 private:
  const CutoverStepLog& step_;
  Clock::time_point started_ = Clock::now();
};

std::string CountSql(const std::vector<CapturedTable>& tables) {
  std::string sql;
  for (const auto& table : tables)
    sql += fmt::format("{}(SELECT count(*) FROM {})", sql.empty() ? "SELECT " : ", ", table.Target());
  return sql;
}

pg::Awaitable<std::vector<int64_t>> CountRows(pg::Connection& node, const std::vector<CapturedTable>& tables) {
  pg::Result row = co_await node.Exec(CountSql(tables));
  std::vector<int64_t> counts;
  for (int column = 0; column < row.Columns(); ++column) counts.push_back(row.GetInt(0, column));
  co_return counts;
}

// Both sides at once: on a big table, counting is most of the frozen window.
pg::Awaitable<std::vector<TableCount>> CountBoth(pg::Connection& source, pg::Connection& target,
                                                 const std::vector<CapturedTable>& tables) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer done(executor, Clock::time_point::max());
  std::optional<std::vector<int64_t>> on_target;
  std::exception_ptr target_failure;
  asio::co_spawn(executor, CountRows(target, tables), [&](std::exception_ptr e, std::vector<int64_t> counts) {
    target_failure = e;
    if (!e) on_target = std::move(counts);
    done.cancel();
  });
  std::vector<int64_t> on_source;
  std::exception_ptr source_failure;
  try {
    on_source = co_await CountRows(source, tables);
  } catch (const Error&) {
    source_failure = std::current_exception();
  }
  // The target's count refers to this frame: it must end before the frame does.
  boost::system::error_code ec;
  if (!on_target && !target_failure) co_await done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (source_failure) std::rethrow_exception(source_failure);
  if (target_failure) std::rethrow_exception(target_failure);
  std::vector<TableCount> counts;
  for (size_t i = 0; i < tables.size(); ++i)
    counts.push_back({tables[i].name.Display(), on_source[i], (*on_target)[i]});
  co_return counts;
}

// Writes stop, and the point they stopped at.
pg::Awaitable<FreezePoint> StopWrites(pg::Connection& source, const SyncConfig& sync, const CutoverOptions& options,
                                      StepTimer& timer) {
  std::string done;
  if (options.freeze) {
    FreezeReport freeze = co_await FreezeWrites(source, sync.name, options.grace);
    done = fmt::format(
        "writes frozen: database {} read-only for new sessions since {}{}; ended {} other session(s), "
        "{} write transaction(s) after they finished, {} still open after --grace",
        freeze.state.database, freeze.state.frozen_at, freeze.already_frozen ? " (an earlier cutover)" : "",
        freeze.sessions_ended, freeze.writers_finished, freeze.writers_ended);
  } else {
    co_await WaitForWriters(source, options.max_wait);
    done = "writes stopped by you (no --freeze): no write transaction open on the source";
  }
  FreezePoint point = co_await TakeFreezePoint(source);
  timer.Done(1, fmt::format("{}; freeze point: source snapshot {}, WAL {}", done, point.snapshot, point.lsn));
  co_return point;
}

// The target's progress covers every change on the source: nothing pending, no window half applied.
pg::Awaitable<bool> CaughtUp(pg::Connection& source, pg::Connection& target, const SyncConfig& sync,
                             const std::vector<CapturedTable>& tables) {
  Progress progress = co_await ReadProgress(target, sync.name);
  if (progress.window_end) co_return false;
  bool pending = co_await HasChangesNotIn(source, tables, progress.applied_snapshot);
  co_return !pending;
}

// False when a change reached the source after the freeze point (the freeze did not hold).
pg::Awaitable<bool> WaitForTarget(pg::Connection& source, pg::Connection& target, const SyncConfig& sync,
                                  const std::vector<CapturedTable>& tables, const FreezePoint& point,
                                  const CutoverOptions& options) {
  auto deadline = Clock::now() + options.max_wait;
  for (;;) {
    bool after_freeze = co_await HasChangesNotIn(source, tables, point.snapshot);
    if (after_freeze) co_return false;
    bool caught_up = co_await CaughtUp(source, target, sync, tables);
    if (caught_up) co_return true;
    DaemonPresence daemon = co_await ReadDaemonPresence(source, sync.name);
    if (!daemon.running) {
      throw Error(ErrorKind::kState, fmt::format("target '{}' has changes still to apply, but no daemon runs sync "
                                                 "'{}': start it (pgtandem run), then run cutover again; writes stay "
                                                 "frozen meanwhile",
                                                 target.Node(), sync.name));
    }
    if (Clock::now() > deadline) {
      throw Error(ErrorKind::kTimeout, fmt::format("target '{}' has not applied every change within --max-wait {} s; "
                                                   "see \"pgtandem status --target {}\", then run cutover again; "
                                                   "writes stay frozen meanwhile",
                                                   target.Node(), options.max_wait.count() / 1000, target.Node()));
    }
    co_await Sleep(kCatchUpPoll);
  }
}

constexpr std::string_view kAfterFreeze =
    "changes were committed on the source after the freeze point, so writes are not frozen (with --freeze: a "
    "superuser's session, or one that turned default_transaction_read_only off); stop them, then run cutover again";

// The daemon's own sequence sync runs on: one of its rounds planned before the
// final sync could still set a sequence below it. Checked again, all columns.
pg::Awaitable<void> CheckSequences(boost::asio::any_io_executor executor, const Config& config, const SyncConfig& sync,
                                   const std::string& target, CutoverReport& report) {
  SyncSequencesReport check =
      co_await RunSequences(executor, config, sync, target, SequenceMode::kCheck, SequenceOptions{});
  if (const Error* failure = check.Failure()) throw *failure;
  for (const auto& r : check.targets.front().sequences) {
    if (r.at_risk) report.problems.push_back(DescribeRisk(r, sync.name, target));
  }
}

// Step 4: the same row counts on both sides, and still nothing after the freeze point.
pg::Awaitable<void> Verify(pg::Connection& source, pg::Connection& target, const std::vector<CapturedTable>& tables,
                           CutoverReport& report, StepTimer& timer) {
  report.counts = co_await CountBoth(source, target, tables);
  for (const auto& c : report.counts) {
    if (c.source != c.target) {
      report.problems.push_back(
          fmt::format("table {} has {} row(s) on the source but {} on the target", c.table, c.source, c.target));
    }
  }
  bool after_freeze = co_await HasChangesNotIn(source, tables, report.point.snapshot);
  if (after_freeze) report.problems.emplace_back(kAfterFreeze);
  timer.Done(4, report.Safe() ? fmt::format("verified: {} table(s), row counts equal on both sides, no change since "
                                            "the freeze point, no sequence at risk",
                                            tables.size())
                              : "verification FAILED");
}

}  // namespace

pg::Awaitable<CutoverReport> RunCutover(boost::asio::any_io_executor executor, const Config& config,
                                        const SyncConfig& sync, const std::string& target_name,
                                        const CutoverOptions& options, const CutoverStepLog& step) {
  auto timeout = std::chrono::seconds(config.daemon.connect_timeout_s);
  pg::Connection source(executor, sync.source, pg::Side::kSource, config.Node(sync.source).dsn, timeout);
  pg::Connection target(executor, target_name, pg::Side::kTarget, config.Node(target_name).dsn, timeout);
  co_await source.Connect();
  co_await target.Connect();
  std::vector<CapturedTable> tables = co_await LoadCapturedTables(source, sync.name);
  if (tables.empty()) {
    throw Error(ErrorKind::kState,
                fmt::format("sync '{}': no table is captured on source node '{}'; nothing to cut over", sync.name,
                            sync.source));
  }
  StepTimer timer(step);
  CutoverReport report;
  report.point = co_await StopWrites(source, sync, options, timer);
  auto frozen_since = Clock::now();
  bool held = co_await WaitForTarget(source, target, sync, tables, report.point, options);
  if (!held) {
    report.problems.emplace_back(kAfterFreeze);
    co_return report;
  }
  timer.Done(2, fmt::format("target '{}' has applied every change committed on the source", target_name));
  SyncSequencesReport sequences = co_await FinalSequenceSync(executor, config, sync, 0, target_name);
  report.sequences = static_cast<int>(sequences.targets.front().sequences.size());
  timer.Done(3, fmt::format("final sequence sync: {} sequence(s) set where needed, none at risk", report.sequences));
  co_await CheckSequences(executor, config, sync, target_name, report);
  co_await Verify(source, target, tables, report, timer);
  std::optional<FreezeState> frozen = co_await ReadFreezeState(source);
  report.frozen_by_pgtandem = frozen.has_value();
  report.frozen_seconds =
      frozen ? frozen->frozen_seconds : std::chrono::duration<double>(Clock::now() - frozen_since).count();
  co_return report;
}

}  // namespace pgtandem
