// Free loopback ports reserved across test processes, so parallel tests never collide.
#include "support/port_lock.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace pgtandem::test {

namespace {

// Fixed, not under $TMPDIR: every test process on the host must agree on it.
constexpr const char* kLockDir = "/tmp/pgtandem-test-ports";

// Enough to get past ports held by other test processes, few enough that a
// broken lock directory fails fast.
constexpr int kAttempts = 100;

void EnsureLockDir() {
  if (::mkdir(kLockDir, 01777) == 0) {
    // Sticky and world-writable like /tmp itself (the umask stripped that), so
    // every user's tests share one registry of reserved ports.
    ::chmod(kLockDir, 01777);
  } else if (errno != EEXIST) {
    throw std::system_error(errno, std::generic_category(),
                            std::string("cannot create the port lock directory ") + kLockDir);
  }
}

bool SameFile(int fd, const std::filesystem::path& path) {
  struct stat held {};
  struct stat current {};
  return ::fstat(fd, &held) == 0 && ::stat(path.c_str(), &current) == 0 &&
         held.st_dev == current.st_dev && held.st_ino == current.st_ino;
}

// Opens and exclusively locks `path` without waiting. Returns the descriptor,
// or -1 if another process holds the lock or the file cannot be opened.
int TryLockFile(const std::filesystem::path& path, bool create) {
  for (int attempt = 0; attempt < 10; ++attempt) {
    if (create) EnsureLockDir();
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0666);
    if (fd < 0) {
      // ENOENT: the directory was removed by a releasing process; recreate it.
      if (create && errno == ENOENT) continue;
      return -1;
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      return -1;
    }
    // The previous holder removes the file before unlocking; if it did so
    // between our open() and flock(), we hold a lock nobody else can see.
    if (SameFile(fd, path)) return fd;
    ::close(fd);
    if (!create) return -1;
  }
  return -1;
}

std::string ReadNote(int fd) {
  std::string note;
  char buffer[4096];
  for (off_t offset = 0;;) {
    const ssize_t n = ::pread(fd, buffer, sizeof buffer, offset);
    if (n <= 0) return note;
    note.append(buffer, static_cast<std::size_t>(n));
    offset += n;
  }
}

// Removes the lock file while still holding the lock, then unlocks.
void Release(int fd, const std::filesystem::path& path) {
  ::unlink(path.c_str());
  ::close(fd);
  // Leaves /tmp as clean as it was; fails harmlessly while others hold ports.
  ::rmdir(kLockDir);
}

void ReclaimAbandoned(const PortLock::Reclaimer& reclaim) {
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(kLockDir, error)) {
    if (entry.path().extension() != ".lock") continue;
    const int fd = TryLockFile(entry.path(), /*create=*/false);
    if (fd < 0) continue;  // held by a live process, or already gone
    bool reclaimed = false;
    try {
      reclaimed = reclaim(ReadNote(fd));
    } catch (const std::exception&) {
      // Someone else's mess must not fail this test; a later run retries.
    }
    if (reclaimed) {
      Release(fd, entry.path());
    } else {
      ::close(fd);
    }
  }
}

int ProbeFreePort() {
  const int sock = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock < 0) throw std::system_error(errno, std::generic_category(), "socket()");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;  // the kernel picks a free port from the ephemeral range
  socklen_t len = sizeof addr;
  const bool ok = ::bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::getsockname(sock, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  const int saved_errno = errno;
  ::close(sock);
  if (!ok) {
    throw std::system_error(saved_errno, std::generic_category(), "binding 127.0.0.1:0");
  }
  return ntohs(addr.sin_port);
}

}  // namespace

PortLock::PortLock(const Reclaimer& reclaim_abandoned) {
  if (reclaim_abandoned) ReclaimAbandoned(reclaim_abandoned);
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    const int port = ProbeFreePort();
    const auto path = std::filesystem::path(kLockDir) / (std::to_string(port) + ".lock");
    const int fd = TryLockFile(path, /*create=*/true);
    if (fd < 0) continue;
    if (!ReadNote(fd).empty()) {
      // Left by a dead process and not reclaimed: keep its note for later.
      ::close(fd);
      continue;
    }
    // Another user's tests may reserve this port number after we are done.
    ::fchmod(fd, 0666);
    port_ = port;
    fd_ = fd;
    path_ = path;
    return;
  }
  throw std::runtime_error("could not reserve a free loopback port in " +
                           std::to_string(kAttempts) + " attempts; check " + kLockDir +
                           " (is it writable? are many tests running?)");
}

PortLock::~PortLock() {
  if (fd_ >= 0) Release(fd_, path_);
}

void PortLock::WriteNote(const std::string& note) {
  if (::ftruncate(fd_, 0) != 0 ||
      ::pwrite(fd_, note.data(), note.size(), 0) != static_cast<ssize_t>(note.size())) {
    throw std::system_error(errno, std::generic_category(), "writing " + path_.string());
  }
}

}  // namespace pgtandem::test
