// The listener loop: notifications in, wake-ups out, reconnect with backoff.
#include "pgtandem/source_listener.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "pgtandem/backoff.hpp"

namespace pgtandem {
namespace asio = boost::asio;

namespace {
// How often a quiet listener checks whether it was asked to stop.
constexpr auto kListenSlice = std::chrono::milliseconds(500);
}  // namespace

SourceListener::SourceListener(asio::any_io_executor strand, std::shared_ptr<const Config> config, std::string node,
                               std::vector<std::shared_ptr<TargetWorker>> workers)
    : strand_(strand),
      config_(std::move(config)),
      log_(LogContext{"", node, "source", "listener"}),
      connection_(strand, node, pg::Side::kSource, config_->Node(node).dsn,
                  std::chrono::seconds(config_->daemon.connect_timeout_s), std::chrono::seconds(config_->daemon.io_timeout_s)),
      retry_timer_(strand) {
  SetWorkers(std::move(workers));
}

void SourceListener::SetWorkers(std::vector<std::shared_ptr<TargetWorker>> workers) {
  workers_ = std::move(workers);
  gates_.clear();
  for (const auto& worker : workers_) gates_.push_back(worker->Gate());
}

void SourceListener::Stop() {
  stopping_ = true;
  retry_timer_.cancel();
}

void SourceListener::WakeWorkers() {
  for (const auto& worker : workers_) asio::post(worker->Executor(), [worker] { worker->Wake(); });
}

pg::Awaitable<void> SourceListener::Listen() {
  co_await connection_.Connect();
  co_await connection_.Exec(
      fmt::format("SELECT pg_catalog.pg_advisory_lock_shared({}, {})", kLockClass, kListenerLockObject));
  co_await connection_.Exec("LISTEN pgtandem");
  log_.Debug("listening for commits");
  // Anything committed while we were not listening is picked up at once.
  WakeWorkers();
  while (!stopping_ && AnyOpen(gates_)) {
    std::optional<pg::Notification> notification = co_await connection_.WaitNotification(kListenSlice);
    if (!notification) continue;
    // Drain what else arrived: one wake-up serves them all.
    while (notification) notification = co_await connection_.WaitNotification(std::chrono::milliseconds(0));
    WakeWorkers();
  }
}

pg::Awaitable<void> SourceListener::Run() {
  Backoff backoff(std::chrono::milliseconds(config_->daemon.retry_initial_ms),
                  std::chrono::milliseconds(config_->daemon.retry_max_ms));
  LogLimiter limiter;
  while (!stopping_) {
    co_await WaitForOpenGate(gates_, retry_timer_, stopping_);
    if (stopping_) break;
    std::string failure;
    try {
      co_await Listen();
    } catch (const Error& e) {
      failure = e.what();
    }
    connection_.Close();
    if (stopping_) break;
    if (failure.empty()) continue;  // this daemon stands by for every sync of the source
    auto delay = backoff.Next();
    int suppressed = 0;
    if (limiter.Allow(failure, suppressed)) {
      log_.Warning("{}; the workers poll meanwhile; retrying in {} ms{}", failure, delay.count(), HeldBack(suppressed));
    }
    retry_timer_.expires_after(delay);
    boost::system::error_code ec;
    co_await retry_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

}  // namespace pgtandem
