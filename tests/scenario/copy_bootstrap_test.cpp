// "bootstrap --copy": pgtandem copies the tables itself, under load, and resumes when interrupted.
#include <csignal>
#include <thread>

#include <catch2/catch.hpp>

#include "support/random_workload.hpp"
#include "support/replication_setup.hpp"
#include "support/test_seed.hpp"
#include "support/wait_until.hpp"

namespace pgtandem::test {
namespace {

using namespace std::chrono_literals;
using Catch::Matchers::Contains;

const std::string kBigSchema = R"sql(
CREATE TABLE big_a (id bigint PRIMARY KEY, payload text);
CREATE TABLE big_b (id bigint PRIMARY KEY, payload text);
CREATE TABLE big_c (id bigint PRIMARY KEY, payload text);
CREATE TABLE big_d (id bigint PRIMARY KEY, payload text);
)sql";

}  // namespace

TEST_CASE("bootstrap --copy with --jobs 4 under a concurrent write load ends equal", "[scenario]") {
  uint64_t seed = TestSeed("copy under load");
  ReplicationSetup setup("copyload", 1, kSampleSchema, kSampleTables);
  REQUIRE(setup.Pgtandem({"install"}).exit_code == 0);
  RandomWorkload load(setup.Source().Dsn(kDatabase), seed, 3);
  std::this_thread::sleep_for(3s);
  RunResult copied = setup.Pgtandem({"bootstrap", "--target", "t0", "--copy", "--jobs", "4"});
  INFO(copied.output);
  REQUIRE(copied.exit_code == 0);
  REQUIRE_THAT(copied.output, Contains("bootstrapped for sync 'app' by copy"));
  ChildProcess daemon = setup.StartDaemon();
  std::this_thread::sleep_for(3s);
  load.Stop();
  setup.WaitEqual(90s);
  RunResult again = setup.Pgtandem({"bootstrap", "--target", "t0", "--copy"});
  REQUIRE_THAT(again.output, Contains("already bootstrapped"));
}

TEST_CASE("bootstrap --copy interrupted half-way resumes table by table", "[scenario]") {
  ReplicationSetup setup("copyresume", 1, kBigSchema, R"(["public.big_*"])");
  for (const char* table : {"big_a", "big_b", "big_c", "big_d"}) {
    setup.Source().Exec(std::string("INSERT INTO ") + table +
                            " SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 400000) g",
                        kDatabase);
  }
  REQUIRE(setup.Pgtandem({"install"}).exit_code == 0);
  ChildProcess first({PgtandemBinary(), "--config", setup.ConfigPath().string(), "bootstrap", "--target", "t0",
                      "--copy", "--jobs", "1"},
                     setup.Dir() / "copy-1.log");
  auto copied_tables = [&] {
    if (setup.Target(0).Query1("SELECT to_regclass('pgtandem.copy_state') IS NOT NULL", kDatabase) != "t") return 0;
    return std::stoi(setup.Target(0).Query1("SELECT count(*) FROM pgtandem.copy_state", kDatabase));
  };
  WaitUntil([&] { return copied_tables() >= 1; }, 120s, "the first table to be copied");
  first.Signal(SIGKILL);
  first.Wait(10s);
  REQUIRE(copied_tables() < 4);
  setup.Source().Exec("UPDATE big_a SET payload = 'changed after the first copy' WHERE id % 1000 = 0", kDatabase);
  RunResult resumed = setup.Pgtandem({"bootstrap", "--target", "t0", "--copy", "--jobs", "2"});
  INFO(resumed.output);
  REQUIRE(resumed.exit_code == 0);
  REQUIRE_THAT(resumed.output, Contains("copied by an earlier, interrupted run"));
  ChildProcess daemon = setup.StartDaemon();
  setup.WaitEqual(120s);
}

TEST_CASE("bootstrap --copy builds a target table's indexes after copying it, each as it was", "[scenario]") {
  const std::string schema = R"sql(
CREATE TABLE big_a (id bigint PRIMARY KEY, payload text, code integer);
CREATE TABLE big_b (id bigint PRIMARY KEY REFERENCES big_a, payload text);
)sql";
  ReplicationSetup setup("copyindexes", 1, schema, R"(["public.big_*"])");
  setup.Target(0).Exec(R"sql(
ALTER TABLE big_a ADD CONSTRAINT big_a_code_key UNIQUE (code);
CREATE INDEX big_a_payload ON big_a (lower(payload)) WHERE code % 2 = 0;
COMMENT ON INDEX big_a_payload IS 'even codes';
)sql", kDatabase);
  setup.Source().Exec(R"sql(
ALTER TABLE big_a ADD CONSTRAINT big_a_code_key UNIQUE (code);
CREATE INDEX big_a_payload ON big_a (lower(payload)) WHERE code % 2 = 0;
INSERT INTO big_a SELECT g, md5(g::text), g FROM generate_series(1, 50000) g;
INSERT INTO big_b SELECT g, md5(g::text) FROM generate_series(1, 50000) g;
)sql", kDatabase);
  const std::string kIndexes = R"(
SELECT string_agg(format('%s %s %s', pg_get_indexdef(i.indexrelid), obj_description(i.indexrelid, 'pg_class'),
                         (SELECT string_agg(conname || ' ' || pg_get_constraintdef(oid), ', ') FROM pg_constraint
                           WHERE conindid = i.indexrelid AND conrelid = i.indrelid)),
                  E'\n' ORDER BY i.indexrelid::regclass::text)
  FROM pg_index i WHERE i.indrelid IN ('big_a'::regclass, 'big_b'::regclass))";
  auto oid = [&](const std::string& index) {
    return setup.Target(0).Query1("SELECT '" + index + "'::regclass::oid", kDatabase);
  };
  const std::string indexes_before = setup.Target(0).Query1(kIndexes, kDatabase);
  const std::string kept_before = oid("big_a_pkey");
  const std::string built_before = oid("big_a_code_key");
  REQUIRE(setup.Pgtandem({"install"}).exit_code == 0);
  RunResult copied = setup.Pgtandem({"bootstrap", "--target", "t0", "--copy"});
  INFO(copied.output);
  REQUIRE(copied.exit_code == 0);
  CHECK(setup.Target(0).Query1(kIndexes, kDatabase) == indexes_before);
  // big_a's key stays in place, since big_b's foreign key depends on it; its other indexes are built after the copy.
  CHECK(oid("big_a_pkey") == kept_before);
  CHECK(oid("big_a_code_key") != built_before);
  CHECK_THROWS(setup.Target(0).Exec("INSERT INTO big_a VALUES (50001, 'x', 1)", kDatabase));
  ChildProcess daemon = setup.StartDaemon();
  setup.Source().Exec("UPDATE big_a SET payload = 'after' WHERE id % 100 = 0", kDatabase);
  setup.WaitEqual(60s);
}

TEST_CASE("bootstrap --copy and a replayed TRUNCATE delete the rows of a table the target's role may not truncate",
          "[scenario]") {
  ReplicationSetup setup("copynotruncate", 1, kBigSchema, R"(["public.big_a"])");
  setup.Source().Exec("INSERT INTO big_a SELECT g, md5(g::text) FROM generate_series(1, 20000) g", kDatabase);
  // Rows the target holds and the source does not: the copy must empty the table first.
  setup.Target(0).Exec(R"(
INSERT INTO big_a SELECT g, 'stale' FROM generate_series(15001, 25000) g;
CREATE ROLE replicator LOGIN;
GRANT CREATE ON DATABASE app TO replicator;
GRANT SET ON PARAMETER session_replication_role TO replicator;
GRANT SELECT, INSERT, DELETE ON big_a TO replicator;
)", kDatabase);
  setup.WriteConfig(WithRole(setup.DefaultConfig(), setup.Target(0), "replicator"));
  REQUIRE(setup.Pgtandem({"install"}).exit_code == 0);
  RunResult copied = setup.Pgtandem({"bootstrap", "--target", "t0", "--copy"});
  INFO(copied.output);
  REQUIRE(copied.exit_code == 0);
  CHECK_THAT(copied.output, Contains("deleting its rows, since TRUNCATE was refused") &&
                                Contains("permission denied for table big_a"));
  CHECK(setup.Target(0).Query1("SELECT count(*) FILTER (WHERE payload = 'stale') || ' ' || count(*) FROM big_a",
                               kDatabase) == "0 20000");
  ChildProcess daemon = setup.StartDaemon();
  setup.Source().Exec("TRUNCATE big_a; INSERT INTO big_a SELECT g, 'after' FROM generate_series(1, 10) g", kDatabase);
  setup.WaitEqual(60s);
  CHECK(setup.Target(0).Query1("SELECT count(*) FROM big_a", kDatabase) == "10");
  CHECK_THAT(daemon.Output(), Contains("big_a: deleting its rows, since TRUNCATE was refused"));
}

}  // namespace pgtandem::test

namespace pgtandem::test {

TEST_CASE("bootstrap --copy --schema creates the tables, then their keys after the data", "[scenario]") {
  using namespace std::chrono_literals;
  const std::string schema = R"sql(
CREATE SCHEMA "Big Data";
CREATE TABLE "Big Data".events (id bigint PRIMARY KEY, payload text, at timestamptz DEFAULT now());
CREATE TABLE "Big Data".tags (id bigserial PRIMARY KEY, event_id bigint REFERENCES "Big Data".events, tag text);
CREATE INDEX tags_by_tag ON "Big Data".tags (tag);
)sql";
  ReplicationSetup setup("copyschema", 1, schema, R"(["Big Data.*"])", {}, true);
  setup.Source().Exec("INSERT INTO \"Big Data\".events SELECT g, md5(g::text) FROM generate_series(1, 20000) g; "
                      "INSERT INTO \"Big Data\".tags (event_id, tag) SELECT g, 't' || g % 7 FROM generate_series(1, 20000) g",
                      kDatabase);
  REQUIRE(setup.Pgtandem({"install"}).exit_code == 0);
  RunResult copied = setup.Pgtandem({"bootstrap", "--target", "t0", "--copy", "--schema"});
  INFO(copied.output);
  REQUIRE(copied.exit_code == 0);
  REQUIRE(setup.Target(0).Query1("SELECT count(*) FROM pg_indexes WHERE schemaname = 'Big Data'", kDatabase) == "3");
  REQUIRE(setup.Target(0).Query1("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'pgtandem%'", kDatabase) == "0");
  ChildProcess daemon = setup.StartDaemon();
  setup.Source().Exec("UPDATE \"Big Data\".events SET payload = 'after' WHERE id % 100 = 0", kDatabase);
  setup.WaitEqual(60s);
}

}  // namespace pgtandem::test
