// Log lines for the journal: every line says which sync, node and side it is about.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace pgtandem {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

// Parses "debug" | "info" | "warning" | "error"; throws Error(kConfig) otherwise.
LogLevel ParseLogLevel(std::string_view text);
void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);

// "text": "2026-11-22 13:43:16.599 INFO [sync app target new] message";
// "json": one object a line with ts, level, sync, node, side, task, message
// (keys absent when they do not apply). Throws Error(kConfig) for anything else.
enum class LogFormat { kText, kJson };
LogFormat ParseLogFormat(std::string_view text);
void SetLogFormat(LogFormat format);

// True when stderr is connected to the journal: systemd sets JOURNAL_STREAM to
// "DEVICE:INODE" of the stream it gives the service, and stderr is that stream
// (not redirected elsewhere by the unit or a shell). Lines then begin with a
// syslog priority ("<3>" error .. "<7>" debug) and carry no timestamp of
// their own: the journal stamps them.
bool JournalStreamMatches(const char* journal_stream, int fd);
void SetLogToJournal(bool journal);

// What a log line is about. Empty fields do not apply (a listener serves
// every sync of its source, so it has no sync).
struct LogContext {
  std::string sync;
  std::string node;
  std::string side;  // "source" or "target"
  std::string task;  // "lock", "listener", "purge", "sequences", "daemon", ...
};

// The line, as it would be written (without the trailing newline): for tests.
std::string FormatLogLine(LogLevel level, const LogContext& context, std::string_view message,
                          std::chrono::system_clock::time_point now);
// Writes one whole line to stderr (lines from several threads never interleave).
void WriteLogLine(LogLevel level, const LogContext& context, std::string_view message);

// A logger bound to what its lines are about.
class Logger {
 public:
  Logger() = default;
  explicit Logger(LogContext context) : context_(std::move(context)) {}

  template <typename... Args>
  void Debug(fmt::format_string<Args...> f, Args&&... args) const {
    Write(LogLevel::kDebug, f, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void Info(fmt::format_string<Args...> f, Args&&... args) const {
    Write(LogLevel::kInfo, f, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void Warning(fmt::format_string<Args...> f, Args&&... args) const {
    Write(LogLevel::kWarning, f, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void Error(fmt::format_string<Args...> f, Args&&... args) const {
    Write(LogLevel::kError, f, std::forward<Args>(args)...);
  }

  const LogContext& Context() const { return context_; }

 private:
  template <typename... Args>
  void Write(LogLevel level, fmt::format_string<Args...> f, Args&&... args) const {
    if (!LogEnabled(level)) return;
    WriteLogLine(level, context_, fmt::format(f, std::forward<Args>(args)...));
  }

  LogContext context_;
};

// Lets a repeated message through once per interval, so a dead node does not
// flood the journal; the next line that passes says how many were held back.
class LogLimiter {
 public:
  explicit LogLimiter(std::chrono::seconds interval = std::chrono::seconds(30)) : interval_(interval) {}

  // True when this occurrence should be logged; `suppressed` gets the count held back since.
  bool Allow(std::string_view message, int& suppressed);

 private:
  std::chrono::seconds interval_;
  std::string last_message_;
  std::chrono::steady_clock::time_point last_time_{};
  int suppressed_ = 0;
};

// " (N similar messages held back)", or nothing when none were: appended to a line LogLimiter let through.
std::string HeldBack(int suppressed);

}  // namespace pgtandem
