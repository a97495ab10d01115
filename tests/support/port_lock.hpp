// Free loopback ports reserved across test processes, so parallel tests never collide.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

namespace pgtandem::test {

// A TCP port that was free on 127.0.0.1 when chosen, reserved for this
// object's lifetime by an flock()ed file /tmp/pgtandem-test-ports/<port>.lock.
// The kernel picks the port (bind to port 0) and may hand the same port to
// another test process once we close the probe socket; the lock is what makes
// the other process pick again. flock() locks die with their process, so a
// crashed test never leaves a port reserved.
class PortLock {
 public:
  // A note left in a lock file by a process that died without cleaning up.
  // Returns true once whatever the note describes has been cleaned up.
  using Reclaimer = std::function<bool(const std::string& note)>;

  // Before choosing a port, hands the note of every abandoned lock file to
  // `reclaim_abandoned` and removes the file if it returns true. Lock files
  // held by live processes are never touched. Throws std::runtime_error if no
  // port could be reserved.
  explicit PortLock(const Reclaimer& reclaim_abandoned = {});
  // Unlocks and removes the lock file.
  ~PortLock();
  PortLock(const PortLock&) = delete;
  PortLock& operator=(const PortLock&) = delete;

  int Port() const { return port_; }

  // Stores a note in the lock file (PgCluster stores its temp dir), so that if
  // this process dies without cleaning up, a later one can find what it left.
  void WriteNote(const std::string& note);

 private:
  int port_ = 0;
  int fd_ = -1;
  std::filesystem::path path_;
};

}  // namespace pgtandem::test
