// The name status looks the daemon's target session up by.
#include <catch2/catch.hpp>

#include "pgtandem/lock_wait.hpp"

namespace pgtandem {

TEST_CASE("a target session's name names its sync and target, in the ASCII and length application_name keeps", "[unit]") {
  CHECK(TargetSessionName("app", "t0") == "pgtandem sync app target t0");
  std::string long_name = TargetSessionName(std::string(60, 's'), "t0");
  CHECK(long_name.size() == 63);
  // PostgreSQL keeps only printable ASCII in application_name: the name is made so, and stored unchanged.
  CHECK(TargetSessionName("caf\xC3\xA9", "t0") == "pgtandem sync caf?? target t0");
}

}  // namespace pgtandem
