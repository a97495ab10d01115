// LISTENs on a source and wakes the workers that read from it.
#pragma once

#include <string>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "pgtandem/config.hpp"
#include "pgtandem/log.hpp"
#include "pgtandem/pg/connection.hpp"
#include "pgtandem/target_worker.hpp"

namespace pgtandem {

// Commits reach the targets within milliseconds when the source is idle;
// while this listener is down, the workers' polling carries on alone.
class SourceListener {
 public:
  SourceListener(boost::asio::any_io_executor strand, const Config& config, std::string node,
                 std::vector<TargetWorker*> workers);

  pg::Awaitable<void> Run();
  void Stop();  // call on the listener's strand
  const boost::asio::any_io_executor& Executor() const { return strand_; }

 private:
  pg::Awaitable<void> Listen();
  void WakeWorkers();

  boost::asio::any_io_executor strand_;
  const Config& config_;
  Logger log_;
  pg::Connection connection_;
  std::vector<TargetWorker*> workers_;
  boost::asio::steady_timer retry_timer_;
  bool stopping_ = false;
};

}  // namespace pgtandem
