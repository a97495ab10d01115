// The systemd notify protocol, spoken directly: one datagram to $NOTIFY_SOCKET a message.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace pgtandem {

// What the daemon tells its service manager (sd_notify(3)): READY=1,
// RELOADING=1, STOPPING=1, WATCHDOG=1 and STATUS= lines. Our own few lines
// rather than libsystemd: a datagram on an AF_UNIX socket is the whole
// protocol, and the daemon then runs the same with or without systemd.
// Without NOTIFY_SOCKET in the environment it sends nothing.
class ServiceNotifier {
 public:
  // Reads NOTIFY_SOCKET ("/path", or "@name" for an abstract socket),
  // WATCHDOG_USEC and WATCHDOG_PID from the environment.
  ServiceNotifier();

  bool Enabled() const { return !socket_path_.empty(); }
  // How often to send WATCHDOG=1 (half of WATCHDOG_USEC); nullopt when the
  // watchdog is off or meant for another process (WATCHDOG_PID).
  std::optional<std::chrono::microseconds> WatchdogInterval() const { return watchdog_interval_; }

  // Sends one message ("READY=1\nSTATUS=..."); failures are ignored, as
  // sd_notify's are: the service manager may be gone, the daemon is not.
  void Send(std::string_view message) const;

 private:
  std::string socket_path_;
  std::optional<std::chrono::microseconds> watchdog_interval_;
};

// "MONOTONIC_USEC=...": sent with RELOADING=1, as systemd 253+ asks of Type=notify-reload services.
std::string MonotonicUsecField();

}  // namespace pgtandem
