// Accept loop and one coroutine per client: read a request, answer it, until the client closes.
#include "pgtandem/metrics_server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>

#include "pgtandem/config.hpp"

namespace pgtandem {
namespace asio = boost::asio;
namespace http = boost::beast::http;

namespace {

// A client that sends nothing for this long is dropped: Prometheus sends its
// request at once, and a slow or idle client must not hold a slot.
constexpr auto kIdleTimeout = std::chrono::seconds(10);
constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

Response Answer(const Request& request, const Metrics& metrics) {
  Response response;
  response.version(request.version());
  response.keep_alive(request.keep_alive());
  response.set(http::field::server, "pgtandem");
  response.set(http::field::content_type, kContentType);
  if (request.method() != http::verb::get && request.method() != http::verb::head) {
    response.result(http::status::method_not_allowed);
    response.set(http::field::allow, "GET, HEAD");
    response.body() = "only GET and HEAD are served\n";
  } else if (request.target() == "/metrics") {
    response.result(http::status::ok);
    response.body() = metrics.Render();
  } else if (request.target() == "/") {
    response.result(http::status::ok);
    response.body() = "pgtandem: metrics are at /metrics\n";
  } else {
    response.result(http::status::not_found);
    response.body() = "not found; metrics are at /metrics\n";
  }
  response.prepare_payload();
  if (request.method() == http::verb::head) response.body().clear();
  return response;
}

asio::ip::tcp::endpoint Endpoint(const std::string& listen) {
  std::optional<ListenAddress> address = ParseListenAddress(listen);
  if (!address) throw Error(ErrorKind::kConfig, fmt::format("metrics.listen '{}' is not HOST:PORT", listen));
  return {asio::ip::make_address(address->host), address->port};
}

}  // namespace

MetricsServer::MetricsServer(asio::any_io_executor strand, const std::string& listen, const Metrics& metrics)
    : strand_(strand), metrics_(metrics), log_(LogContext{"", "", "", "metrics"}), acceptor_(strand) {
  asio::ip::tcp::endpoint endpoint = Endpoint(listen);
  boost::system::error_code ec;
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    throw Error(ErrorKind::kConfig, fmt::format("metrics.listen {}: cannot listen there: {}; choose another address "
                                                "or port, or stop what uses it",
                                                listen, ec.message()));
  }
  log_.Info("serving Prometheus metrics at http://{}/metrics", listen);
}

void MetricsServer::Stop() {
  stopping_ = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  for (const auto& client : clients_) client->close(ignored);
}

pg::Awaitable<void> MetricsServer::Run() {
  while (!stopping_) {
    boost::system::error_code ec;
    Socket accepted = co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec || stopping_) continue;
    if (static_cast<int>(clients_.size()) >= kMaxClients) continue;  // `accepted` closes as it goes
    auto client = std::make_shared<Socket>(std::move(accepted));
    clients_.insert(client);
    asio::co_spawn(strand_, Serve(client), asio::detached);
  }
}

pg::Awaitable<void> MetricsServer::Serve(std::shared_ptr<Socket> socket) {
  boost::beast::flat_buffer buffer;
  asio::steady_timer idle(strand_);
  for (bool open = true; open && !stopping_;) {
    idle.expires_after(kIdleTimeout);
    idle.async_wait([socket](boost::system::error_code ec) {
      if (!ec) socket->close(ec);
    });
    Request request;
    boost::system::error_code ec;
    co_await http::async_read(*socket, buffer, request, asio::redirect_error(asio::use_awaitable, ec));
    idle.cancel();
    if (ec) break;
    Response response = Answer(request, metrics_);
    open = response.keep_alive();
    co_await http::async_write(*socket, response, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
  }
  boost::system::error_code ignored;
  socket->shutdown(Socket::shutdown_both, ignored);
  socket->close(ignored);
  clients_.erase(socket);
}

}  // namespace pgtandem
