// sd_notify's wire format: the message as one datagram to the socket systemd named.
#include "pgtandem/service_notifier.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <ctime>

#include <fmt/format.h>

namespace pgtandem {

ServiceNotifier::ServiceNotifier() {
  if (const char* path = std::getenv("NOTIFY_SOCKET"); path && (path[0] == '/' || path[0] == '@') && path[1]) {
    socket_path_ = path;
  }
  const char* usec = std::getenv("WATCHDOG_USEC");
  const char* pid = std::getenv("WATCHDOG_PID");
  if (!usec || (pid && std::strtoll(pid, nullptr, 10) != getpid())) return;
  long long micros = std::strtoll(usec, nullptr, 10);
  if (micros > 0) watchdog_interval_ = std::chrono::microseconds(micros / 2);
}

void ServiceNotifier::Send(std::string_view message) const {
  if (!Enabled()) return;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (socket_path_.size() >= sizeof(address.sun_path)) return;
  std::memcpy(address.sun_path, socket_path_.data(), socket_path_.size());
  // "@name" is Linux's abstract namespace: the name starts with a NUL byte and is not NUL-terminated.
  if (socket_path_[0] == '@') address.sun_path[0] = '\0';
  auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket_path_.size() +
                                       (socket_path_[0] == '@' ? 0 : 1));
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  (void)sendto(fd, message.data(), message.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&address), length);
  close(fd);
}

std::string MonotonicUsecField() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return fmt::format("MONOTONIC_USEC={}", static_cast<long long>(now.tv_sec) * 1000000 + now.tv_nsec / 1000);
}

}  // namespace pgtandem
