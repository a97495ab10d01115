// TablePattern: the syntax of schema.table patterns and how they match.
#include "pgtandem/table_pattern.hpp"

#include <catch2/catch.hpp>

#include "pgtandem/error.hpp"

namespace pgtandem {
namespace {

bool Matches(std::string_view pattern, std::string_view schema, std::string_view name) {
  return TablePattern::Parse(pattern).Matches(schema, name);
}

TEST_CASE("TablePattern matches exact names case-sensitively") {
  CHECK(Matches("public.users", "public", "users"));
  CHECK_FALSE(Matches("public.users", "public", "Users"));
  CHECK_FALSE(Matches("public.users", "Public", "users"));
  CHECK(Matches("Billing.Invoices", "Billing", "Invoices"));
  CHECK_FALSE(Matches("Billing.Invoices", "billing", "invoices"));
  CHECK_FALSE(Matches("public.users", "public", "users2"));
  CHECK(TablePattern::Parse("Billing.Invoices").Matches(TableName{"Billing", "Invoices"}));
}

TEST_CASE("TablePattern wildcard matches any run of characters including none") {
  CHECK(Matches("public.*", "public", "anything"));
  CHECK(Matches("public.*", "public", "x"));
  CHECK_FALSE(Matches("public.*", "other", "x"));
  CHECK(Matches("*.*", "s", "t"));
  CHECK(Matches("public.user*", "public", "user"));
  CHECK(Matches("public.user*", "public", "users_archive"));
  CHECK(Matches("public.*_log", "public", "audit_log"));
  CHECK(Matches("public.*_log", "public", "_log"));
  CHECK_FALSE(Matches("public.*_log", "public", "audit_logs"));
  CHECK(Matches("public.a*b*c", "public", "aXXbYYbc"));
  CHECK_FALSE(Matches("public.a*b*c", "public", "aXXcb"));
  CHECK(Matches("tenant_*.orders", "tenant_42", "orders"));
}

TEST_CASE("TablePattern quoted parts are literal") {
  CHECK(Matches("\"my.schema\".\"Tab*le\"", "my.schema", "Tab*le"));
  CHECK_FALSE(Matches("\"my.schema\".\"Tab*le\"", "my.schema", "Table"));
  CHECK(Matches("\"my.schema\".*", "my.schema", "t"));
  CHECK(Matches("public.\"say \"\"hi\"\"\"", "public", "say \"hi\""));
  CHECK(Matches("\"Public\".t", "Public", "t"));
}

TEST_CASE("TablePattern keeps its text and knows when it is exact") {
  const auto pattern = TablePattern::Parse("\"my.schema\".\"Tab*le\"");
  CHECK(pattern.Text() == "\"my.schema\".\"Tab*le\"");
  CHECK(pattern.IsExact());
  CHECK(TablePattern::Parse("Billing.Invoices").IsExact());
  CHECK_FALSE(TablePattern::Parse("public.*").IsExact());
}

TEST_CASE("TablePattern rejects malformed text and shows the expected form") {
  REQUIRE_THROWS_WITH(TablePattern::Parse("users"),
                      Catch::Contains("table pattern 'users': there is no dot") &&
                          Catch::Contains("expected schema.table"));
  REQUIRE_THROWS_WITH(TablePattern::Parse(""), Catch::Contains("it is empty"));
  REQUIRE_THROWS_WITH(TablePattern::Parse(".users"), Catch::Contains("the schema part is empty"));
  REQUIRE_THROWS_WITH(TablePattern::Parse("public."), Catch::Contains("the table part is empty"));
  REQUIRE_THROWS_WITH(TablePattern::Parse("\"\".t"), Catch::Contains("the schema part is empty"));
  REQUIRE_THROWS_WITH(TablePattern::Parse("\"my.schema.t"),
                      Catch::Contains("the quote at position 1 is never closed"));
  REQUIRE_THROWS_WITH(TablePattern::Parse("public.\"t"),
                      Catch::Contains("the quote at position 8 is never closed"));
  REQUIRE_THROWS_WITH(
      TablePattern::Parse("db.public.users"),
      Catch::Contains("unexpected '.users' after the table") && Catch::Contains("double quotes"));
  REQUIRE_THROWS_WITH(TablePattern::Parse("\"a\".\"b\"x"),
                      Catch::Contains("unexpected 'x' after the table"));
  REQUIRE_THROWS_WITH(TablePattern::Parse("\"a\"x.b"),
                      Catch::Contains("unexpected 'x.b' after the schema"));
  REQUIRE_THROWS_WITH(TablePattern::Parse("pub\"lic\".t"),
                      Catch::Contains("the schema part has a quote inside it"));
}

TEST_CASE("TablePattern errors are config errors") {
  try {
    TablePattern::Parse("users");
    FAIL("accepted a pattern without a dot");
  } catch (const Error& e) {
    CHECK(e.Kind() == ErrorKind::kConfig);
  }
}

}  // namespace
}  // namespace pgtandem
