// Whether this daemon is the active one for a sync: it holds the sync's lock on the source.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "pgtandem/pg/connection.hpp"

namespace pgtandem {

// Opened by the sync's SyncLock while it holds the lock, closed the moment it
// loses it. Workers, listeners, purgers and sequence syncers of the sync stay
// idle while it is closed (the daemon is a standby for the sync), and a worker
// checks it again right before each batch commit. Each opening is a lease the
// lock renews after every successful round trip on its session: should that
// session hang (a dead network, where no error arrives for minutes), the gate
// closes by itself before the server drops the session and lets a standby in.
class SyncGate {
 public:
  bool Open() const { return std::chrono::steady_clock::now().time_since_epoch().count() < open_until_.load(); }
  void Renew(std::chrono::steady_clock::duration lease) {
    open_until_.store((std::chrono::steady_clock::now() + lease).time_since_epoch().count());
  }
  void Close() { open_until_.store(0); }

 private:
  std::atomic<std::chrono::steady_clock::rep> open_until_{0};
};

using SyncGates = std::vector<std::shared_ptr<const SyncGate>>;

// True when any of the gates is open.
bool AnyOpen(const SyncGates& gates);

// Returns once any of `gates` is open, or `stopping` is set; polls on `timer`
// (its owner's Stop() cancels it), often enough that a standby takes over
// well within the lock's retry interval.
pg::Awaitable<void> WaitForOpenGate(const SyncGates& gates, boost::asio::steady_timer& timer, const bool& stopping);

}  // namespace pgtandem
