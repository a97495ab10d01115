// Progress of a long copy: a refreshed line on a terminal, periodic log lines otherwise.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "pgtandem/log.hpp"
#include "pgtandem/pg/connection.hpp"

namespace pgtandem {

class CopyMeter {
 public:
  CopyMeter(int tables, int64_t estimated_rows, const Logger& log);

  pg::Connection::CopyStats& Live() { return live_; }
  void TableDone() { ++tables_done_; }
  // Shows progress now if it is time to: every second on a terminal, every 10 s in a log.
  void Tick();
  // The closing line.
  void Finish();

 private:
  std::string Line() const;

  int tables_;
  int tables_done_ = 0;
  int64_t estimated_rows_;
  const Logger& log_;
  bool terminal_;
  pg::Connection::CopyStats live_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_shown_ = started_;
};

}  // namespace pgtandem
