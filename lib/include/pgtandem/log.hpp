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
// Writes one whole line to stderr (lines from several threads never interleave).
void WriteLogLine(LogLevel level, std::string_view prefix, std::string_view message);

// A logger bound to a context such as "sync app target new".
class Logger {
 public:
  explicit Logger(std::string prefix = {}) : prefix_(std::move(prefix)) {}

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

  const std::string& Prefix() const { return prefix_; }

 private:
  template <typename... Args>
  void Write(LogLevel level, fmt::format_string<Args...> f, Args&&... args) const {
    if (!LogEnabled(level)) return;
    WriteLogLine(level, prefix_, fmt::format(f, std::forward<Args>(args)...));
  }

  std::string prefix_;
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

}  // namespace pgtandem
