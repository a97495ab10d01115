// One io_context on a small thread pool; each worker, listener, purger and sequence syncer on its own strand.
#include "pgtandem/daemon.hpp"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "pgtandem/config_reload.hpp"
#include "pgtandem/lag_monitor.hpp"
#include "pgtandem/log.hpp"
#include "pgtandem/metrics.hpp"
#include "pgtandem/metrics_server.hpp"
#include "pgtandem/purger.hpp"
#include "pgtandem/sequence_syncer.hpp"
#include "pgtandem/service_notifier.hpp"
#include "pgtandem/source_listener.hpp"
#include "pgtandem/sync_lock.hpp"
#include "pgtandem/target_worker.hpp"

namespace pgtandem {
namespace asio = boost::asio;

namespace {

// One running task, whatever its class: what the daemon needs to start,
// stop and replace it. The task object lives as long as this does, and this
// lives until the task's coroutine has ended (its completion handler holds it).
struct Task {
  asio::any_io_executor executor;
  std::shared_ptr<void> object;
  std::function<pg::Awaitable<void>()> run;
  std::function<void()> stop;  // call on the task's strand
  bool service = false;        // a lock, lag monitor or metrics server: stopped after the others
  std::function<void()> then;  // run on the control strand once the task has ended
};
using TaskPtr = std::shared_ptr<Task>;

template <typename T>
TaskPtr MakeTask(std::shared_ptr<T> object, bool service = false) {
  auto task = std::make_shared<Task>();
  task->executor = object->Executor();
  task->run = [p = object.get()] { return p->Run(); };
  task->stop = [p = object.get()] { p->Stop(); };
  task->object = std::move(object);
  task->service = service;
  return task;
}

struct TargetTasks {
  std::string fingerprint;
  std::shared_ptr<TargetWorker> worker;
  TaskPtr worker_task;
  TaskPtr sequences;
};

struct SyncTasks {
  std::shared_ptr<SyncGate> gate;
  std::string lock_fingerprint;
  TaskPtr lock;
  std::string lag_fingerprint;
  TaskPtr lag;  // null without metrics
  std::map<std::string, TargetTasks> targets;
};

struct SourceTasks {
  std::string listener_fingerprint;
  std::shared_ptr<SourceListener> listener;
  TaskPtr listener_task;
  std::string purger_fingerprint;
  TaskPtr purger;
};

class Daemon {
 public:
  Daemon(const Config& config, const std::optional<std::string>& only_sync);
  int Run();

 private:
  void Start(const TaskPtr& task);
  // Stops the task; `then` runs on the control strand once it has ended.
  void StopTask(const TaskPtr& task, std::function<void()> then = {});
  // Stops the old task (if any), then starts the new one once the old has ended.
  void Replace(const TaskPtr& old_task, const TaskPtr& new_task);
  void OnTaskEnded(const TaskPtr& task);

  // Makes the running tasks match `config`: starts what is new, stops what
  // is gone, restarts what changed. Runs on the control strand.
  void Reconcile(const std::shared_ptr<const Config>& config);
  void ReconcileSync(const std::shared_ptr<const Config>& config, const SyncConfig& sync);
  void ReconcileTarget(const std::shared_ptr<const Config>& config, const SyncConfig& sync, SyncTasks& tasks,
                       const std::string& target);
  void RemoveSync(const std::string& name);
  void ReconcileSources(const std::shared_ptr<const Config>& config);

  void Reload();
  void OnSignal(const boost::system::error_code& ec, int signal);
  void StopAll();
  void StopServicesIfIdle();
  void WaitForSignal();
  void Watchdog();
  std::string StatusLine() const;

  std::shared_ptr<const Config> config_;
  std::optional<std::string> only_sync_;
  int threads_;
  asio::io_context io_;
  // Signal handling, reloads and task bookkeeping run here, never on two threads at once.
  asio::strand<asio::io_context::executor_type> control_;
  asio::signal_set signals_;
  asio::steady_timer watchdog_;
  ServiceNotifier notifier_;
  Logger log_{LogContext{"", "", "", "daemon"}};
  Metrics metrics_;
  bool metrics_enabled_;
  std::map<std::string, SyncTasks> syncs_;
  std::map<std::string, SourceTasks> sources_;
  TaskPtr metrics_server_;  // null when metrics.listen is unset
  int running_ = 0;         // tasks not yet ended, services apart
  int services_running_ = 0;
  bool stopping_ = false;
  bool services_stopped_ = false;
  bool reconciled_ = false;  // the first configuration runs: later changes come from reloads
};

Daemon::Daemon(const Config& config, const std::optional<std::string>& only_sync)
    : config_(std::make_shared<const Config>(config)),
      only_sync_(only_sync),
      threads_(config.daemon.threads),
      io_(config.daemon.threads),
      control_(io_.get_executor()),
      signals_(control_, SIGTERM, SIGINT, SIGHUP),
      watchdog_(control_),
      metrics_enabled_(!config.metrics.listen.empty()) {
  if (metrics_enabled_) {
    metrics_server_ =
        MakeTask(std::make_shared<MetricsServer>(asio::make_strand(io_), config.metrics.listen, metrics_), true);
  }
}

void Daemon::Start(const TaskPtr& task) {
  ++(task->service ? services_running_ : running_);
  asio::co_spawn(task->executor, task->run(), [this, task](std::exception_ptr failure) {
    if (failure) {
      try {
        std::rethrow_exception(failure);
      } catch (const std::exception& e) {
        log_.Error("internal error, a task ended (please report it): {}", e.what());
      }
    }
    asio::post(control_, [this, task] { OnTaskEnded(task); });
  });
}

void Daemon::OnTaskEnded(const TaskPtr& task) {
  // The successor starts before the count drops, so the daemon never looks idle in between.
  if (task->then) std::exchange(task->then, {})();
  --(task->service ? services_running_ : running_);
  StopServicesIfIdle();
}

void Daemon::StopTask(const TaskPtr& task, std::function<void()> then) {
  task->then = std::move(then);
  asio::post(task->executor, task->stop);
}

void Daemon::Replace(const TaskPtr& old_task, const TaskPtr& new_task) {
  if (!old_task) return Start(new_task);
  StopTask(old_task, [this, new_task] {
    if (!stopping_) Start(new_task);
  });
}

// Locks go last: a sync's batch in flight must still commit under its lock.
void Daemon::StopServicesIfIdle() {
  if (!stopping_ || running_ > 0) return;
  if (!services_stopped_) {
    services_stopped_ = true;
    for (auto& [_, sync] : syncs_) {
      StopTask(sync.lock);
      if (sync.lag) StopTask(sync.lag);
    }
    if (metrics_server_) StopTask(metrics_server_);
  }
  if (services_running_ == 0) {
    signals_.cancel();
    watchdog_.cancel();
  }
}

void Daemon::ReconcileTarget(const std::shared_ptr<const Config>& config, const SyncConfig& sync, SyncTasks& tasks,
                             const std::string& target) {
  std::string fingerprint = TargetTaskFingerprint(*config, sync, target);
  auto it = tasks.targets.find(target);
  if (it != tasks.targets.end() && it->second.fingerprint == fingerprint) return;
  TargetTasks next;
  next.fingerprint = fingerprint;
  next.worker = std::make_shared<TargetWorker>(asio::make_strand(io_), config, sync, target, tasks.gate, metrics_);
  next.worker_task = MakeTask(next.worker);
  next.sequences = MakeTask(std::make_shared<SequenceSyncer>(asio::make_strand(io_), config, sync, target, tasks.gate));
  metrics_.AddTarget(sync.name, target);
  if (it == tasks.targets.end()) {
    if (reconciled_) log_.Info("reload: starting sync '{}' target '{}'", sync.name, target);
    Start(next.worker_task);
    Start(next.sequences);
    tasks.targets.emplace(target, std::move(next));
    return;
  }
  log_.Info("reload: restarting sync '{}' target '{}' (its settings or connection strings changed)", sync.name,
            target);
  Replace(it->second.worker_task, next.worker_task);
  Replace(it->second.sequences, next.sequences);
  it->second = std::move(next);
}

void Daemon::ReconcileSync(const std::shared_ptr<const Config>& config, const SyncConfig& sync) {
  auto [it, added] = syncs_.try_emplace(sync.name);
  SyncTasks& tasks = it->second;
  if (added) {
    tasks.gate = std::make_shared<SyncGate>();
    metrics_.AddSync(sync.name);
  }
  std::string lock_fingerprint = LockFingerprint(*config, sync);
  if (tasks.lock_fingerprint != lock_fingerprint) {
    if (tasks.lock) log_.Info("reload: sync '{}': the source's connection string changed; taking its lock anew", sync.name);
    TaskPtr lock = MakeTask(std::make_shared<SyncLock>(asio::make_strand(io_), config, sync, tasks.gate, metrics_), true);
    Replace(tasks.lock, lock);
    tasks.lock = lock;
    tasks.lock_fingerprint = lock_fingerprint;
  }
  for (auto target = tasks.targets.begin(); target != tasks.targets.end();) {
    if (std::find(sync.targets.begin(), sync.targets.end(), target->first) != sync.targets.end()) {
      ++target;
      continue;
    }
    log_.Info("reload: stopping sync '{}' target '{}' (no longer in the configuration): its batch in flight "
              "finishes first", sync.name, target->first);
    StopTask(target->second.worker_task);
    StopTask(target->second.sequences);
    metrics_.RemoveTarget(sync.name, target->first);
    target = tasks.targets.erase(target);
  }
  for (const auto& target : sync.targets) ReconcileTarget(config, sync, tasks, target);
  // After the targets: its readings are dropped for a target not added yet.
  std::string lag_fingerprint = LagMonitorFingerprint(*config, sync);
  if (metrics_enabled_ && tasks.lag_fingerprint != lag_fingerprint) {
    TaskPtr lag = MakeTask(std::make_shared<LagMonitor>(asio::make_strand(io_), config, sync, metrics_), true);
    Replace(tasks.lag, lag);
    tasks.lag = lag;
    tasks.lag_fingerprint = lag_fingerprint;
  }
}

// The sync's lock is released only once its workers have finished their batches in flight.
void Daemon::RemoveSync(const std::string& name) {
  SyncTasks tasks = std::move(syncs_.at(name));
  syncs_.erase(name);
  metrics_.RemoveSync(name);
  log_.Info("reload: stopping sync '{}' (no longer in the configuration): its batches in flight finish first", name);
  auto left = std::make_shared<int>(static_cast<int>(2 * tasks.targets.size()));
  auto release = [this, lock = tasks.lock, lag = tasks.lag] {
    StopTask(lock);
    if (lag) StopTask(lag);
  };
  if (*left == 0) return release();
  for (auto& [_, target] : tasks.targets) {
    for (const TaskPtr& task : {target.worker_task, target.sequences}) {
      StopTask(task, [left, release] {
        if (--*left == 0) release();
      });
    }
  }
}

void Daemon::ReconcileSources(const std::shared_ptr<const Config>& config) {
  std::map<std::string, std::vector<std::shared_ptr<TargetWorker>>> workers;
  std::map<std::string, std::vector<std::string>> sync_names;
  std::map<std::string, SyncGates> gates;
  for (const SyncConfig* sync : config->SelectSyncs(only_sync_)) {
    SyncTasks& tasks = syncs_.at(sync->name);
    for (auto& [_, target] : tasks.targets) workers[sync->source].push_back(target.worker);
    sync_names[sync->source].push_back(sync->name);
    gates[sync->source].push_back(tasks.gate);
  }
  for (auto it = sources_.begin(); it != sources_.end();) {
    if (workers.contains(it->first)) {
      ++it;
      continue;
    }
    StopTask(it->second.listener_task);
    StopTask(it->second.purger);
    it = sources_.erase(it);
  }
  for (auto& [node, node_workers] : workers) {
    SourceTasks& tasks = sources_[node];
    std::string listener_fingerprint = ListenerFingerprint(*config, node);
    if (tasks.listener_fingerprint != listener_fingerprint) {
      auto listener = std::make_shared<SourceListener>(asio::make_strand(io_), config, node, node_workers);
      TaskPtr task = MakeTask(listener);
      Replace(tasks.listener_task, task);
      tasks.listener = listener;
      tasks.listener_task = task;
      tasks.listener_fingerprint = listener_fingerprint;
    } else {
      asio::post(tasks.listener->Executor(), [listener = tasks.listener, node_workers] { listener->SetWorkers(node_workers); });
    }
    std::string purger_fingerprint = PurgerFingerprint(*config, node, sync_names[node]);
    if (tasks.purger_fingerprint != purger_fingerprint) {
      TaskPtr purger = MakeTask(std::make_shared<Purger>(asio::make_strand(io_), config, node, gates[node]));
      Replace(tasks.purger, purger);
      tasks.purger = purger;
      tasks.purger_fingerprint = purger_fingerprint;
    }
  }
}

void Daemon::Reconcile(const std::shared_ptr<const Config>& config) {
  std::vector<const SyncConfig*> selected = config->SelectSyncs(only_sync_);
  std::set<std::string> names;
  for (const SyncConfig* sync : selected) names.insert(sync->name);
  std::vector<std::string> gone;
  for (const auto& [name, _] : syncs_) {
    if (!names.contains(name)) gone.push_back(name);
  }
  for (const auto& name : gone) RemoveSync(name);
  for (const SyncConfig* sync : selected) ReconcileSync(config, *sync);
  ReconcileSources(config);
  config_ = config;
  reconciled_ = true;
}

// All or nothing: the whole new file is parsed and validated before anything changes.
void Daemon::Reload() {
  notifier_.Send("RELOADING=1\n" + MonotonicUsecField() + "\nSTATUS=reloading the configuration");
  std::optional<Config> next;
  std::string refused;
  try {
    next = LoadConfig(config_->origin);
    next->SelectSyncs(only_sync_);  // --sync must still name a sync
    ParseLogLevel(next->log.level);
    ParseLogFormat(next->log.format);
  } catch (const Error& e) {
    refused = e.what();
  }
  if (!refused.empty()) {
    log_.Error("SIGHUP: the new configuration is refused, the running one is kept unchanged: {}", refused);
    notifier_.Send("READY=1\nSTATUS=" + StatusLine() + "; the last reload was refused (see the log)");
    return;
  }
  for (const RestartOnlyChange& kept : KeepRestartOnlySettings(*config_, *next)) {
    log_.Warning("SIGHUP: {} changed from {} to {}, which takes effect only when the daemon restarts; it keeps {} "
                 "until then", kept.path, kept.running, kept.wanted, kept.running);
  }
  SetLogLevel(ParseLogLevel(next->log.level));
  SetLogFormat(ParseLogFormat(next->log.format));
  Reconcile(std::make_shared<const Config>(std::move(*next)));
  log_.Info("SIGHUP: configuration reloaded from {}: {}", config_->origin, StatusLine());
  notifier_.Send("READY=1\nSTATUS=" + StatusLine());
}

std::string Daemon::StatusLine() const {
  size_t targets = 0;
  for (const auto& [_, sync] : syncs_) targets += sync.targets.size();
  return fmt::format("{} sync(s), {} target(s), {} source(s)", syncs_.size(), targets, sources_.size());
}

void Daemon::StopAll() {
  notifier_.Send("STOPPING=1\nSTATUS=stopping: finishing the batches in flight");
  for (auto& [_, sync] : syncs_) {
    for (auto& [__, target] : sync.targets) {
      StopTask(target.worker_task);
      StopTask(target.sequences);
    }
  }
  for (auto& [_, source] : sources_) {
    StopTask(source.listener_task);
    StopTask(source.purger);
  }
  StopServicesIfIdle();
}

void Daemon::OnSignal(const boost::system::error_code& ec, int signal) {
  if (ec) return;
  if (signal == SIGHUP) {
    if (!stopping_) Reload();
  } else if (!stopping_) {
    stopping_ = true;
    log_.Info("{} received: finishing the batches in flight, then exiting (send it again to roll them back and exit "
              "at once)", signal == SIGTERM ? "SIGTERM" : "SIGINT");
    StopAll();
  } else {
    // Closing the connections makes every server roll back its open transaction.
    log_.Info("second signal received: rolling back the batches in flight and exiting now");
    std::fflush(nullptr);
    std::_Exit(0);
  }
  WaitForSignal();
}

void Daemon::WaitForSignal() {
  signals_.async_wait(
      asio::bind_executor(control_, [this](const boost::system::error_code& e, int s) { OnSignal(e, s); }));
}

// Sent from the event loop itself, so a loop that hangs stops the pings and systemd restarts the daemon.
void Daemon::Watchdog() {
  auto interval = notifier_.WatchdogInterval();
  if (!interval || (stopping_ && services_running_ == 0 && running_ == 0)) return;
  notifier_.Send("WATCHDOG=1");
  watchdog_.expires_after(*interval);
  watchdog_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) Watchdog();
  });
}

int Daemon::Run() {
  asio::post(control_, [this] {
    Reconcile(config_);
    if (metrics_server_) Start(metrics_server_);
    log_.Info("starting: {}, {} thread(s)", StatusLine(), threads_);
    // Every node is being connected to or retried from here on: ready, without waiting for slow nodes.
    notifier_.Send("READY=1\nSTATUS=" + StatusLine());
    Watchdog();
    WaitForSignal();
  });
  std::vector<std::thread> threads;
  for (int i = 1; i < threads_; ++i) threads.emplace_back([this] { io_.run(); });
  io_.run();
  for (auto& t : threads) t.join();
  log_.Info("stopped");
  return 0;
}

}  // namespace

int RunDaemon(const Config& config, const std::optional<std::string>& only_sync) {
  Daemon daemon(config, only_sync);
  return daemon.Run();
}

}  // namespace pgtandem
