// Plain sockets and poll(), a thread per connection: simple enough to trust in a fault test.
#include "support/tcp_proxy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <stdexcept>
#include <string>
#include <system_error>

namespace pgtandem::test {
namespace {

using namespace std::chrono_literals;

// How often a pump looks at the frozen and stopping flags.
constexpr int kTickMs = 20;

sockaddr_in Loopback(int port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

bool WriteAll(int fd, const char* data, ssize_t length) {
  while (length > 0) {
    ssize_t n = ::send(fd, data, static_cast<size_t>(length), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    length -= n;
  }
  return true;
}

}  // namespace

TcpProxy::TcpProxy(int target_port) : target_port_(target_port) {
  listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
  if (listener_ < 0) throw std::system_error(errno, std::generic_category(), "TcpProxy: socket");
  int on = 1;
  ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  sockaddr_in address = Loopback(port_.Port());
  if (::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || ::listen(listener_, 64) != 0) {
    int error = errno;
    ::close(listener_);
    throw std::system_error(error, std::generic_category(), "TcpProxy: cannot listen on port " + std::to_string(Port()));
  }
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

TcpProxy::~TcpProxy() {
  stopping_ = true;
  acceptor_.join();
  {
    std::lock_guard lock(mutex_);
    for (int fd : sockets_) ::shutdown(fd, SHUT_RDWR);  // unblocks a pump stuck in send()
  }
  for (auto& t : threads_) t.join();
  ::close(listener_);
}

void TcpProxy::Track(int fd) {
  std::lock_guard lock(mutex_);
  sockets_.push_back(fd);
}

void TcpProxy::AcceptLoop() {
  while (!stopping_) {
    pollfd p{listener_, POLLIN, 0};
    if (::poll(&p, 1, kTickMs) <= 0) continue;
    int client = ::accept(listener_, nullptr, nullptr);
    if (client < 0) continue;
    ++accepted_;
    Track(client);
    std::lock_guard lock(mutex_);
    threads_.emplace_back([this, client] { Pump(client); });
  }
}

bool TcpProxy::Forward(int from, int to) {
  char buffer[64 * 1024];
  ssize_t n = ::recv(from, buffer, sizeof buffer, 0);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
  if (n <= 0) return false;
  return WriteAll(to, buffer, n);
}

void TcpProxy::Pump(int client) {
  // A connection arriving while frozen is accepted by the kernel and then
  // hears nothing, like one whose SYN got through and nothing after.
  while (frozen_ && !stopping_) std::this_thread::sleep_for(std::chrono::milliseconds(kTickMs));
  int server = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address = Loopback(target_port_);
  bool open = server >= 0 && !stopping_ &&
              ::connect(server, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  if (server >= 0) Track(server);
  while (open && !stopping_) {
    if (frozen_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(kTickMs));
      continue;
    }
    pollfd p[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
    if (::poll(p, 2, kTickMs) <= 0) continue;
    if (p[0].revents && !Forward(client, server)) break;
    if (p[1].revents && !Forward(server, client)) break;
  }
  std::lock_guard lock(mutex_);
  for (int fd : {client, server}) {
    if (fd < 0) continue;
    ::shutdown(fd, SHUT_RDWR);
    sockets_.erase(std::remove(sockets_.begin(), sockets_.end(), fd), sockets_.end());
    ::close(fd);
  }
}

}  // namespace pgtandem::test
