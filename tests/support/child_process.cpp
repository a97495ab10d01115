// Child processes a test starts and controls: the daemon under test, initdb, pg_ctl.
#include "support/child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "support/wait_until.hpp"

extern char** environ;

namespace pgtandem::test {

namespace {

// Signals a test process may ignore or handle (Catch2 handles SIGTERM and
// SIGINT, many programs ignore SIGPIPE) whose disposition must not leak into a
// daemon under test: ignored signals survive exec.
constexpr int kSignalsToReset[] = {SIGHUP, SIGINT,  SIGQUIT, SIGTERM, SIGPIPE,
                                   SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM};

std::string ShellQuote(const std::string& arg) {
  if (!arg.empty() && arg.find_first_of(" \t\n'\"\\$`*?;&|<>()") == std::string::npos) return arg;
  std::string quoted = "'";
  for (char c : arg) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

// Closes a descriptor on scope exit.
struct FdGuard {
  int fd;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

// posix_spawn's C structs, destroyed on scope exit.
struct SpawnSetup {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
};

std::vector<std::string> BuildEnvironment(const std::map<std::string, std::string>& extra_env) {
  std::vector<std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view var(*entry);
    if (!extra_env.contains(std::string(var.substr(0, var.find('='))))) env.emplace_back(var);
  }
  for (const auto& [name, value] : extra_env) env.push_back(name + "=" + value);
  return env;
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (auto& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

void PrepareSpawn(SpawnSetup& setup, int output_fd) {
  posix_spawn_file_actions_addopen(&setup.actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&setup.actions, output_fd, 1);
  posix_spawn_file_actions_adddup2(&setup.actions, output_fd, 2);
  // Descriptors the test holds (port locks, libpq sockets) must not outlive
  // it in a child, and a daemon must not see descriptors it did not open.
  posix_spawn_file_actions_addclosefrom_np(&setup.actions, 3);

  sigset_t mask;
  sigemptyset(&mask);
  posix_spawnattr_setsigmask(&setup.attr, &mask);
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int sig : kSignalsToReset) sigaddset(&defaults, sig);
  posix_spawnattr_setsigdefault(&setup.attr, &defaults);
  posix_spawnattr_setflags(&setup.attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

// Waits for `pid` to become reapable through a pidfd, so Wait() returns the
// moment the child exits. Returns false if pidfds are unavailable.
bool WaitWithPidfd(pid_t pid, std::chrono::steady_clock::time_point give_up_at) {
  // The raw syscall: glibc 2.36's <sys/pidfd.h> lacks extern "C" for C++.
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) return false;
  FdGuard guard{pidfd};
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        give_up_at - std::chrono::steady_clock::now());
    pollfd entry{pidfd, POLLIN, 0};
    const int ready = ::poll(&entry, 1, static_cast<int>(std::max<long long>(0, left.count())));
    if (ready >= 0 || errno != EINTR) return true;
  }
}

}  // namespace

ChildProcess::ChildProcess(std::vector<std::string> argv, std::filesystem::path output_file,
                           std::map<std::string, std::string> extra_env)
    : argv_(std::move(argv)), output_file_(std::move(output_file)) {
  if (argv_.empty()) throw std::invalid_argument("ChildProcess: empty argv");
  const int output_fd =
      ::open(output_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (output_fd < 0) {
    throw std::system_error(errno, std::generic_category(),
                            "cannot open " + output_file_.string() + " for the output of " +
                                Describe());
  }
  FdGuard output_guard{output_fd};
  SpawnSetup setup;
  PrepareSpawn(setup, output_fd);
  std::vector<std::string> args = argv_;
  std::vector<std::string> env = BuildEnvironment(extra_env);
  const int rc = posix_spawnp(&pid_, args[0].c_str(), &setup.actions, &setup.attr,
                              CStrings(args).data(), CStrings(env).data());
  if (rc != 0) {
    pid_ = -1;
    throw std::system_error(rc, std::generic_category(), "cannot start " + Describe());
  }
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : argv_(std::move(other.argv_)),
      output_file_(std::move(other.output_file_)),
      pid_(std::exchange(other.pid_, -1)),
      exit_code_(other.exit_code_) {}

ChildProcess::~ChildProcess() {
  if (pid_ <= 0 || exit_code_) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
}

void ChildProcess::Signal(int sig) {
  if (pid_ <= 0 || exit_code_) return;
  if (::kill(pid_, sig) != 0 && errno != ESRCH) {
    throw std::system_error(errno, std::generic_category(),
                            "cannot send signal " + std::to_string(sig) + " to " + Describe());
  }
}

std::optional<int> ChildProcess::TryWait() {
  if (exit_code_ || pid_ <= 0) return exit_code_;
  int status = 0;
  pid_t reaped = 0;
  do {
    reaped = ::waitpid(pid_, &status, WNOHANG);
  } while (reaped < 0 && errno == EINTR);
  if (reaped == 0) return std::nullopt;
  if (reaped < 0) {
    throw std::system_error(errno, std::generic_category(), "waitpid for " + Describe());
  }
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return exit_code_;
}

int ChildProcess::Wait(std::chrono::milliseconds timeout) {
  const auto give_up_at = std::chrono::steady_clock::now() + timeout;
  if (auto code = TryWait()) return *code;
  if (WaitWithPidfd(pid_, give_up_at)) {
    if (auto code = TryWait()) return *code;
  } else {
    try {
      WaitUntil([this] { return TryWait().has_value(); }, timeout, "child exit");
      return *exit_code_;
    } catch (const std::runtime_error&) {
      // Rethrown below with the command and its output.
    }
  }
  throw std::runtime_error("timed out after " + std::to_string(timeout.count()) +
                           "ms waiting for `" + Describe() + "` (pid " + std::to_string(pid_) +
                           ") to exit; last output (" + output_file_.string() + "):\n" +
                           LastLines(Output(), 30));
}

std::string ChildProcess::Output() const { return ReadFile(output_file_); }

std::string ChildProcess::Describe() const {
  std::string line;
  for (const auto& arg : argv_) line += (line.empty() ? "" : " ") + ShellQuote(arg);
  return line;
}

RunResult Run(std::vector<std::string> argv, std::chrono::milliseconds timeout,
              std::map<std::string, std::string> extra_env) {
  std::string pattern = (std::filesystem::temp_directory_path() / "pgtandem-run-XXXXXX").string();
  const int fd = ::mkstemp(pattern.data());
  if (fd < 0) {
    throw std::system_error(errno, std::generic_category(), "cannot create " + pattern);
  }
  ::close(fd);
  // Removes the output file however Run() leaves, after the child is reaped.
  struct Remover {
    std::filesystem::path path;
    ~Remover() {
      std::error_code ignored;
      std::filesystem::remove(path, ignored);
    }
  } remover{pattern};
  ChildProcess child(std::move(argv), remover.path, std::move(extra_env));
  const int exit_code = child.Wait(timeout);
  return {exit_code, child.Output()};
}

std::string LastLines(const std::string& text, std::size_t max_lines) {
  std::size_t start = text.size();
  // Skip a trailing newline so it does not count as an empty last line.
  if (start > 0 && text[start - 1] == '\n') --start;
  for (std::size_t lines = 0; start > 0; --start) {
    if (text[start - 1] == '\n' && ++lines == max_lines) break;
  }
  return text.substr(start);
}

}  // namespace pgtandem::test
