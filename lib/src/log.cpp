// Line-buffered logging to stderr: text or JSON lines, journal priorities, level filtering, rate limiting.
#include "pgtandem/log.hpp"

#include <sys/stat.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include <fmt/chrono.h>
#include <nlohmann/json.hpp>

#include "pgtandem/error.hpp"

namespace pgtandem {
namespace {

std::atomic<LogLevel> g_level{LogLevel::kInfo};
std::atomic<LogFormat> g_format{LogFormat::kText};
std::atomic<bool> g_journal{false};
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

std::string_view JsonLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarning: return "warning";
    case LogLevel::kError: return "error";
  }
  return "info";
}

// syslog(3) priorities: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG.
std::string_view JournalPriority(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "<7>";
    case LogLevel::kInfo: return "<6>";
    case LogLevel::kWarning: return "<4>";
    case LogLevel::kError: return "<3>";
  }
  return "<6>";
}

// "sync app target new lock": the parts that apply, in a fixed order.
std::string TextContext(const LogContext& context) {
  std::string text;
  auto add = [&text](std::string_view part) {
    if (part.empty()) return;
    if (!text.empty()) text += ' ';
    text += part;
  };
  if (!context.sync.empty()) add(fmt::format("sync {}", context.sync));
  add(context.side);
  add(context.node);
  add(context.task);
  return text;
}

std::string Timestamp(std::chrono::system_clock::time_point now, std::string_view separator) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  return fmt::format("{:%Y-%m-%d}{}{:%H:%M:%S}.{:03d}", fmt::gmtime(std::chrono::system_clock::to_time_t(now)),
                     separator, fmt::gmtime(std::chrono::system_clock::to_time_t(now)), ms);
}

std::string JsonLine(LogLevel level, const LogContext& context, std::string_view message,
                     std::chrono::system_clock::time_point now) {
  nlohmann::ordered_json line;
  line["ts"] = Timestamp(now, "T") + "Z";
  line["level"] = JsonLevelName(level);
  if (!context.sync.empty()) line["sync"] = context.sync;
  if (!context.node.empty()) line["node"] = context.node;
  if (!context.side.empty()) line["side"] = context.side;
  if (!context.task.empty()) line["task"] = context.task;
  line["message"] = message;
  // Invalid UTF-8 (a server message in another encoding) is replaced, not thrown on.
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
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

LogFormat ParseLogFormat(std::string_view text) {
  if (text == "text") return LogFormat::kText;
  if (text == "json") return LogFormat::kJson;
  throw Error(ErrorKind::kConfig, fmt::format("invalid log format \"{}\"; use text or json", text));
}

void SetLogFormat(LogFormat format) { g_format = format; }

bool JournalStreamMatches(const char* journal_stream, int fd) {
  if (journal_stream == nullptr) return false;
  unsigned long long device = 0, inode = 0;
  if (std::sscanf(journal_stream, "%llu:%llu", &device, &inode) != 2) return false;
  struct stat st {};
  if (fstat(fd, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == device && static_cast<unsigned long long>(st.st_ino) == inode;
}

void SetLogToJournal(bool journal) { g_journal = journal; }

std::string FormatLogLine(LogLevel level, const LogContext& context, std::string_view message,
                          std::chrono::system_clock::time_point now) {
  const bool journal = g_journal.load();
  std::string line = journal ? std::string(JournalPriority(level)) : std::string();
  if (g_format.load() == LogFormat::kJson) return line + JsonLine(level, context, message, now);
  if (!journal) line += Timestamp(now, " ") + " ";
  line += LevelName(level);
  line += ' ';
  std::string about = TextContext(context);
  if (!about.empty()) line += fmt::format("[{}] ", about);
  line += message;
  return line;
}

void WriteLogLine(LogLevel level, const LogContext& context, std::string_view message) {
  std::string line = FormatLogLine(level, context, message, std::chrono::system_clock::now());
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

std::string HeldBack(int suppressed) {
  return suppressed ? fmt::format(" ({} similar messages held back)", suppressed) : std::string();
}

}  // namespace pgtandem
