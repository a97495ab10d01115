// The SQL compare builds for key ranges: buckets, filters, quoting, the bucket function chosen.
#include <catch2/catch.hpp>

#include "pgtandem/key_ranges.hpp"

namespace pgtandem {
namespace {

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

KeyLayout IntegerKey() { return KeyLayout({{"id", "integer", false, true}}); }
KeyLayout TextAndIntegerKey() { return KeyLayout({{"k ey", "text", true, false}, {"n", "integer", false, true}}); }

}  // namespace

TEST_CASE("each range is one bucket, counted as width_bucket() counts bounds; a gap between ranges skips one",
          "[unit]") {
  KeyLayout layout = IntegerKey();
  RangeSet set(layout, {{std::nullopt, KeyValue{"5"}, 0}, {KeyValue{"5"}, KeyValue{"9"}, 0}, {KeyValue{"12"}, std::nullopt, 0}});
  CHECK(set.Bucket(0) == 0);
  CHECK(set.Bucket(1) == 1);
  CHECK(set.Bucket(2) == 3);
  CHECK(set.Buckets() == "(0), (1), (3)");
  CHECK(set.BucketExpr("t") == R"(pg_catalog.width_bucket(t."id", '{"5","9","12"}'::integer[]))");
  // Adjacent ranges merge into one interval, so that an index serves the filter.
  CHECK(set.Filter("t") == R"(((t."id" < '9'::integer) OR (t."id" >= '12'::integer)))");
}

TEST_CASE("a composite or text key is ordered byte-wise and bucketed by a decision tree", "[unit]") {
  KeyLayout layout = TextAndIntegerKey();
  CHECK(layout.Expr("t") == R"(ROW(t."k ey" COLLATE "C", t."n"))");
  CHECK(layout.Literal({"it's", "3"}) == R"(ROW('it''s'::text, '3'::integer))");
  CHECK(layout.OrderBy("t") == R"(t."k ey" COLLATE "C", t."n")");
  CHECK(layout.Display({"a, b", "3"}) == "(k ey, n)=(a, b, 3)");
  RangeSet set(layout, {{std::nullopt, KeyValue{"m", "1"}, 0}, {KeyValue{"m", "1"}, std::nullopt, 0}});
  CHECK(set.BucketExpr("t") ==
        R"(CASE WHEN ROW(t."k ey" COLLATE "C", t."n") < ROW('m'::text, '1'::integer) THEN 0 ELSE 1 END)");
  CHECK(set.Filter("t") == "(true)");
}

TEST_CASE("keys travel as one text[] parameter per column and are cast back to their types", "[unit]") {
  KeyLayout layout = TextAndIntegerKey();
  CHECK(layout.KeysFrom(2) ==
        "ROWS FROM (pg_catalog.unnest($2::text[]), pg_catalog.unnest($3::text[])) WITH ORDINALITY AS k(c0, c1, ord)");
  pg::Params params = layout.KeyParams({{"a\"b", "1"}, {"c", "2"}});
  REQUIRE(params.size() == 2);
  CHECK(*params[0] == R"({"a\"b","c"})");
  CHECK(*params[1] == R"({"1","2"})");
  CHECK(layout.MatchesKeys("d") == R"(d."k ey" = k.c0::text AND d."n" = k.c1::integer)");
  CHECK_THAT(layout.KeysOrder(), StartsWith(R"(k.c0::text COLLATE "C")"));
  CHECK_THAT(SplitPointsSql(RangeSet(layout, {KeyRange{}}), CapturedTable{}, {{0, 1000}}),
             Contains("(w.n - 1) % w.step = 0"));
}

}  // namespace pgtandem
