// One io_context on a small thread pool; each worker, listener, purger and sequence syncer on its own strand.
#include "pgtandem/daemon.hpp"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <thread>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>

#include "pgtandem/lag_monitor.hpp"
#include "pgtandem/log.hpp"
#include "pgtandem/metrics.hpp"
#include "pgtandem/metrics_server.hpp"
#include "pgtandem/purger.hpp"
#include "pgtandem/sequence_syncer.hpp"
#include "pgtandem/source_listener.hpp"
#include "pgtandem/sync_lock.hpp"
#include "pgtandem/target_worker.hpp"

namespace pgtandem {
namespace asio = boost::asio;

namespace {

class Daemon {
 public:
  Daemon(const Config& config, const std::optional<std::string>& only_sync);
  int Run();

 private:
  template <typename Task>
  void Spawn(Task& task);
  void OnSignal(const boost::system::error_code& ec, int signal);
  void StopAll();
  void WaitForSignal();

  const Config& config_;
  asio::io_context io_;
  // Signal handling and shutdown bookkeeping run here, never on two threads at once.
  asio::strand<asio::io_context::executor_type> control_;
  asio::signal_set signals_;
  Logger log_{"daemon"};
  Metrics metrics_;
  std::vector<std::unique_ptr<TargetWorker>> workers_;
  std::vector<std::unique_ptr<SourceListener>> listeners_;
  std::vector<std::unique_ptr<Purger>> purgers_;
  std::vector<std::unique_ptr<SequenceSyncer>> sequence_syncers_;
  std::vector<std::unique_ptr<SyncLock>> sync_locks_;
  std::vector<std::unique_ptr<LagMonitor>> lag_monitors_;
  std::unique_ptr<MetricsServer> metrics_server_;  // null when metrics.listen is unset
  std::atomic<int> running_{0};
  bool stopping_ = false;
};

Daemon::Daemon(const Config& config, const std::optional<std::string>& only_sync)
    : config_(config), io_(config.daemon.threads), control_(io_.get_executor()), signals_(control_, SIGTERM, SIGINT, SIGHUP) {
  std::map<std::string, std::vector<TargetWorker*>> by_source;
  bool metrics = !config.metrics.listen.empty();
  if (metrics) metrics_server_ = std::make_unique<MetricsServer>(asio::make_strand(io_), config.metrics.listen, metrics_);
  for (const SyncConfig* sync : config.SelectSyncs(only_sync)) {
    sync_locks_.push_back(std::make_unique<SyncLock>(asio::make_strand(io_), config, *sync, metrics_));
    if (metrics) lag_monitors_.push_back(std::make_unique<LagMonitor>(asio::make_strand(io_), config, *sync, metrics_));
    for (const auto& target : sync->targets) {
      metrics_.AddTarget(sync->name, target);
      workers_.push_back(std::make_unique<TargetWorker>(asio::make_strand(io_), config, *sync, target, metrics_));
      by_source[sync->source].push_back(workers_.back().get());
      sequence_syncers_.push_back(std::make_unique<SequenceSyncer>(asio::make_strand(io_), config, *sync, target));
    }
  }
  for (auto& [node, workers] : by_source) {
    listeners_.push_back(std::make_unique<SourceListener>(asio::make_strand(io_), config, node, workers));
    purgers_.push_back(std::make_unique<Purger>(asio::make_strand(io_), config, node));
  }
}

template <typename Task>
void Daemon::Spawn(Task& task) {
  ++running_;
  asio::co_spawn(task.Executor(), task.Run(), [this](std::exception_ptr failure) {
    if (failure) {
      try {
        std::rethrow_exception(failure);
      } catch (const std::exception& e) {
        log_.Error("internal error, a task ended (please report it): {}", e.what());
      }
    }
    if (--running_ == 0) asio::post(control_, [this] { signals_.cancel(); });
  });
}

void Daemon::StopAll() {
  for (auto& w : workers_) asio::post(w->Executor(), [p = w.get()] { p->Stop(); });
  for (auto& l : listeners_) asio::post(l->Executor(), [p = l.get()] { p->Stop(); });
  for (auto& p : purgers_) asio::post(p->Executor(), [q = p.get()] { q->Stop(); });
  for (auto& s : sequence_syncers_) asio::post(s->Executor(), [q = s.get()] { q->Stop(); });
  for (auto& l : sync_locks_) asio::post(l->Executor(), [q = l.get()] { q->Stop(); });
  for (auto& m : lag_monitors_) asio::post(m->Executor(), [q = m.get()] { q->Stop(); });
  if (metrics_server_) asio::post(metrics_server_->Executor(), [q = metrics_server_.get()] { q->Stop(); });
}

void Daemon::OnSignal(const boost::system::error_code& ec, int signal) {
  if (ec) return;
  if (signal == SIGHUP) {
    log_.Warning("SIGHUP received: reloading the configuration is not supported yet (issue #8); restart the daemon "
                 "to apply a changed configuration");
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

int Daemon::Run() {
  log_.Info("starting: {} worker(s) for {} source(s), {} thread(s)", workers_.size(), listeners_.size(),
            config_.daemon.threads);
  for (auto& w : workers_) Spawn(*w);
  for (auto& l : listeners_) Spawn(*l);
  for (auto& p : purgers_) Spawn(*p);
  for (auto& s : sequence_syncers_) Spawn(*s);
  for (auto& l : sync_locks_) Spawn(*l);
  for (auto& m : lag_monitors_) Spawn(*m);
  if (metrics_server_) Spawn(*metrics_server_);
  asio::post(control_, [this] { WaitForSignal(); });
  std::vector<std::thread> threads;
  for (int i = 1; i < config_.daemon.threads; ++i) threads.emplace_back([this] { io_.run(); });
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
