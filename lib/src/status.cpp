// Status from the source (deltas, the daemon's last errors) and each target (its progress row).
#include "pgtandem/status.hpp"

#include <fmt/format.h>

#include "pgtandem/catalog.hpp"
#include "pgtandem/progress.hpp"

namespace pgtandem {
namespace {

constexpr std::string_view kSourceCopySql = R"(
SELECT applied_snapshot::text, applied_at::text, batches, deltas, rows_copied, last_error, last_error_at::text
  FROM pgtandem.target_progress WHERE sync = $1 AND target = $2)";

// Deltas not visible in the applied snapshot: what the target still lacks.
std::string PendingSql(const std::vector<CapturedTable>& tables, const std::string& applied) {
  std::string a = QuoteLiteral(applied) + "::pg_snapshot";
  std::string sql;
  for (const auto& table : tables) {
    if (!sql.empty()) sql += " + ";
    sql += fmt::format("(SELECT count(*) FROM {} d WHERE d.txid >= pg_catalog.pg_snapshot_xmin({}) "
                       "AND NOT pg_catalog.pg_visible_in_snapshot(d.txid, {}))",
                       table.DeltaTable(), a, a);
  }
  return "SELECT " + (sql.empty() ? std::string("0") : sql);
}

pg::Awaitable<void> ReadTarget(boost::asio::any_io_executor executor, const Config& config, const SyncConfig& sync,
                               TargetStatus& status) {
  pg::Connection target(executor, status.target, pg::Side::kTarget, config.Node(status.target).dsn,
                         std::chrono::seconds(config.daemon.connect_timeout_s));
  try {
    co_await target.Connect();
    status.reachable = true;
    Progress progress = co_await ReadProgress(target, sync.name);
    if (progress.batches > 0) {
      status.applied_snapshot = progress.applied_snapshot;
      status.batches = progress.batches;
      status.deltas_applied = progress.deltas;
      status.rows_copied = progress.rows_copied;
      pg::Result at = co_await target.Exec("SELECT applied_at::text FROM pgtandem.progress WHERE sync = $1", sync.name);
      status.last_applied_at = at.GetOptional(0, 0);
    }
  } catch (const Error& e) {
    status.reachable = false;
    status.unreachable_reason = e.what();
  }
}

pg::Awaitable<void> ReadFromSource(pg::Connection& source, const SyncConfig& sync,
                                   const std::vector<CapturedTable>& tables, TargetStatus& status) {
  pg::Result copy = co_await source.Exec(kSourceCopySql, sync.name, status.target);
  if (copy.Rows() > 0) {
    if (!status.applied_snapshot && copy.Get(0, 0) != kBeginningSnapshot) {
      status.applied_snapshot = copy.Get(0, 0);
      status.last_applied_at = copy.GetOptional(0, 1);
      status.batches = copy.GetInt(0, 2);
      status.deltas_applied = copy.GetInt(0, 3);
      status.rows_copied = copy.GetInt(0, 4);
    }
    status.last_error = copy.GetOptional(0, 5);
    status.last_error_at = copy.GetOptional(0, 6);
  }
  pg::Result pending = co_await source.Exec(PendingSql(tables, status.applied_snapshot.value_or(
                                                                   std::string(kBeginningSnapshot))));
  status.pending_deltas = pending.GetInt(0, 0);
}

pg::Awaitable<SyncStatus> ReadSync(boost::asio::any_io_executor executor, const Config& config, const SyncConfig& sync) {
  SyncStatus status{sync.name, sync.source, false, {}, {}, {}};
  for (const auto& target : sync.targets) {
    TargetStatus& t = status.targets.emplace_back();
    t.target = target;
    co_await ReadTarget(executor, config, sync, t);
  }
  pg::Connection source(executor, sync.source, pg::Side::kSource, config.Node(sync.source).dsn,
                        std::chrono::seconds(config.daemon.connect_timeout_s));
  try {
    co_await source.Connect();
    status.source_reachable = true;
    std::vector<CapturedTable> tables = co_await LoadCapturedTables(source, sync.name);
    for (auto& target : status.targets) co_await ReadFromSource(source, sync, tables, target);
  } catch (const Error& e) {
    (status.source_reachable ? status.source_problem : status.source_unreachable_reason) = e.what();
  }
  co_return status;
}

std::string OrDash(const std::optional<std::string>& value) { return value ? *value : "-"; }

}  // namespace

// The daemon clears last_error as soon as a session is healthy again, so a
// recorded error is a current one; no clocks of two servers are compared.
std::string TargetStatus::State() const {
  if (!reachable) return "unreachable";
  if (last_error) return "error";
  if (!pending_deltas) return "unknown";
  if (batches == 0) return "not started";
  return *pending_deltas == 0 ? "caught up" : "catching up";
}

pg::Awaitable<std::vector<SyncStatus>> ReadStatus(boost::asio::any_io_executor executor, const Config& config,
                                                  const std::vector<const SyncConfig*>& syncs) {
  std::vector<SyncStatus> out;
  for (const SyncConfig* sync : syncs) {
    SyncStatus status = co_await ReadSync(executor, config, *sync);
    out.push_back(std::move(status));
  }
  co_return out;
}

std::string FormatStatusTable(const std::vector<SyncStatus>& status) {
  std::string text = fmt::format("{:<12} {:<12} {:<12} {:<12} {:>12} {:<32} {:>8}\n", "SYNC", "SOURCE", "TARGET",
                                 "STATE", "PENDING", "LAST BATCH APPLIED", "BATCHES");
  std::vector<std::string> notes;
  for (const auto& sync : status) {
    if (!sync.source_reachable) notes.push_back(sync.source_unreachable_reason);
    if (!sync.source_problem.empty()) notes.push_back(sync.source_problem);
    for (const auto& t : sync.targets) {
      text += fmt::format("{:<12} {:<12} {:<12} {:<12} {:>12} {:<32} {:>8}\n", sync.sync, sync.source, t.target,
                          t.State(), t.pending_deltas ? std::to_string(*t.pending_deltas) : "?",
                          OrDash(t.last_applied_at), t.batches);
      if (!t.reachable) notes.push_back(t.unreachable_reason);
      if (t.State() == "error") notes.push_back(fmt::format("sync {} target {}: last error at {}: {}", sync.sync,
                                                            t.target, OrDash(t.last_error_at), OrDash(t.last_error)));
    }
  }
  for (const auto& note : notes) text += "\n" + note;
  if (!notes.empty()) text += "\n";
  return text;
}

nlohmann::json StatusToJson(const std::vector<SyncStatus>& status) {
  nlohmann::json syncs = nlohmann::json::array();
  for (const auto& sync : status) {
    nlohmann::json targets = nlohmann::json::array();
    for (const auto& t : sync.targets) {
      auto optional = [](const auto& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
      targets.push_back({{"target", t.target}, {"state", t.State()}, {"reachable", t.reachable},
                         {"unreachable_reason", t.reachable ? nlohmann::json(nullptr) : nlohmann::json(t.unreachable_reason)},
                         {"pending_deltas", optional(t.pending_deltas)}, {"last_applied_at", optional(t.last_applied_at)},
                         {"applied_snapshot", optional(t.applied_snapshot)}, {"batches", t.batches},
                         {"deltas_applied", t.deltas_applied}, {"rows_copied", t.rows_copied},
                         {"last_error", optional(t.last_error)}, {"last_error_at", optional(t.last_error_at)}});
    }
    syncs.push_back({{"sync", sync.sync}, {"source", sync.source}, {"source_reachable", sync.source_reachable},
                     {"source_unreachable_reason",
                      sync.source_reachable ? nlohmann::json(nullptr) : nlohmann::json(sync.source_unreachable_reason)},
                     {"source_problem", sync.source_problem.empty() ? nlohmann::json(nullptr)
                                                                    : nlohmann::json(sync.source_problem)},
                     {"targets", targets}});
  }
  return {{"syncs", syncs}};
}

}  // namespace pgtandem
