// Prints the seed so a failure can be replayed with PGTANDEM_TEST_SEED=<seed>.
#include "support/test_seed.hpp"

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

namespace pgtandem::test {

uint64_t TestSeed(std::string_view test_name) {
  uint64_t seed = 0;
  if (const char* env = std::getenv("PGTANDEM_TEST_SEED"); env && *env) {
    seed = std::stoull(env);
  } else {
    seed = (static_cast<uint64_t>(std::random_device{}()) << 32) | std::random_device{}();
  }
  std::printf("%.*s: seed %llu (replay with PGTANDEM_TEST_SEED=%llu)\n", static_cast<int>(test_name.size()),
              test_name.data(), static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  return seed;
}

}  // namespace pgtandem::test
