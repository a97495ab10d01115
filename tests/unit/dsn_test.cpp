// Dsn: validation by libpq, and that no form of output shows the password.
#include "pgtandem/dsn.hpp"

#include <catch2/catch.hpp>
#include <random>

#include "pgtandem/error.hpp"

namespace pgtandem {
namespace {

std::string RejectionOf(const std::string& conninfo) {
  try {
    Dsn dsn(conninfo);
  } catch (const Error& e) {
    CHECK(e.Kind() == ErrorKind::kConfig);
    return e.what();
  }
  FAIL("libpq accepted: " << conninfo);
  return {};
}

TEST_CASE("Dsn keeps the connection string for libpq") {
  const Dsn dsn("host=db1 port=5433 dbname=app user=migrator password=s3cret");
  CHECK(dsn.ConnInfo() == "host=db1 port=5433 dbname=app user=migrator password=s3cret");
  CHECK(dsn.Describe() == "host=db1 port=5433 dbname=app user=migrator");
}

TEST_CASE("Dsn redacts the password in keyword form") {
  CHECK(Dsn("host=db1 password=s3cret dbname=app").Redacted() ==
        "host=db1 password=*** dbname=app");
  CHECK(Dsn("password = 's3 cr\\'et' host=x").Redacted() == "password = *** host=x");
  CHECK(Dsn("password=a\\ b host=x").Redacted() == "password=*** host=x");
  CHECK(Dsn("host=db1 dbname=app").Redacted() == "host=db1 dbname=app");
  // libpq reads "password= host=x" as the password "host=x".
  CHECK(Dsn("password= host=x").Redacted() == "password= ***");
}

TEST_CASE("Dsn redacts the password in URI form") {
  CHECK(Dsn("postgresql://user:secret@host/db").Redacted() == "postgresql://user:***@host/db");
  CHECK(Dsn("postgres://u:p%40ss@h:5432/db?sslmode=require").Redacted() ==
        "postgres://u:***@h:5432/db?sslmode=require");
  CHECK(Dsn("postgresql://u@h/db?password=secret&sslmode=require").Redacted() ==
        "postgresql://u@h/db?password=***&sslmode=require");
  CHECK(Dsn("postgresql://u@h/db?sslmode=require&passw%6Frd=secret").Redacted() ==
        "postgresql://u@h/db?sslmode=require&passw%6Frd=***");
  CHECK(Dsn("postgresql://u@h/db").Redacted() == "postgresql://u@h/db");
  // libpq reads password "p" and host "w@h", but the user meant password
  // "p@w": everything up to the last '@' is masked, and Describe() agrees.
  CHECK(Dsn("postgresql://u:p@w@h/db").Redacted() == "postgresql://u:***@h/db");
  CHECK(Dsn("postgresql://u:p@w@h/db").Describe() == "host=h dbname=db user=u");
  CHECK(Dsn("postgresql://u:a/b@h/db").Redacted() == "postgresql://u:***@h/db");
}

TEST_CASE("Dsn redacts a connection string given as dbname") {
  const Dsn dsn("dbname=postgresql://u:secret@h/app connect_timeout=5");
  CHECK(dsn.Redacted() == "dbname=postgresql://u:***@h/app connect_timeout=5");
  CHECK(dsn.Describe() == "dbname=postgresql://u:***@h/app");
  const Dsn quoted("dbname='host=h password=secret'");
  CHECK(quoted.Redacted() == "dbname=***");
  CHECK(quoted.Describe().find("secret") == std::string::npos);
}

TEST_CASE("Dsn describes URIs by their decoded parts") {
  const Dsn dsn("postgresql://migrator:secret@db1.example.com:5433/app?sslmode=verify-full");
  CHECK(dsn.Describe() == "host=db1.example.com port=5433 dbname=app user=migrator");
  CHECK(Dsn("service=prod").Describe() == "service=prod");
  CHECK(Dsn("host=x dbname='my app'").Describe() == "host=x dbname='my app'");
}

TEST_CASE("Dsn empty means libpq defaults") {
  CHECK(Dsn().ConnInfo().empty());
  CHECK(Dsn().Describe() == Dsn("").Describe());
  CHECK(Dsn().Describe() == "(libpq defaults and PG* environment)");
}

TEST_CASE("Dsn rejects what libpq rejects with libpq reason") {
  REQUIRE_THROWS_WITH(Dsn("hots=db1"), Catch::Contains("invalid connection option \"hots\"") &&
                                           Catch::Contains("libpq-connect.html"));
  REQUIRE_THROWS_WITH(Dsn("host=db1 dbname"), Catch::Contains("missing \"=\" after \"dbname\""));
  REQUIRE_THROWS_WITH(Dsn("postgresql://h/db?foo=bar"),
                      Catch::Contains("invalid URI query parameter: \"foo\""));
}

TEST_CASE("Dsn errors never contain the password") {
  const std::string unquoted_space = RejectionOf("host=a password=se cret");
  CHECK(unquoted_space.find("cret") == std::string::npos);
  CHECK(unquoted_space.find("***") != std::string::npos);

  const std::string uri = RejectionOf("postgresql://u:hunter2@[::1");
  CHECK(uri.find("hunter2") == std::string::npos);
  CHECK(uri.find("postgresql://u:***@[::1") != std::string::npos);

  const std::string bad_escape = RejectionOf("postgresql://u@h/db?password=q%zzhunter");
  CHECK(bad_escape.find("hunter") == std::string::npos);

  const std::string unterminated = RejectionOf("host=a password='hunter2");
  CHECK(unterminated.find("hunter2") == std::string::npos);
  CHECK(unterminated.find("unterminated quoted string") != std::string::npos);

  const std::string quote_inside = RejectionOf("password=x\"hunter2 \"y z");
  CHECK(quote_inside.find("hunter2") == std::string::npos);
}

TEST_CASE("Dsn masks what the user meant as the password, not only what libpq read") {
  // libpq reads password "a" and a setting "b=c"; the user meant "a b=c".
  const std::string unknown_keyword = RejectionOf("host=h password=a b=c");
  CHECK(unknown_keyword.find("\"b\"") == std::string::npos);
  // A quoted value with more after it: 'x'hunter2 is one mistyped password.
  CHECK(RejectionOf("password='x'hunter2 host=h").find("hunter2") == std::string::npos);
  // An unencoded '&' in a URI password parameter.
  CHECK(RejectionOf("postgresql://u@h/db?password=ab&hunter2").find("hunter2") ==
        std::string::npos);
  // A double quote in a URI password must not confuse the scrubbing of libpq's quotes.
  CHECK(RejectionOf("postgresql://u:\"hunter2\"@[::1").find("hunter2") == std::string::npos);
}

TEST_CASE("Dsn never shows a random password in any output") {
  // Replay a failure with the seed printed below.
  const auto seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937 random(seed);
  const std::string alphabet = "abcXYZ019 '\"\\=@%/?&:[]#";
  const std::vector<std::string> templates = {
      "host=h password=%s dbname=x", "password=%s", "host=h password='%s' port=1",
      "host=h password='%s", "postgresql://u:%s@h/db", "postgresql://u:%s@[::1",
      "postgresql://u@h/db?password=%s&sslmode=require", "dbname=postgresql://u:%s@h/db"};
  for (int i = 0; i < 3000; ++i) {
    // A marker no libpq message contains, among characters that are hard to parse.
    std::string password = "Qj7Wz";
    for (int n = random() % 8; n > 0; --n) {
      const char c = alphabet[random() % alphabet.size()];
      password.insert(random() % 2 == 0 ? password.begin() : password.end(), c);
    }
    std::string text = templates[random() % templates.size()];
    text.replace(text.find("%s"), 2, password);
    std::string shown;
    try {
      const Dsn dsn(text);
      shown = dsn.Redacted() + " " + dsn.Describe();
    } catch (const Error& e) {
      shown = e.what();
    }
    INFO(text);
    REQUIRE(shown.find("Qj7Wz") == std::string::npos);
  }
}

TEST_CASE("Dsn splits off the password for a child program's environment") {
  const Dsn keywords("host=db1 password='s3 cr\\'et' dbname=app user=migrator");
  CHECK(keywords.Password() == "s3 cr'et");
  CHECK(keywords.WithoutPassword() == "user=migrator dbname=app host=db1");
  const Dsn uri("postgresql://migrator:s%40cret@db1:5433/app?sslmode=verify-full");
  CHECK(uri.Password() == "s@cret");
  CHECK(uri.WithoutPassword().find("cret") == std::string::npos);
  CHECK(uri.WithoutPassword().find("user=migrator") != std::string::npos);
  CHECK(uri.WithoutPassword().find("sslmode=verify-full") != std::string::npos);
  CHECK(Dsn("host=db1").Password().empty());
  CHECK(Dsn("host=db1").WithoutPassword() == "host=db1");
}

TEST_CASE("Dsn treats sslpassword as a secret") {
  const Dsn dsn("host=db1 sslpassword=k3yPhrase sslkey=/k");
  CHECK(dsn.Redacted() == "host=db1 sslpassword=*** sslkey=/k");
  CHECK(Dsn("postgresql://db1/app?sslpassword=k3yPhrase").Redacted() == "postgresql://db1/app?sslpassword=***");
  REQUIRE_THROWS_WITH(dsn.WithoutPassword(), Catch::Matchers::Contains("holds sslpassword") &&
                                                 !Catch::Matchers::Contains("k3yPhrase"));
}

TEST_CASE("Dsn compares by the exact string") {
  CHECK(Dsn("host=a") == Dsn("host=a"));
  CHECK_FALSE(Dsn("host=a") == Dsn("host=b"));
}

}  // namespace
}  // namespace pgtandem
