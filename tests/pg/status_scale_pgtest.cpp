// status stays cheap on a large backlog: counted up to a limit, estimated from a sample beyond.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "support/replication_setup.hpp"

namespace pgtandem::test {

// PGTANDEM_STATUS_BACKLOG sets the backlog (10000000 for the figure in the
// README); the suite uses a million, which takes seconds to write.
TEST_CASE("status answers within a second on a backlog of a million deltas, marking the count an estimate", "[pg]") {
  const char* env = std::getenv("PGTANDEM_STATUS_BACKLOG");
  const int64_t backlog = env ? std::stoll(env) : 1'000'000;
  ReplicationSetup setup("backlog", 1, "CREATE TABLE items (id bigint PRIMARY KEY, note text);", R"(["public.*"])");
  REQUIRE(setup.Pgtandem({"install"}).exit_code == 0);
  // Written straight into the delta table: through the trigger, a backlog this big takes minutes to build.
  setup.Source().Exec(fmt::format("INSERT INTO pgtandem.d_1 (id) SELECT g FROM generate_series(1, {}) g", backlog),
                      "app");
  std::vector<double> seconds;
  nlohmann::json target;
  for (int run = 0; run < 3; ++run) {
    auto started = std::chrono::steady_clock::now();
    RunResult status = setup.Pgtandem({"status", "--json"});
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    INFO(status.output);
    REQUIRE(status.exit_code == 0);
    target = nlohmann::json::parse(status.output)["syncs"][0]["targets"][0];
  }
  std::sort(seconds.begin(), seconds.end());
  int64_t pending = target["pending_deltas"];
  std::printf("status with %lld pending deltas: median %.3f s, slowest %.3f s; estimated %lld (%+.1f%%)\n",
              static_cast<long long>(backlog), seconds[1], seconds[2], static_cast<long long>(pending),
              100.0 * static_cast<double>(pending - backlog) / static_cast<double>(backlog));
  REQUIRE(seconds[1] < 1.0);
  REQUIRE(target["pending_estimated"] == true);
  REQUIRE(std::abs(static_cast<double>(pending - backlog)) < 0.15 * static_cast<double>(backlog));
  REQUIRE(target["lag_seconds"].get<double>() > 0);
}

}  // namespace pgtandem::test
