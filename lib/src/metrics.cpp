// The daemon's counters and gauges, and their Prometheus text exposition (format 0.0.4).
#include "pgtandem/metrics.hpp"

#include <fmt/format.h>

namespace pgtandem {
namespace {

// Label values may hold any character; these three must be escaped.
std::string Escape(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string Labels(const std::vector<std::pair<std::string_view, std::string_view>>& labels) {
  std::string out;
  for (const auto& [name, value] : labels)
    out += fmt::format("{}{}=\"{}\"", out.empty() ? "" : ",", name, Escape(value));
  return "{" + out + "}";
}

// Prometheus floats: integers without a fraction, others with enough digits to round-trip.
std::string Number(double value) { return fmt::format("{}", value); }

class Exposition {
 public:
  void Family(std::string_view name, std::string_view type, std::string_view help) {
    text_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  void Sample(std::string_view name, const std::string& labels, double value) {
    text_ += fmt::format("{}{} {}\n", name, labels, Number(value));
  }
  void Sample(std::string_view name, const std::string& labels, int64_t value) {
    text_ += fmt::format("{}{} {}\n", name, labels, value);
  }
  std::string Take() { return std::move(text_); }

 private:
  std::string text_;
};

// One gauge family with a 0/1 sample per name.
void PerKey(Exposition& out, std::string_view family, std::string_view label, const std::map<std::string, bool>& values,
            std::string_view help) {
  out.Family(family, "gauge", help);
  for (const auto& [name, on] : values) out.Sample(family, Labels({{label, name}}), int64_t{on ? 1 : 0});
}

// One family with a sample per (sync, target) that `value` gives one for.
template <typename Targets, typename Value>
void PerTarget(Exposition& out, std::string_view family, std::string_view type, const Targets& targets, Value value,
               std::string_view help) {
  out.Family(family, type, help);
  for (const auto& [key, t] : targets) {
    if (auto v = value(t)) out.Sample(family, Labels({{"sync", key.first}, {"target", key.second}}), *v);
  }
}

template <typename Targets>
void RenderLag(Exposition& out, const Targets& targets) {
  using Lag = typename Targets::mapped_type;
  PerTarget(
      out, "pgtandem_lag_seconds", "gauge", targets,
      [](const Lag& t) { return t.lag ? t.lag->lag_seconds : std::nullopt; },
      "Age of the oldest change committed on the source and not yet applied on the target; 0 when caught up.");
  PerTarget(
      out, "pgtandem_pending_changes", "gauge", targets,
      [](const Lag& t) { return t.lag ? std::optional<int64_t>(t.lag->pending) : std::nullopt; },
      "Changes (delta rows and truncates) committed on the source and not yet applied on the target.");
  PerTarget(
      out, "pgtandem_pending_changes_estimated", "gauge", targets,
      [](const Lag& t) { return t.lag ? std::optional<int64_t>(t.lag->estimated ? 1 : 0) : std::nullopt; },
      "1 when pgtandem_pending_changes is an estimate from a sample of a large backlog, 0 when counted.");
  PerTarget(
      out, "pgtandem_lag_read_timestamp_seconds", "gauge", targets,
      [](const Lag& t) { return t.lag ? std::optional<double>(t.lag_read_unix) : std::nullopt; },
      "When the lag and pending figures were read from the source.");
}

template <typename Targets>
void RenderApplied(Exposition& out, const Targets& targets) {
  using Counters = typename Targets::mapped_type;
  PerTarget(
      out, "pgtandem_batches_total", "counter", targets,
      [](const Counters& t) { return std::optional<int64_t>(t.batches); },
      "Batches applied and committed on the target.");
  PerTarget(
      out, "pgtandem_applied_rows_total", "counter", targets,
      [](const Counters& t) { return std::optional<int64_t>(t.rows); },
      "Rows copied into the target by applied batches.");
  PerTarget(
      out, "pgtandem_last_batch_timestamp_seconds", "gauge", targets,
      [](const Counters& t) { return t.last_batch_unix; }, "When the last batch was committed on the target.");
  out.Family("pgtandem_applied_changes_total", "counter", "Delta rows (changed keys) applied on the target, by table.");
  for (const auto& [key, t] : targets) {
    for (const auto& [table, deltas] : t.table_deltas) {
      out.Sample("pgtandem_applied_changes_total",
                 Labels({{"sync", key.first}, {"target", key.second}, {"table", table}}), deltas);
    }
  }
}

template <typename Targets>
void RenderBatchSeconds(Exposition& out, const Targets& targets) {
  out.Family("pgtandem_batch_duration_seconds", "histogram",
             "Time to read, apply and commit one batch, from opening the source snapshot to the target's commit.");
  for (const auto& [key, t] : targets) {
    int64_t cumulative = 0;
    for (size_t i = 0; i < Metrics::kBatchSeconds.size(); ++i) {
      cumulative += t.buckets[i];
      out.Sample("pgtandem_batch_duration_seconds_bucket",
                 Labels({{"sync", key.first}, {"target", key.second}, {"le", Number(Metrics::kBatchSeconds[i])}}),
                 cumulative);
    }
    out.Sample("pgtandem_batch_duration_seconds_bucket",
               Labels({{"sync", key.first}, {"target", key.second}, {"le", "+Inf"}}), t.batches);
    std::string labels = Labels({{"sync", key.first}, {"target", key.second}});
    out.Sample("pgtandem_batch_duration_seconds_sum", labels, t.seconds_sum);
    out.Sample("pgtandem_batch_duration_seconds_count", labels, t.batches);
  }
}

}  // namespace

std::string_view ErrorKindLabel(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kUsage:
      return "usage";
    case ErrorKind::kConfig:
      return "config";
    case ErrorKind::kSource:
      return "source";
    case ErrorKind::kTarget:
      return "target";
    case ErrorKind::kState:
      return "state";
    case ErrorKind::kTimeout:
      return "timeout";
    case ErrorKind::kInternal:
      return "internal";
  }
  return "internal";
}

double Metrics::UnixNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void Metrics::AddTarget(const std::string& sync, const std::string& target) {
  std::lock_guard lock(mutex_);
  TargetCounters& t = targets_[{sync, target}];
  for (ErrorKind kind : {ErrorKind::kSource, ErrorKind::kTarget, ErrorKind::kState, ErrorKind::kInternal}) {
    t.errors.emplace(std::string(ErrorKindLabel(kind)), 0);
  }
}

Metrics::TargetCounters* Metrics::Find(const std::string& sync, const std::string& target) {
  auto found = targets_.find({sync, target});
  return found == targets_.end() ? nullptr : &found->second;
}

void Metrics::RemoveTarget(const std::string& sync, const std::string& target) {
  std::lock_guard lock(mutex_);
  targets_.erase({sync, target});
}

void Metrics::AddSync(const std::string& sync) {
  std::lock_guard lock(mutex_);
  sync_locks_.emplace(sync, false);
}

void Metrics::RemoveSync(const std::string& sync) {
  std::lock_guard lock(mutex_);
  sync_locks_.erase(sync);
  std::erase_if(targets_, [&](const auto& entry) { return entry.first.first == sync; });
}

void Metrics::RecordBatch(const std::string& sync, const std::string& target, std::chrono::duration<double> duration,
                          int64_t rows, const std::vector<std::pair<std::string, int64_t>>& table_deltas) {
  std::lock_guard lock(mutex_);
  TargetCounters* t = Find(sync, target);
  if (!t) return;
  t->batches += 1;
  t->rows += rows;
  for (const auto& [table, deltas] : table_deltas) t->table_deltas[table] += deltas;
  size_t bucket = 0;
  while (bucket < kBatchSeconds.size() && duration.count() > kBatchSeconds[bucket]) ++bucket;
  if (bucket < kBatchSeconds.size()) t->buckets[bucket] += 1;
  t->seconds_sum += duration.count();
  t->last_batch_unix = UnixNow();
}

void Metrics::RecordError(const std::string& sync, const std::string& target, ErrorKind kind) {
  std::lock_guard lock(mutex_);
  if (TargetCounters* t = Find(sync, target)) t->errors[std::string(ErrorKindLabel(kind))] += 1;
}

void Metrics::SetLag(const std::string& sync, const std::string& target, const LagReading& lag) {
  std::lock_guard lock(mutex_);
  TargetCounters* t = Find(sync, target);
  if (!t) return;
  t->lag = lag;
  t->lag_read_unix = UnixNow();
}

void Metrics::SetNodeUp(const std::string& node, bool up) {
  std::lock_guard lock(mutex_);
  nodes_up_[node] = up;
}

void Metrics::SetSyncLockHeld(const std::string& sync, bool held) {
  std::lock_guard lock(mutex_);
  auto found = sync_locks_.find(sync);
  if (found != sync_locks_.end()) found->second = held;
}

std::string Metrics::Render() const {
  std::map<Key, TargetCounters> targets;
  std::map<std::string, bool> nodes_up, sync_locks;
  {
    std::lock_guard lock(mutex_);
    targets = targets_;
    nodes_up = nodes_up_;
    sync_locks = sync_locks_;
  }
  Exposition out;
  out.Family("pgtandem_start_time_seconds", "gauge", "When this daemon started, in seconds since the Unix epoch.");
  out.Sample("pgtandem_start_time_seconds", "", started_unix_);
  PerKey(out, "pgtandem_node_up", "node", nodes_up,
         "1 when the daemon's last attempt to use the node succeeded, 0 when it failed.");
  PerKey(out, "pgtandem_sync_lock_held", "sync", sync_locks,
         "1 when this daemon holds the sync's advisory lock on its source (status shows the daemon as running).");
  RenderLag(out, targets);
  RenderApplied(out, targets);
  RenderBatchSeconds(out, targets);
  out.Family("pgtandem_errors_total", "counter",
             "Failed sessions of a worker, by kind: source or target (a node failed), state (the databases are not "
             "in a state replication accepts), internal (a bug).");
  for (const auto& [key, t] : targets) {
    for (const auto& [kind, count] : t.errors) {
      out.Sample("pgtandem_errors_total", Labels({{"sync", key.first}, {"target", key.second}, {"kind", kind}}), count);
    }
  }
  return out.Take();
}

}  // namespace pgtandem
