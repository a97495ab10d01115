// compare from the command line: bad selections, definitions that differ, and a target that is not being caught up.
#include <catch2/catch.hpp>

#include "support/replication_setup.hpp"

namespace pgtandem::test {
namespace {

using Catch::Matchers::Contains;

const std::string kSchema = R"sql(
CREATE TABLE accounts (id integer PRIMARY KEY, owner text);
CREATE TABLE notes (id integer PRIMARY KEY, body text);
CREATE TABLE tags (id integer PRIMARY KEY, tag text);
)sql";

RunResult Pgtandem(ReplicationSetup& setup, std::vector<std::string> args) {
  RunResult result = setup.Pgtandem(std::move(args));
  UNSCOPED_INFO(result.output);
  return result;
}

}  // namespace

// One pair of clusters for every step: they are what takes the time.
TEST_CASE("compare's errors, a definition that differs, and changes not applied yet (unverified, exit 7)", "[pg]") {
  ReplicationSetup setup("cmpcli", 1, kSchema, R"(["public.*"])");

  RunResult uninstalled = Pgtandem(setup, {"compare"});
  CHECK(uninstalled.exit_code == 6);
  CHECK_THAT(uninstalled.output, Contains("run \"pgtandem install --sync app\""));
  REQUIRE(Pgtandem(setup, {"install"}).exit_code == 0);
  RunResult nomatch = Pgtandem(setup, {"compare", "--table", "public.account"});
  CHECK(nomatch.exit_code == 2);
  CHECK_THAT(nomatch.output, Contains("--table \"public.account\" matches no table of sync 'app' (its tables: "
                                      "public.accounts, public.notes, public.tags)"));
  CHECK(Pgtandem(setup, {"compare", "--target", "source"}).exit_code == 2);
  RunResult one = Pgtandem(setup, {"compare", "--table", "public.acc*"});
  CHECK(one.exit_code == 0);
  CHECK_THAT(one.output, Contains("1 table(s) compared"));
  CHECK_THAT(one.output, Contains("equal       public.accounts"));

  setup.Target(0).Exec("ALTER TABLE notes ADD COLUMN extra integer", kDatabase);
  RunResult definition = Pgtandem(setup, {"compare"});
  CHECK(definition.exit_code == 1);
  CHECK_THAT(definition.output, Contains("differs     public.notes"));
  CHECK_THAT(definition.output, Contains("column \"extra\" (integer) exists only on the target"));
  RunResult repair = Pgtandem(setup, {"repair"});
  CHECK(repair.exit_code == 1);
  CHECK_THAT(repair.output, Contains("not repaired  public.notes"));
  setup.Target(0).Exec("ALTER TABLE notes DROP COLUMN extra", kDatabase);

  // No daemon runs: these stay in flight, and must not be reported missing.
  setup.Source().Exec("INSERT INTO accounts SELECT g, 'o' || g FROM generate_series(1, 3) g", kDatabase);
  RunResult waiting = Pgtandem(setup, {"compare", "--wait", "1"});
  CHECK(waiting.exit_code == 7);
  CHECK_THAT(waiting.output, Contains("unverified  public.accounts"));
  CHECK_THAT(waiting.output, Contains("0 missing, 0 extra, 0 different, 3 unverified"));
  CHECK_THAT(waiting.output, Contains("is \"pgtandem run\" running?"));
  CHECK_THAT(waiting.output, Contains("equal       public.notes"));
}

}  // namespace pgtandem::test
