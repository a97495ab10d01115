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

// Types without a hash of their own, or whose equality holds values equal
// that read differently; the rest are hashed with their type's hash function.
const std::string kValuesSchema = R"sql(
CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE TABLE vals (id integer PRIMARY KEY, n numeric, f float8, i interval, jb jsonb, j json, p point,
                   t text COLLATE ci, ts timestamptz, c char(4), b boolean, u uuid, v varchar(10));
)sql";

// The same rows on both nodes, written before capture is installed.
const std::string kValuesRows = R"sql(
INSERT INTO vals SELECT g, 1.0, 0, '1 day', '{"a": 1.0}', '{"a": 1}', '(1,2)', 'abc', '2020-01-01 00:00:00+00',
                        'ab', true, md5(g::text)::uuid, 'x'
  FROM generate_series(1, 12) g;
)sql";

// Each row but the last differs in one column from the source's, by a value
// its type's equality may hold equal to the source's.
const std::string kValuesDamage = R"sql(
SET session_replication_role = replica;
UPDATE vals SET n = 1.00 WHERE id = 1;
UPDATE vals SET f = '-0' WHERE id = 2;
UPDATE vals SET i = '24 hours' WHERE id = 3;
UPDATE vals SET jb = '{"a": 1}' WHERE id = 4;
UPDATE vals SET j = '{"a":1}' WHERE id = 5;
UPDATE vals SET p = '(1,3)' WHERE id = 6;
UPDATE vals SET t = 'ABC' WHERE id = 7;
UPDATE vals SET ts = ts + interval '1 microsecond' WHERE id = 8;
UPDATE vals SET c = 'abc' WHERE id = 9;
UPDATE vals SET b = false WHERE id = 10;
UPDATE vals SET v = NULL WHERE id = 11;
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


TEST_CASE("compare tells apart values that their types hold equal, and types without a hash of their own", "[pg]") {
  ReplicationSetup setup("cmpvals", 1, kValuesSchema, R"(["public.vals"])");
  setup.Source().Exec(kValuesRows, kDatabase);
  setup.Target(0).Exec(kValuesRows, kDatabase);
  REQUIRE(Pgtandem(setup, {"install"}).exit_code == 0);
  RunResult equal = Pgtandem(setup, {"compare"});
  CHECK(equal.exit_code == 0);
  CHECK_THAT(equal.output, Contains("equal       public.vals                    12 row(s)"));

  setup.Target(0).Exec(kValuesDamage, kDatabase);
  RunResult damaged = Pgtandem(setup, {"compare", "--examples", "20"});
  CHECK(damaged.exit_code == 1);
  CHECK_THAT(damaged.output, Contains("12 row(s): 0 missing, 0 extra, 11 different"));
  CHECK_THAT(damaged.output, Contains("different   (id)=(1), (id)=(2), (id)=(3), (id)=(4), (id)=(5), (id)=(6), "
                                      "(id)=(7), (id)=(8), (id)=(9), (id)=(10), (id)=(11)\n"));
}

}  // namespace pgtandem::test
