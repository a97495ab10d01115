// The notify protocol: datagrams to a path or an abstract socket, the watchdog interval, silence without systemd.
#include "pgtandem/service_notifier.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <string>

namespace pgtandem {
namespace {

// Sets environment variables for one test and restores them after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// Binds a datagram socket to Linux's abstract name "@<name>".
int BindAbstract(const std::string& name) {
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path + 1, name.data(), name.size());
  auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&address), length) == 0);
  return fd;
}

std::string ReceiveOne(int fd) {
  pollfd p{fd, POLLIN, 0};
  REQUIRE(poll(&p, 1, 2000) == 1);
  char buffer[512];
  ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
  REQUIRE(n > 0);
  return std::string(buffer, static_cast<size_t>(n));
}

}  // namespace

TEST_CASE("Notifications reach an abstract NOTIFY_SOCKET, one datagram each") {
  std::string name = "pgtandem-notify-test-" + std::to_string(getpid());
  int fd = BindAbstract(name);
  ScopedEnv socket_env("NOTIFY_SOCKET", ("@" + name).c_str());
  ScopedEnv watchdog("WATCHDOG_USEC", "3000000");
  ScopedEnv pid("WATCHDOG_PID", std::to_string(getpid()).c_str());
  ServiceNotifier notifier;
  REQUIRE(notifier.Enabled());
  REQUIRE(notifier.WatchdogInterval());
  CHECK(notifier.WatchdogInterval()->count() == 1500000);
  notifier.Send("READY=1\nSTATUS=1 sync(s)");
  notifier.Send("WATCHDOG=1");
  CHECK(ReceiveOne(fd) == "READY=1\nSTATUS=1 sync(s)");
  CHECK(ReceiveOne(fd) == "WATCHDOG=1");
  close(fd);
}

TEST_CASE("Without NOTIFY_SOCKET nothing is sent, and a watchdog meant for another process is ignored") {
  ScopedEnv socket_env("NOTIFY_SOCKET", nullptr);
  ScopedEnv watchdog("WATCHDOG_USEC", "3000000");
  ScopedEnv pid("WATCHDOG_PID", "1");
  ServiceNotifier notifier;
  CHECK_FALSE(notifier.Enabled());
  CHECK_FALSE(notifier.WatchdogInterval());
  notifier.Send("READY=1");  // a no-op, not a crash
  CHECK(MonotonicUsecField().rfind("MONOTONIC_USEC=", 0) == 0);
}

}  // namespace pgtandem
