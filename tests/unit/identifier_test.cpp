// Quoting of identifiers, literals and text[] values.
#include <catch2/catch.hpp>

#include "pgtandem/identifier.hpp"

namespace pgtandem {

TEST_CASE("names, literals and text arrays are quoted so no value can break out", "[unit]") {
  REQUIRE(QuoteIdent("Bill \"ing") == "\"Bill \"\"ing\"");
  REQUIRE(QuoteLiteral("it's") == "'it''s'");
  REQUIRE(TextArrayLiteral(std::vector<std::string>{"a", "b \"c\"", "d\\e"}) == R"({"a","b \"c\"","d\\e"})");
  REQUIRE(TextArrayLiteral(std::vector<std::optional<std::string>>{std::nullopt, "x"}) == R"({NULL,"x"})");
  REQUIRE(TextArrayLiteral(std::vector<std::string>{}) == "{}");
  REQUIRE(TableName{"public", "Order Lines"}.Display() == "public.\"Order Lines\"");
}

}  // namespace pgtandem
