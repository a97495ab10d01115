// Polling with a deadline: how tests wait for a condition instead of sleeping.
#include "support/wait_until.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <thread>

namespace pgtandem::test {

namespace {
// Short enough that a test hardly waits longer than needed, long enough that a
// condition running a query does not load the server it is watching.
constexpr auto kPollInterval = std::chrono::milliseconds(20);
}  // namespace

void WaitUntil(const std::function<bool()>& condition, std::chrono::milliseconds deadline,
               std::string_view what) {
  const auto give_up_at = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    if (condition()) return;
    const auto now = std::chrono::steady_clock::now();
    if (now >= give_up_at) {
      throw std::runtime_error("timed out after " + std::to_string(deadline.count()) +
                               "ms waiting for " + std::string(what));
    }
    // Never sleep past the deadline: the last poll happens at the deadline itself.
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(kPollInterval, give_up_at - now));
  }
}

}  // namespace pgtandem::test
