// Which join a segment's keys get: the cost model behind catch-up speed.
#include <catch2/catch.hpp>

#include "pgtandem/key_join.hpp"

namespace pgtandem {

TEST_CASE("few keys are always probed, however small the table", "[unit]") {
  CHECK(ChooseKeyJoin(kKeysWorthAScan - 1, 1, pg::Side::kSource) == KeyJoin::kIndexProbes);
  CHECK(ChooseKeyJoin(kKeysWorthAScan - 1, 1, pg::Side::kTarget) == KeyJoin::kIndexProbes);
}

TEST_CASE("many keys on a table of few pages are matched by a scan", "[unit]") {
  CHECK(ChooseKeyJoin(250'000, 16'400, pg::Side::kSource) == KeyJoin::kTableScan);
  CHECK(ChooseKeyJoin(250'000, 16'400, pg::Side::kTarget) == KeyJoin::kTableScan);
}

TEST_CASE("a scan starts to pay sooner on the source than on the target", "[unit]") {
  // 5 keys a page: past the source's break-even (4), short of the target's (8).
  CHECK(ChooseKeyJoin(50'000, 10'000, pg::Side::kSource) == KeyJoin::kTableScan);
  CHECK(ChooseKeyJoin(50'000, 10'000, pg::Side::kTarget) == KeyJoin::kIndexProbes);
}

TEST_CASE("a big table gets probes for a batch that touches a small part of it", "[unit]") {
  CHECK(ChooseKeyJoin(250'000, 1'640'000, pg::Side::kSource) == KeyJoin::kIndexProbes);
  CHECK(ChooseKeyJoin(250'000, 1'640'000, pg::Side::kTarget) == KeyJoin::kIndexProbes);
}

TEST_CASE("the settings name every join method, so one segment's choice never leaks into the next", "[unit]") {
  for (KeyJoin join : {KeyJoin::kIndexProbes, KeyJoin::kTableScan}) {
    std::string sql = KeyJoinSettingsSql(join);
    for (const char* setting : {"enable_nestloop", "enable_hashjoin", "enable_hashagg", "enable_mergejoin"}) {
      INFO(sql);
      CHECK(sql.find(setting) != std::string::npos);
    }
  }
}

}  // namespace pgtandem
