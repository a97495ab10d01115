// Rates and ETA from rows streamed so far against the planner's row estimate.
#include "pgtandem/copy_meter.hpp"

#include <cstdio>

#include <fmt/format.h>
#include <unistd.h>

namespace pgtandem {

CopyMeter::CopyMeter(int tables, int64_t estimated_rows, const Logger& log)
    : tables_(tables), estimated_rows_(estimated_rows), log_(log), terminal_(isatty(STDERR_FILENO) != 0) {}

std::string CopyMeter::Line() const {
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  double rate = seconds > 0 ? static_cast<double>(live_.rows) / seconds : 0;
  std::string eta = "?";
  if (rate > 0 && estimated_rows_ > live_.rows) {
    eta = fmt::format("{:.0f} s", static_cast<double>(estimated_rows_ - live_.rows) / rate);
  }
  return fmt::format("copied {}/{} tables, {} of ~{} rows, {:.1f} MiB, {:.0f} rows/s, {:.1f} MiB/s, ETA {}",
                     tables_done_, tables_, live_.rows, estimated_rows_, static_cast<double>(live_.bytes) / 1048576.0,
                     rate, seconds > 0 ? static_cast<double>(live_.bytes) / 1048576.0 / seconds : 0.0, eta);
}

void CopyMeter::Tick() {
  auto now = std::chrono::steady_clock::now();
  auto every = terminal_ ? std::chrono::seconds(1) : std::chrono::seconds(10);
  if (now - last_shown_ < every) return;
  last_shown_ = now;
  if (terminal_) {
    std::fprintf(stderr, "\r%s\033[K", Line().c_str());
    std::fflush(stderr);
  } else {
    log_.Info("{}", Line());
  }
}

void CopyMeter::Finish() {
  if (terminal_) std::fputs("\r\033[K", stderr);
  log_.Info("{}", Line());
}

}  // namespace pgtandem
