// The seed of a randomized test: PGTANDEM_TEST_SEED replays one, otherwise a fresh one, always printed.
#pragma once

#include <cstdint>
#include <string_view>

namespace pgtandem::test {

uint64_t TestSeed(std::string_view test_name);

}  // namespace pgtandem::test
