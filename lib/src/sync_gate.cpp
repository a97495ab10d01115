// Waiting for a sync's gate while the daemon stands by.
#include "pgtandem/sync_gate.hpp"

#include <algorithm>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace pgtandem {
namespace asio = boost::asio;

namespace {
constexpr auto kGatePoll = std::chrono::milliseconds(100);
}  // namespace

bool AnyOpen(const SyncGates& gates) {
  return std::any_of(gates.begin(), gates.end(), [](const auto& gate) { return gate->Open(); });
}

pg::Awaitable<void> WaitForOpenGate(const SyncGates& gates, asio::steady_timer& timer, const bool& stopping) {
  while (!stopping && !AnyOpen(gates)) {
    timer.expires_after(kGatePoll);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

}  // namespace pgtandem
