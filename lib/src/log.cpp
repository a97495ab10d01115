// Line-buffered logging to stderr with level filtering and rate limiting.
#include "pgtandem/log.hpp"

#include <atomic>
#include <cstdio>
#include <mutex>

#include <fmt/chrono.h>

#include "pgtandem/error.hpp"

namespace pgtandem {
namespace {

std::atomic<LogLevel> g_level{LogLevel::kInfo};
std::mutex g_write_mutex;

std::string_view LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "DEBUG";
    case LogLevel::kInfo: return "INFO";
    case LogLevel::kWarning: return "WARNING";
    case LogLevel::kError: return "ERROR";
  }
  return "INFO";
}

}  // namespace

LogLevel ParseLogLevel(std::string_view text) {
  if (text == "debug") return LogLevel::kDebug;
  if (text == "info") return LogLevel::kInfo;
  if (text == "warning") return LogLevel::kWarning;
  if (text == "error") return LogLevel::kError;
  throw Error(ErrorKind::kConfig,
              fmt::format("invalid log level \"{}\"; use debug, info, warning or error", text));
}

void SetLogLevel(LogLevel level) { g_level = level; }

bool LogEnabled(LogLevel level) { return level >= g_level.load(); }

void WriteLogLine(LogLevel level, std::string_view prefix, std::string_view message) {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::string line = fmt::format("{:%Y-%m-%d %H:%M:%S}.{:03d} {} ", fmt::gmtime(std::chrono::system_clock::to_time_t(now)),
                                 ms, LevelName(level));
  if (!prefix.empty()) line += fmt::format("[{}] ", prefix);
  line += message;
  line += '\n';
  std::lock_guard lock(g_write_mutex);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

bool LogLimiter::Allow(std::string_view message, int& suppressed) {
  auto now = std::chrono::steady_clock::now();
  if (message != last_message_ || now - last_time_ >= interval_) {
    suppressed = suppressed_;
    suppressed_ = 0;
    last_message_ = message;
    last_time_ = now;
    return true;
  }
  ++suppressed_;
  return false;
}

}  // namespace pgtandem
