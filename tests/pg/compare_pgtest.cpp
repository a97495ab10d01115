// compare from the command line: bad selections, definitions that differ, and a target that is not being caught up.
#include <catch2/catch.hpp>

#include "support/replication_setup.hpp"

namespace pgtandem::test {
namespace {

using Catch::Matchers::Contains;

const std::string kSchema = R"sql(
CREATE TABLE accounts (id integer PRIMARY KEY, owner text);
CREATE TABLE notes (id integer PRIMARY KEY, body text);
)sql";

RunResult Pgtandem(ReplicationSetup& setup, std::vector<std::string> args) {
  RunResult result = setup.Pgtandem(std::move(args));
  UNSCOPED_INFO(result.output);
  return result;
}

}  // namespace

TEST_CASE("compare refuses a --table pattern that selects nothing, and a source without capture", "[pg]") {
  ReplicationSetup setup("cmpargs", 1, kSchema, R"(["public.*"])");
  RunResult uninstalled = Pgtandem(setup, {"compare"});
  CHECK(uninstalled.exit_code == 6);
  CHECK_THAT(uninstalled.output, Contains("run \"pgtandem install --sync app\""));
  REQUIRE(Pgtandem(setup, {"install"}).exit_code == 0);
  RunResult nomatch = Pgtandem(setup, {"compare", "--table", "public.account"});
  CHECK(nomatch.exit_code == 2);
  CHECK_THAT(nomatch.output, Contains("--table \"public.account\" matches no table of sync 'app' (its tables: "
                                      "public.accounts, public.notes)"));
  CHECK(Pgtandem(setup, {"compare", "--target", "source"}).exit_code == 2);
  RunResult one = Pgtandem(setup, {"compare", "--table", "public.acc*"});
  CHECK(one.exit_code == 0);
  CHECK_THAT(one.output, Contains("1 table(s) compared"));
  CHECK_THAT(one.output, Contains("equal       public.accounts"));
}

TEST_CASE("a table whose definition differs on the target is reported, not compared row by row", "[pg]") {
  ReplicationSetup setup("cmpdef", 1, kSchema, R"(["public.*"])");
  REQUIRE(Pgtandem(setup, {"install"}).exit_code == 0);
  setup.Target(0).Exec("ALTER TABLE notes ADD COLUMN extra integer", kDatabase);
  RunResult result = Pgtandem(setup, {"compare"});
  CHECK(result.exit_code == 1);
  CHECK_THAT(result.output, Contains("equal       public.accounts"));
  CHECK_THAT(result.output, Contains("differs     public.notes"));
  CHECK_THAT(result.output, Contains("column \"extra\" (integer) exists only on the target"));
  RunResult repair = Pgtandem(setup, {"repair"});
  CHECK(repair.exit_code == 1);
  CHECK_THAT(repair.output, Contains("not repaired  public.notes"));
}

TEST_CASE("rows whose changes the target has not applied yet are unverified, not missing: exit 7", "[pg]") {
  ReplicationSetup setup("cmpwait", 1, kSchema, R"(["public.*"])");
  REQUIRE(Pgtandem(setup, {"install"}).exit_code == 0);
  // No daemon runs: these stay in flight.
  setup.Source().Exec("INSERT INTO accounts SELECT g, 'o' || g FROM generate_series(1, 3) g", kDatabase);
  RunResult result = Pgtandem(setup, {"compare", "--wait", "1"});
  CHECK(result.exit_code == 7);
  CHECK_THAT(result.output, Contains("unverified  public.accounts"));
  CHECK_THAT(result.output, Contains("0 missing, 0 extra, 0 different, 3 unverified"));
  CHECK_THAT(result.output, Contains("is \"pgtandem run\" running?"));
  CHECK_THAT(result.output, Contains("equal       public.notes"));
}

}  // namespace pgtandem::test
