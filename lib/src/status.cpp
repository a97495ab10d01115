// Status from each target (its progress row) and the source (lag, rate, the daemon's lock and errors).
#include "pgtandem/status.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "pgtandem/catalog.hpp"
#include "pgtandem/lag.hpp"
#include "pgtandem/progress.hpp"

namespace pgtandem {
namespace {

constexpr std::string_view kSourceCopySql = R"(
SELECT applied_snapshot::text, applied_at::text, batches, deltas, rows_copied, last_error, last_error_at::text,
       last_error_sqlstate, last_error_table
  FROM pgtandem.target_progress WHERE sync = $1 AND target = $2)";

pg::Awaitable<void> ReadTarget(boost::asio::any_io_executor executor, const Config& config, const SyncConfig& sync,
                               TargetStatus& status) {
  pg::Connection target(executor, status.target, pg::Side::kTarget, config.Node(status.target).dsn,
                        std::chrono::seconds(config.daemon.connect_timeout_s));
  try {
    co_await target.Connect();
    status.reachable = true;
    Progress progress = co_await ReadProgress(target, sync.name);
    NodeRole role = co_await ReadNodeRole(target);
    if (!progress.source_install.empty()) {
      status.applied_snapshot = progress.applied_snapshot;
      status.batches = progress.batches;
      status.deltas_applied = progress.deltas;
      status.rows_copied = progress.rows_copied;
      pg::Result at = co_await target.Exec("SELECT applied_at::text FROM pgtandem.progress WHERE sync = $1", sync.name);
      if (progress.batches > 0) status.last_applied_at = at.GetOptional(0, 0);
    } else if (role == NodeRole::kTarget) {
      pg::Result copied = co_await target.Exec("SELECT count(*) FROM pgtandem.copy_state WHERE sync = $1", sync.name);
      status.tables_copied = static_cast<int>(copied.GetInt(0, 0));
    }
    status.lock_wait = co_await ReadLockWait(target, sync.name);
  } catch (const Error& e) {
    status.reachable = false;
    status.unreachable_reason = e.what();
  }
}

// What the source's copy adds: the daemon's last error, and, for a target
// that has no progress row of its own yet, whether a copy has started.
void TakeSourceCopy(const pg::Result& copy, TargetStatus& status) {
  if (copy.Rows() == 0) return;
  bool started = copy.Get(0, 0) != kBeginningSnapshot;
  status.copying = status.reachable && !status.applied_snapshot && started;
  if (!status.applied_snapshot && started && !status.copying) {
    status.applied_snapshot = copy.Get(0, 0);
    status.last_applied_at = copy.GetOptional(0, 1);
    status.batches = copy.GetInt(0, 2);
    status.deltas_applied = copy.GetInt(0, 3);
    status.rows_copied = copy.GetInt(0, 4);
  }
  status.last_error = copy.GetOptional(0, 5);
  status.last_error_at = copy.GetOptional(0, 6);
  status.last_error_sqlstate = copy.GetOptional(0, 7);
  status.last_error_table = copy.GetOptional(0, 8);
}

pg::Awaitable<void> ReadFromSource(pg::Connection& source, const SyncConfig& sync,
                                   const std::vector<CapturedTable>& tables, TargetStatus& status) {
  pg::Result copy = co_await source.Exec(kSourceCopySql, sync.name, status.target);
  TakeSourceCopy(copy, status);
  std::string applied = status.applied_snapshot.value_or(std::string(kBeginningSnapshot));
  LagReading lag = co_await ReadLag(source, tables, applied);
  status.pending_deltas = lag.pending;
  status.pending_estimated = lag.estimated;
  status.lag_seconds = lag.lag_seconds;
  status.apply_rate = co_await ReadApplyRate(source, sync.name, status.target);
}

pg::Awaitable<std::vector<std::string>> NotCaptured(pg::Connection& source, const SyncConfig& sync,
                                                     const std::vector<CapturedTable>& captured) {
  std::vector<TableName> matching = co_await MatchingTables(source, sync);
  std::vector<std::string> missing;
  for (const auto& table : matching) {
    bool found = std::any_of(captured.begin(), captured.end(), [&](const CapturedTable& c) { return c.name == table; });
    if (!found) missing.push_back(table.Display());
  }
  co_return missing;
}

std::string DecideState(const SyncStatus& sync, const TargetStatus& t) {
  if (!t.reachable) return "unreachable";
  if (t.copying) return "copying";
  if (!sync.daemon || !t.pending_deltas) return "unknown";
  if (!sync.daemon->running) return "stopped";
  if (t.last_error) return "error";
  if (t.lag_seconds ? *t.lag_seconds < kStreamingLagSeconds : t.CaughtUp()) return "streaming";
  return "catching up";
}

pg::Awaitable<void> ReadSource(boost::asio::any_io_executor executor, const Config& config, const SyncConfig& sync,
                               SyncStatus& status) {
  pg::Connection source(executor, sync.source, pg::Side::kSource, config.Node(sync.source).dsn,
                        std::chrono::seconds(config.daemon.connect_timeout_s));
  try {
    co_await source.Connect();
    status.source_reachable = true;
    std::vector<CapturedTable> tables = co_await LoadCapturedTables(source, sync.name);
    status.tables = static_cast<int>(tables.size());
    status.not_captured = co_await NotCaptured(source, sync, tables);
    status.daemon = co_await ReadDaemonPresence(source, sync.name);
    status.freeze = co_await ReadFreezeState(source);
    for (auto& target : status.targets) co_await ReadFromSource(source, sync, tables, target);
  } catch (const Error& e) {
    status.daemon.reset();
    (status.source_reachable ? status.source_problem : status.source_unreachable_reason) = e.what();
  }
}

pg::Awaitable<SyncStatus> ReadSync(boost::asio::any_io_executor executor, const Config& config, const SyncConfig& sync,
                                   const std::optional<std::string>& only_target) {
  SyncStatus status;
  status.sync = sync.name;
  status.source = sync.source;
  for (const auto& target : sync.targets) {
    if (only_target && *only_target != target) continue;
    TargetStatus& t = status.targets.emplace_back();
    t.target = target;
    co_await ReadTarget(executor, config, sync, t);
  }
  co_await ReadSource(executor, config, sync, status);
  for (auto& t : status.targets) {
    if (!status.daemon) t.pending_deltas.reset();
    t.state = DecideState(status, t);
  }
  co_return status;
}

}  // namespace

std::optional<double> TargetStatus::EtaSeconds() const {
  if (!pending_deltas) return std::nullopt;
  if (*pending_deltas == 0) return 0.0;
  if (apply_rate <= 0 || (state != "streaming" && state != "catching up")) return std::nullopt;
  return static_cast<double>(*pending_deltas) / apply_rate;
}

bool TargetStatus::WithinLag(double max_lag) const {
  if (!reachable || !pending_deltas) return false;
  if (CaughtUp()) return true;
  return max_lag > 0 && lag_seconds && *lag_seconds <= max_lag;
}

pg::Awaitable<std::vector<SyncStatus>> ReadStatus(boost::asio::any_io_executor executor, const Config& config,
                                                  const std::vector<const SyncConfig*>& syncs,
                                                  const std::optional<std::string>& only_target) {
  std::vector<SyncStatus> out;
  for (const SyncConfig* sync : syncs) {
    SyncStatus status = co_await ReadSync(executor, config, *sync, only_target);
    out.push_back(std::move(status));
  }
  co_return out;
}

std::string FormatDuration(double seconds) {
  if (seconds < 9.95) return fmt::format("{:.1f} s", std::max(0.0, seconds));
  auto s = static_cast<int64_t>(std::llround(seconds));
  if (s < 60) return fmt::format("{} s", s);
  if (s < 3600) return fmt::format("{} min {:02} s", s / 60, s % 60);
  if (s < 86400) return fmt::format("{} h {:02} min", s / 3600, s % 3600 / 60);
  return fmt::format("{} d {:02} h", s / 86400, s % 86400 / 3600);
}

}  // namespace pgtandem
