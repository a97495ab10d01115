// Snapshot parsing and the reconstruction of a restored copy's snapshot.
#include <catch2/catch.hpp>

#include "pgtandem/xid_snapshot.hpp"

namespace pgtandem {

TEST_CASE("pg_snapshot text round-trips and answers visibility like PostgreSQL", "[unit]") {
  XidSnapshot s = XidSnapshot::Parse("100:110:104,102");
  REQUIRE(s.Text() == "100:110:102,104");
  REQUIRE(s.Visible(99));
  REQUIRE(s.Visible(103));
  REQUIRE_FALSE(s.Visible(102));
  REQUIRE_FALSE(s.Visible(110));
  REQUIRE(XidSnapshot::Parse("1:1:").Text() == "1:1:");
  REQUIRE_THROWS(XidSnapshot::Parse("1:x:"));
}

TEST_CASE("a restored copy's snapshot: concurrent and later transactions are invisible, the copy's visible",
          "[unit]") {
  // Table 1: the copy holds 100, 101, 105; 103 ran during the dump and
  // committed after it; 120 started after the dump. 107 is running now.
  std::vector<TableTxids> restored = {{1, {100, 101, 105}}, {2, {}}};
  std::vector<TableTxids> source = {{1, {100, 101, 103, 105, 120}}, {2, {104}}};
  XidSnapshot s = DeriveRestoredSnapshot(restored, source, 0, {107, 130});
  REQUIRE(s.Text() == "103:106:103,104");
  REQUIRE(s.Visible(100));
  REQUIRE(s.Visible(105));
  REQUIRE_FALSE(s.Visible(103));
  REQUIRE_FALSE(s.Visible(104));
  REQUIRE_FALSE(s.Visible(120));
  REQUIRE_FALSE(s.Visible(107));
}

TEST_CASE("without restored deltas, the purge floor of the copy bounds what it holds", "[unit]") {
  XidSnapshot empty = DeriveRestoredSnapshot({{1, {}}}, {{1, {50, 60}}}, 0, {});
  REQUIRE(empty.Text() == "1:1:");
  // Below the floor everything was purged before the dump, hence is in it.
  XidSnapshot floored = DeriveRestoredSnapshot({{1, {}}}, {{1, {50, 60}}}, 55, {});
  REQUIRE(floored.Text() == "55:55:");
  REQUIRE(floored.Visible(50));
  REQUIRE_FALSE(floored.Visible(60));
}

TEST_CASE("a recorded boundary matches the copy taken in it and no other", "[unit]") {
  std::vector<TableTxids> restored = {{1, {100, 101}}};
  std::vector<TableTxids> source = {{1, {100, 101, 103, 110}}};
  REQUIRE(BoundaryMatches(XidSnapshot::Parse("103:104:103"), restored, source, 0));
  REQUIRE_FALSE(BoundaryMatches(XidSnapshot::Parse("101:104:101"), restored, source, 0));  // copy holds 101
  REQUIRE_FALSE(BoundaryMatches(XidSnapshot::Parse("111:111:"), restored, source, 0));     // sees 103, 110
}

}  // namespace pgtandem
