// One progress line for compare: which table, what step, for how long.
#include "pgtandem/compare_meter.hpp"

#include <cstdio>

#include <fmt/format.h>
#include <unistd.h>

#include "pgtandem/async.hpp"

namespace pgtandem {
namespace {

constexpr auto kRefresh = std::chrono::milliseconds(200);

}  // namespace

CompareMeter::CompareMeter(int tables, const Logger& log)
    : tables_(tables), log_(log), terminal_(isatty(STDERR_FILENO) != 0) {}

void CompareMeter::StartTable(std::string name) {
  ++table_;
  name_ = std::move(name);
  step_.clear();
  table_started_ = std::chrono::steady_clock::now();
}

std::string CompareMeter::Line() const {
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - table_started_);
  return fmt::format("comparing table {}/{} {}: {} ({} s)", table_, tables_, name_, step_, seconds.count());
}

void CompareMeter::Tick() {
  auto now = std::chrono::steady_clock::now();
  auto every = terminal_ ? std::chrono::seconds(1) : std::chrono::seconds(10);
  if (table_ == 0 || now - last_shown_ < every) return;
  last_shown_ = now;
  if (terminal_) {
    std::fprintf(stderr, "\r%s\033[K", Line().c_str());
    std::fflush(stderr);
    shown_ = true;
  } else {
    log_.Info("{}", Line());
  }
}

pg::Awaitable<int> CompareMeter::Run() {
  while (!finished_) {
    Tick();
    co_await Sleep(kRefresh);
  }
  if (shown_) std::fputs("\r\033[K", stderr);
  co_return 0;
}

}  // namespace pgtandem
