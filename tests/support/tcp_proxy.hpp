// A loopback TCP proxy a test can freeze: bytes stop moving, every socket stays open.
#pragma once

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "support/port_lock.hpp"

namespace pgtandem::test {

// Listens on 127.0.0.1:Port() and forwards each connection to
// 127.0.0.1:target_port, one thread per connection. Freeze() stops moving
// bytes on every connection, old and new, without closing any: the
// kernel on both sides still acknowledges and answers keepalives, as a
// stalled NAT, firewall or cloud load balancer would. Thaw() resumes; a
// side closed meanwhile is then closed on the other side too.
class TcpProxy {
 public:
  explicit TcpProxy(int target_port);
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  int Port() const { return port_.Port(); }
  void Freeze() { frozen_ = true; }
  void Thaw() { frozen_ = false; }
  // Connections accepted so far.
  int Accepted() const { return accepted_; }

 private:
  void AcceptLoop();
  void Pump(int client);
  // Copies what `from` has to `to`; false once `from` is closed or failed.
  bool Forward(int from, int to);
  void Track(int fd);

  PortLock port_;
  int target_port_;
  int listener_ = -1;
  std::atomic<bool> frozen_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<int> accepted_{0};
  std::mutex mutex_;
  std::vector<int> sockets_;  // open connection sockets, shut down on destruction
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

}  // namespace pgtandem::test
