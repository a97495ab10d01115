// Waiting for a sync's gate while the daemon stands by.
#include "pgtandem/sync_gate.hpp"

#include <algorithm>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "pgtandem/backoff.hpp"

namespace pgtandem {
namespace asio = boost::asio;

namespace {
// A daemon opens its gates within milliseconds of starting, and its workers
// should not idle a whole poll behind them; a standby that has waited longer
// polls at the cap, which stays far below the lock's retry interval.
constexpr auto kGatePollFirst = std::chrono::milliseconds(5);
constexpr auto kGatePollCap = std::chrono::milliseconds(100);
}  // namespace

bool AnyOpen(const SyncGates& gates) {
  return std::any_of(gates.begin(), gates.end(), [](const auto& gate) { return gate->Open(); });
}

pg::Awaitable<void> WaitForOpenGate(const SyncGates& gates, asio::steady_timer& timer, const bool& stopping) {
  Backoff poll(kGatePollFirst, kGatePollCap);
  while (!stopping && !AnyOpen(gates)) {
    timer.expires_after(poll.Next());
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

}  // namespace pgtandem
