// One round a lag interval: the source's copy of each target's progress, then its lag.
#include "pgtandem/lag_monitor.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "pgtandem/catalog.hpp"
#include "pgtandem/lag.hpp"
#include "pgtandem/progress.hpp"

namespace pgtandem {
namespace asio = boost::asio;

namespace {
// lag.hpp's queries take milliseconds even on a huge backlog; this only
// stops one that a sick source makes hang from piling up behind the next.
constexpr std::string_view kStatementTimeout = "SET statement_timeout = '30s'";
}  // namespace

LagMonitor::LagMonitor(asio::any_io_executor strand, std::shared_ptr<const Config> config, const SyncConfig& sync,
                       Metrics& metrics)
    : strand_(strand),
      config_(std::move(config)),
      sync_(sync),
      log_(LogContext{sync.name, sync.source, "source", "lag monitor"}),
      metrics_(metrics),
      source_(strand, sync.source, pg::Side::kSource, config_->Node(sync.source).dsn,
              std::chrono::seconds(config_->daemon.connect_timeout_s), std::chrono::seconds(config_->daemon.io_timeout_s)),
      timer_(strand) {}

void LagMonitor::Stop() {
  stopping_ = true;
  timer_.cancel();
}

pg::Awaitable<void> LagMonitor::ReadOnce() {
  if (!source_.Connected()) {
    co_await source_.Connect();
    co_await source_.Exec(kStatementTimeout);
  }
  std::vector<CapturedTable> tables = co_await LoadCapturedTables(source_, sync_.name);
  for (const auto& target : sync_.targets) {
    pg::Result copy = co_await source_.Exec(
        "SELECT applied_snapshot::text FROM pgtandem.target_progress WHERE sync = $1 AND target = $2", sync_.name,
        target);
    std::string applied = copy.Rows() > 0 ? std::string(copy.Get(0, 0)) : std::string(kBeginningSnapshot);
    LagReading lag = co_await ReadLag(source_, tables, applied);
    metrics_.SetLag(sync_.name, target, lag);
  }
  metrics_.SetNodeUp(sync_.source, true);
}

pg::Awaitable<void> LagMonitor::Run() {
  LogLimiter limiter;
  while (!stopping_) {
    std::string failure;
    try {
      co_await ReadOnce();
    } catch (const Error& e) {
      failure = e.what();
    }
    if (!failure.empty()) {
      source_.Close();
      metrics_.SetNodeUp(sync_.source, false);
      int suppressed = 0;
      if (limiter.Allow(failure, suppressed)) {
        log_.Warning("{}; the lag metrics keep their last values{}", failure, HeldBack(suppressed));
      }
    }
    timer_.expires_after(std::chrono::milliseconds(config_->metrics.lag_interval_ms));
    boost::system::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  source_.Close();
}

}  // namespace pgtandem
