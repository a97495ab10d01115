// The daemon's Prometheus endpoint: GET /metrics over HTTP/1.1, built on Boost.Beast.
#pragma once

#include <memory>
#include <set>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "pgtandem/log.hpp"
#include "pgtandem/metrics.hpp"
#include "pgtandem/pg/connection.hpp"

namespace pgtandem {

// Serves Metrics::Render() on its own strand. A scrape reads only memory, so
// it answers at once whatever the databases do, and replication never waits
// for a scrape. Each client gets a few seconds to send its request; at most
// kMaxClients are served at once, and further connections are closed.
class MetricsServer {
 public:
  static constexpr int kMaxClients = 16;

  // Listens at once, so that an address in use stops the daemon at start:
  // throws Error(kConfig) naming metrics.listen.
  MetricsServer(boost::asio::any_io_executor strand, const std::string& listen, const Metrics& metrics);

  pg::Awaitable<void> Run();
  void Stop();  // call on the server's strand: closes the listener and every client
  const boost::asio::any_io_executor& Executor() const { return strand_; }

 private:
  using Socket = boost::asio::ip::tcp::socket;
  pg::Awaitable<void> Serve(std::shared_ptr<Socket> socket);

  boost::asio::any_io_executor strand_;
  const Metrics& metrics_;
  Logger log_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::set<std::shared_ptr<Socket>> clients_;
  bool stopping_ = false;
};

}  // namespace pgtandem
