// See backoff.hpp for why the jitter is drawn from the upper half.
#include "pgtandem/backoff.hpp"

#include <algorithm>

namespace pgtandem {

Backoff::Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds cap)
    : initial_(initial), cap_(std::max(cap, initial)), current_(initial), random_(std::random_device{}()) {}

std::chrono::milliseconds Backoff::Next() {
  auto delay = current_;
  current_ = std::min(current_ * 2, cap_);
  std::uniform_int_distribution<long> draw(delay.count() / 2, delay.count());
  return std::chrono::milliseconds(draw(random_));
}

}  // namespace pgtandem
