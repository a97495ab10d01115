// What "pgtandem status" prints: a table for people, JSON for scripts.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "pgtandem/status.hpp"

namespace pgtandem {
namespace {

constexpr std::string_view kRow = "{:<12} {:<12} {:>14} {:>12} {:>10} {:>12}  {}\n";

std::string OrDash(const std::optional<std::string>& value) { return value ? *value : "-"; }

std::string Pending(const TargetStatus& t) {
  if (!t.pending_deltas) return "?";
  return fmt::format("{}{}", t.pending_estimated ? "~" : "", *t.pending_deltas);
}

// "pgtandem@db-b:4242 (client 10.0.0.7)": who a daemon is, as far as the source can tell.
std::string DaemonName(const std::optional<std::string>& application_name, const std::optional<std::string>& client) {
  return fmt::format("{} (client {})", application_name.value_or("?"), client.value_or("local"));
}

std::string StandbyNote(const DaemonPresence& d) {
  if (d.standbys.empty()) return {};
  std::vector<std::string> names;
  for (const auto& standby : d.standbys) names.push_back(DaemonName(standby.application_name, standby.client_addr));
  return fmt::format("; standing by: {}", fmt::join(names, ", "));
}

std::string DaemonLine(const SyncStatus& sync) {
  if (!sync.daemon) return "daemon unknown (the source could not be read)";
  const DaemonPresence& d = *sync.daemon;
  if (!d.running) {
    return fmt::format("daemon not running (no daemon holds the sync's lock on the source){}", StandbyNote(d));
  }
  return fmt::format("daemon running, active: {} (client {}, source backend pid {}{}){}",
                     d.application_name.value_or("?"), d.client_addr.value_or("local"), d.pid.value_or(0),
                     d.since ? ", since " + *d.since : "", StandbyNote(d));
}

std::string FreezeLine(const SyncStatus& sync) {
  if (!sync.freeze) return {};
  return fmt::format("; writes frozen by the cutover of sync '{}' since {} ({})", sync.freeze->frozen_by,
                     sync.freeze->frozen_at, FormatDuration(sync.freeze->frozen_seconds));
}

std::string ErrorNote(const SyncStatus& sync, const TargetStatus& t) {
  std::string where;
  if (t.last_error_table) where += " on table " + *t.last_error_table;
  if (t.last_error_sqlstate) where += " (SQLSTATE " + *t.last_error_sqlstate + ")";
  return fmt::format("sync {} target {}: last error at {}{}: {}", sync.sync, t.target, OrDash(t.last_error_at), where,
                     OrDash(t.last_error));
}

std::string LockWaitNote(const SyncStatus& sync, const TargetStatus& t) {
  const LockWait& w = *t.lock_wait;
  return fmt::format("sync {} target {}: the batch waits for a lock on table {} held by {} since {} ({}); it gives up "
                     "after daemon.lock_timeout_s and retries", sync.sync, t.target,
                     w.table.empty() ? "(unknown)" : w.table,
                     w.blocker.empty() ? "pid " + w.blocking_pids : w.blocker, w.since, FormatDuration(w.seconds));
}

std::string NotCapturedNote(const SyncStatus& sync) {
  return fmt::format("sync {}: {} table(s) match the sync's patterns but are not captured, so their changes are not "
                     "replicated: {}; run \"pgtandem install --sync {}\" to capture them", sync.sync,
                     sync.not_captured.size(), fmt::join(sync.not_captured, ", "), sync.sync);
}

std::string TargetRow(const SyncStatus& sync, const TargetStatus& t) {
  auto eta = t.EtaSeconds();
  std::string state = t.state == "copying" ? fmt::format("copying {}/{}", t.tables_copied, sync.tables) : t.state;
  return fmt::format(kRow, t.target, state, Pending(t), t.lag_seconds ? FormatDuration(*t.lag_seconds) : "-",
                     fmt::format("{:.1f}/s", t.apply_rate), eta ? FormatDuration(*eta) : "-",
                     OrDash(t.last_applied_at));
}

nlohmann::json Optional(const auto& value) { return value ? nlohmann::json(*value) : nlohmann::json(nullptr); }

nlohmann::json StandbysJson(const std::vector<DaemonSession>& standbys) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& standby : standbys) {
    list.push_back({{"source_pid", standby.pid},
                    {"client_addr", Optional(standby.client_addr)},
                    {"application_name", Optional(standby.application_name)},
                    {"since", Optional(standby.since)}});
  }
  return list;
}

nlohmann::json DaemonJson(const std::optional<DaemonPresence>& daemon) {
  if (!daemon) return nullptr;
  return {{"running", daemon->running},
          {"source_pid", Optional(daemon->pid)},
          {"client_addr", Optional(daemon->client_addr)},
          {"application_name", Optional(daemon->application_name)},
          {"since", Optional(daemon->since)},
          {"standbys", StandbysJson(daemon->standbys)}};
}

nlohmann::json FreezeJson(const std::optional<FreezeState>& freeze) {
  if (!freeze) return nullptr;
  return {{"frozen_by", freeze->frozen_by},
          {"frozen_at", freeze->frozen_at},
          {"frozen_seconds", freeze->frozen_seconds},
          {"freeze_snapshot", Optional(freeze->snapshot)},
          {"freeze_lsn", Optional(freeze->lsn)}};
}

nlohmann::json LockWaitJson(const std::optional<LockWait>& wait) {
  if (!wait) return nullptr;
  return {{"table", wait->table.empty() ? nlohmann::json(nullptr) : nlohmann::json(wait->table)},
          {"blocking_pids", wait->blocking_pids},
          {"blocker", wait->blocker},
          {"since", wait->since},
          {"seconds", wait->seconds}};
}

nlohmann::json TargetJson(const SyncStatus& sync, const TargetStatus& t) {
  std::optional<bool> caught_up;
  if (t.pending_deltas) caught_up = t.CaughtUp();
  nlohmann::json copy = nullptr;
  if (t.copying) copy = {{"tables_copied", t.tables_copied}, {"tables_total", sync.tables}};
  return {{"target", t.target},
          {"state", t.state},
          {"reachable", t.reachable},
          {"unreachable_reason", t.reachable ? nlohmann::json(nullptr) : nlohmann::json(t.unreachable_reason)},
          {"pending_deltas", Optional(t.pending_deltas)},
          {"pending_estimated", t.pending_estimated},
          {"caught_up", Optional(caught_up)},
          {"lag_seconds", Optional(t.lag_seconds)},
          {"apply_rate", t.apply_rate},
          {"eta_seconds", Optional(t.EtaSeconds())},
          {"last_applied_at", Optional(t.last_applied_at)},
          {"applied_snapshot", Optional(t.applied_snapshot)},
          {"batches", t.batches},
          {"deltas_applied", t.deltas_applied},
          {"rows_copied", t.rows_copied},
          {"copy", copy},
          {"last_error", Optional(t.last_error)},
          {"last_error_at", Optional(t.last_error_at)},
          {"last_error_sqlstate", Optional(t.last_error_sqlstate)},
          {"last_error_table", Optional(t.last_error_table)},
          {"lock_wait", LockWaitJson(t.lock_wait)}};
}

}  // namespace

std::string FormatStatusTable(const std::vector<SyncStatus>& status) {
  std::string text;
  std::vector<std::string> notes;
  for (const auto& sync : status) {
    if (!text.empty()) text += "\n";
    text += fmt::format("sync {} (source {}): {}{}\n", sync.sync, sync.source, DaemonLine(sync), FreezeLine(sync));
    text += fmt::format(kRow, "TARGET", "STATE", "PENDING", "LAG", "RATE", "ETA", "LAST BATCH APPLIED");
    if (!sync.source_reachable) notes.push_back(sync.source_unreachable_reason);
    if (!sync.source_problem.empty()) notes.push_back(sync.source_problem);
    if (!sync.not_captured.empty()) notes.push_back(NotCapturedNote(sync));
    for (const auto& t : sync.targets) {
      text += TargetRow(sync, t);
      if (!t.reachable) notes.push_back(t.unreachable_reason);
      if (t.lock_wait) notes.push_back(LockWaitNote(sync, t));
      if (t.last_error) notes.push_back(ErrorNote(sync, t));
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
    for (const auto& t : sync.targets) targets.push_back(TargetJson(sync, t));
    syncs.push_back({{"sync", sync.sync},
                     {"source", sync.source},
                     {"source_reachable", sync.source_reachable},
                     {"source_unreachable_reason",
                      sync.source_reachable ? nlohmann::json(nullptr) : nlohmann::json(sync.source_unreachable_reason)},
                     {"source_problem",
                      sync.source_problem.empty() ? nlohmann::json(nullptr) : nlohmann::json(sync.source_problem)},
                     {"daemon", DaemonJson(sync.daemon)},
                     {"freeze", FreezeJson(sync.freeze)},
                     {"not_captured", sync.not_captured},
                     {"targets", targets}});
  }
  return {{"schema_version", 1}, {"syncs", syncs}};
}

}  // namespace pgtandem
