// HTTP over a raw socket, without a client library: the test speaks the protocol itself.
#include "support/http_request.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace pgtandem::test {

namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int Get() const { return fd_; }

 private:
  int fd_;
};

std::runtime_error Failure(int port, const std::string& what) {
  return std::runtime_error("HTTP to 127.0.0.1:" + std::to_string(port) + ": " + what);
}

}  // namespace

HttpResponse HttpRequest(int port, std::string_view method, std::string_view path, std::chrono::milliseconds timeout) {
  Fd socket(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(socket.Get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    throw Failure(port, std::string("cannot connect: ") + std::strerror(errno));
  }
  std::string request = std::string(method) + " " + std::string(path) +
                        " HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: pgtandem-test\r\nConnection: close\r\n\r\n";
  if (::send(socket.Get(), request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
    throw Failure(port, std::string("cannot send: ") + std::strerror(errno));
  }
  std::string received;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd ready{socket.Get(), POLLIN, 0};
    if (left.count() <= 0 || ::poll(&ready, 1, static_cast<int>(left.count())) <= 0)
      throw Failure(port, "no answer in time");
    char buffer[65536];
    ssize_t n = ::recv(socket.Get(), buffer, sizeof buffer, 0);
    if (n < 0) throw Failure(port, std::string("cannot read: ") + std::strerror(errno));
    if (n == 0) break;
    received.append(buffer, static_cast<size_t>(n));
  }
  size_t end = received.find("\r\n\r\n");
  if (received.rfind("HTTP/1.1 ", 0) != 0 || end == std::string::npos)
    throw Failure(port, "not an HTTP answer: " + received.substr(0, 200));
  return HttpResponse{std::stoi(received.substr(9, 3)), received.substr(0, end), received.substr(end + 4)};
}

std::optional<double> MetricValue(const std::string& exposition, std::string_view name, std::string_view labels) {
  std::string prefix = std::string(name) + "{" + std::string(labels) + "} ";
  for (size_t at = exposition.find(prefix); at != std::string::npos; at = exposition.find(prefix, at + 1)) {
    if (at == 0 || exposition[at - 1] == '\n') return std::stod(exposition.substr(at + prefix.size()));
  }
  return std::nullopt;
}

}  // namespace pgtandem::test
