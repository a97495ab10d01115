// Log lines: text, JSON and journal forms, each carrying sync, node and side; the rate limiter.
#include "pgtandem/log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "pgtandem/error.hpp"

namespace pgtandem {
namespace {

// 2026-11-22 13:43:16.599 UTC
const auto kNow = std::chrono::system_clock::time_point(std::chrono::milliseconds(1795354996599));
const LogContext kWorker{"app", "new", "target", ""};

// Restores the process-wide log output settings a test changed.
struct OutputGuard {
  ~OutputGuard() {
    SetLogFormat(LogFormat::kText);
    SetLogToJournal(false);
  }
};

}  // namespace

TEST_CASE("A text line has the UTC time, the level and what it is about") {
  OutputGuard guard;
  CHECK(FormatLogLine(LogLevel::kInfo, kWorker, "connected", kNow) ==
        "2026-11-22 13:43:16.599 INFO [sync app target new] connected");
  CHECK(FormatLogLine(LogLevel::kWarning, LogContext{"", "old", "source", "listener"}, "lost",
                      kNow) == "2026-11-22 13:43:16.599 WARNING [source old listener] lost");
  CHECK(FormatLogLine(LogLevel::kError, LogContext{}, "bad", kNow) == "2026-11-22 13:43:16.599 ERROR bad");
}

TEST_CASE("In the journal a line starts with its syslog priority and has no timestamp of its own") {
  OutputGuard guard;
  SetLogToJournal(true);
  CHECK(FormatLogLine(LogLevel::kError, kWorker, "down", kNow) == "<3>ERROR [sync app target new] down");
  CHECK(FormatLogLine(LogLevel::kWarning, kWorker, "slow", kNow).starts_with("<4>WARNING "));
  CHECK(FormatLogLine(LogLevel::kInfo, kWorker, "ok", kNow).starts_with("<6>INFO "));
  CHECK(FormatLogLine(LogLevel::kDebug, kWorker, "detail", kNow).starts_with("<7>DEBUG "));
  SetLogFormat(LogFormat::kJson);
  std::string line = FormatLogLine(LogLevel::kWarning, kWorker, "slow", kNow);
  REQUIRE(line.starts_with("<4>{"));
  CHECK(nlohmann::json::parse(line.substr(3))["level"] == "warning");
}

TEST_CASE("A JSON line is one object with only the fields that apply") {
  OutputGuard guard;
  SetLogFormat(LogFormat::kJson);
  auto line = nlohmann::json::parse(FormatLogLine(LogLevel::kInfo, kWorker, "applied \"batch\" 7\n", kNow));
  CHECK(line["ts"] == "2026-11-22T13:43:16.599Z");
  CHECK(line["level"] == "info");
  CHECK(line["sync"] == "app");
  CHECK(line["node"] == "new");
  CHECK(line["side"] == "target");
  CHECK(line["message"] == "applied \"batch\" 7\n");
  CHECK_FALSE(line.contains("task"));
  auto listener = nlohmann::json::parse(
      FormatLogLine(LogLevel::kDebug, LogContext{"", "old", "source", "listener"}, "up", kNow));
  CHECK_FALSE(listener.contains("sync"));
  CHECK(listener["task"] == "listener");
  CHECK(FormatLogLine(LogLevel::kInfo, kWorker, "x", kNow).find('\n') == std::string::npos);
  // A server message in another encoding must not make the line invalid JSON.
  CHECK_NOTHROW(nlohmann::json::parse(FormatLogLine(LogLevel::kError, kWorker, "caf\xe9", kNow)));
}

TEST_CASE("log.format accepts text and json only") {
  CHECK(ParseLogFormat("text") == LogFormat::kText);
  CHECK(ParseLogFormat("json") == LogFormat::kJson);
  REQUIRE_THROWS_WITH(ParseLogFormat("syslog"), Catch::Contains("use text or json"));
}

TEST_CASE("stderr is the journal only when JOURNAL_STREAM names its device and inode") {
  char path[] = "/tmp/pgtandem-log-test-XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  struct stat st {};
  REQUIRE(fstat(fd, &st) == 0);
  std::string stream = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  CHECK(JournalStreamMatches(stream.c_str(), fd));
  std::string other = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1);
  CHECK_FALSE(JournalStreamMatches(other.c_str(), fd));
  CHECK_FALSE(JournalStreamMatches(nullptr, fd));
  CHECK_FALSE(JournalStreamMatches("garbage", fd));
  close(fd);
  std::remove(path);
}

TEST_CASE("A repeated message passes once per interval and the next one counts those held back") {
  LogLimiter limiter(std::chrono::seconds(3600));
  int suppressed = -1;
  CHECK(limiter.Allow("target down", suppressed));
  CHECK(suppressed == 0);
  CHECK_FALSE(limiter.Allow("target down", suppressed));
  CHECK_FALSE(limiter.Allow("target down", suppressed));
  CHECK(limiter.Allow("source down", suppressed));
  CHECK(suppressed == 2);
  CHECK(HeldBack(2) == " (2 similar messages held back)");
  CHECK(HeldBack(0).empty());
}

}  // namespace pgtandem
