// The daemon's periodic reading of each target's lag, for the metrics.
#pragma once

#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "pgtandem/config.hpp"
#include "pgtandem/log.hpp"
#include "pgtandem/metrics.hpp"
#include "pgtandem/pg/connection.hpp"

namespace pgtandem {

// Every metrics.lag_interval_ms, reads the lag and pending changes of each
// target of one sync from its source (the source's copy of each target's
// progress, and lag.hpp's bounded queries) into Metrics. It has its own
// strand and connection, and a statement timeout: a slow source delays the
// figures, never a worker, and a scrape serves the last figures read.
class LagMonitor {
 public:
  // `sync` lies in `config`, kept alive while the monitor runs.
  LagMonitor(boost::asio::any_io_executor strand, std::shared_ptr<const Config> config, const SyncConfig& sync,
             Metrics& metrics);

  pg::Awaitable<void> Run();
  void Stop();  // call on the monitor's strand
  const boost::asio::any_io_executor& Executor() const { return strand_; }

 private:
  pg::Awaitable<void> ReadOnce();

  boost::asio::any_io_executor strand_;
  std::shared_ptr<const Config> config_;
  const SyncConfig& sync_;
  Logger log_;
  Metrics& metrics_;
  pg::Connection source_;
  boost::asio::steady_timer timer_;
  bool stopping_ = false;
};

}  // namespace pgtandem
