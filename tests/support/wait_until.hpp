// Polling with a deadline: how tests wait for a condition instead of sleeping.
#pragma once

#include <chrono>
#include <functional>
#include <string_view>

namespace pgtandem::test {

// Calls `condition` about every 20 ms until it returns true. Throws
// std::runtime_error("timed out after Nms waiting for <what>") once `deadline`
// has passed; the last poll happens at the deadline. Exceptions thrown by
// `condition` propagate unchanged.
void WaitUntil(const std::function<bool()>& condition, std::chrono::milliseconds deadline,
               std::string_view what);

}  // namespace pgtandem::test
