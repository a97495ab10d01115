// Child processes a test starts and controls: the daemon under test, initdb, pg_ctl.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace pgtandem::test {

// One child process, started with posix_spawnp (argv[0] is looked up in PATH).
// stdin is /dev/null and stdout and stderr are both appended to one file, so a
// test can read everything the child said in order, even after it died. The
// child gets default signal handling and no inherited descriptors beyond 0-2,
// so a daemon under test behaves as it would under systemd. Destroying a
// still-running child kills it with SIGKILL (that PID only) and reaps it.
class ChildProcess {
 public:
  // `extra_env` entries are added to, or replace, this process's environment.
  // Throws std::system_error when the output file cannot be opened or the
  // program cannot be started.
  ChildProcess(std::vector<std::string> argv, std::filesystem::path output_file,
               std::map<std::string, std::string> extra_env = {});
  ~ChildProcess();

  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  // Movable so tests can keep children in containers; the moved-from object
  // owns nothing. Assignment is deleted: it would have to kill the old child.
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&&) = delete;

  pid_t Pid() const { return pid_; }

  // Sends `sig` to the child. Does nothing once the child has been reaped,
  // because its PID may by then belong to an unrelated process.
  void Signal(int sig);

  // The exit code if the child has exited (128 + signal number if a signal
  // killed it, as a shell reports it), std::nullopt while it runs.
  std::optional<int> TryWait();

  // Blocks until the child exits and returns what TryWait() would. Throws
  // std::runtime_error naming the command and the tail of its output if it is
  // still running after `timeout`; the child is left running.
  int Wait(std::chrono::milliseconds timeout);

  // Everything the child has written to stdout and stderr so far.
  std::string Output() const;

  // The command line, shell-quoted, for messages.
  std::string Describe() const;

 private:
  std::vector<std::string> argv_;
  std::filesystem::path output_file_;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

// What a command run to completion returned and printed (stdout and stderr
// interleaved as written).
struct RunResult {
  int exit_code;
  std::string output;
};

// Runs a command to completion. A non-zero exit is reported in the result, not
// thrown; a timeout throws (see ChildProcess::Wait) after killing the command.
RunResult Run(std::vector<std::string> argv,
              std::chrono::milliseconds timeout = std::chrono::seconds(120),
              std::map<std::string, std::string> extra_env = {});

// The last `max_lines` lines of `text`, for error messages that quote logs.
std::string LastLines(const std::string& text, std::size_t max_lines);

}  // namespace pgtandem::test
