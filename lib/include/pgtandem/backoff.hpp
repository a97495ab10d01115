// Capped exponential backoff with jitter, for reconnects and lock retries.
#pragma once

#include <chrono>
#include <random>

namespace pgtandem {

// Doubles the delay after each failure up to a cap, and draws the actual sleep
// uniformly from [delay/2, delay] ("equal jitter"): many daemons retrying a
// node that came back do not all knock at the same instant, and a retry never
// waits longer than the cap.
class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds cap);

  std::chrono::milliseconds Next();
  void Reset() { current_ = initial_; }

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds cap_;
  std::chrono::milliseconds current_;
  std::mt19937 random_;
};

}  // namespace pgtandem
