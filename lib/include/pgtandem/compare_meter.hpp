// Progress of a long compare: a refreshed line on a terminal, periodic log lines otherwise.
#pragma once

#include <chrono>
#include <string>

#include "pgtandem/log.hpp"
#include "pgtandem/pg/connection.hpp"

namespace pgtandem {

class CompareMeter {
 public:
  CompareMeter(int tables, const Logger& log);

  void StartTable(std::string name);
  // What the current table's comparison is doing; FindCandidateKeys() writes it.
  std::string& Step() { return step_; }
  void Finish() { finished_ = true; }
  bool Finished() const { return finished_; }

  // Until Finish(): shows progress every second on a terminal, every 10 s in a log.
  pg::Awaitable<int> Run();

 private:
  std::string Line() const;
  void Tick();

  int tables_;
  int table_ = 0;
  std::string name_;
  std::string step_;
  const Logger& log_;
  bool terminal_;
  bool finished_ = false;
  bool shown_ = false;
  std::chrono::steady_clock::time_point table_started_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_shown_ = table_started_;
};

}  // namespace pgtandem
