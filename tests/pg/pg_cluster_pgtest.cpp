// Self-test of the throwaway-cluster harness the pg and scenario tiers rely on.
#include <catch2/catch.hpp>

#include <filesystem>

#include "support/pg_cluster.hpp"
#include "support/table_checksum.hpp"

namespace pgtandem::test {
namespace {

using Catch::Matchers::Contains;

TEST_CASE("two throwaway clusters run side by side", "[pg][harness]") {
  PgCluster source("source");
  PgCluster target("target");

  REQUIRE(source.Port() != target.Port());
  REQUIRE(source.DataDir() != target.DataDir());
  CHECK(source.Query1("SHOW port") == std::to_string(source.Port()));
  CHECK(target.Query1("SHOW port") == std::to_string(target.Port()));
  CHECK(source.Query1("SELECT current_setting('server_version_num')::int / 10000") == "15");
  CHECK(source.Query1("SHOW listen_addresses") == "127.0.0.1");
  CHECK(source.Dsn("app", "alice") ==
        "host=127.0.0.1 port=" + std::to_string(source.Port()) + " dbname=app user=alice");

  source.Exec("CREATE TABLE only_here (id int); INSERT INTO only_here VALUES (1), (2)");
  CHECK(source.Query1("SELECT count(*) FROM only_here") == "2");
  CHECK(target.Query1("SELECT to_regclass('only_here') IS NULL") == "t");
}

TEST_CASE("a cluster keeps its data across Stop and Start", "[pg][harness]") {
  PgCluster cluster("restart");
  cluster.CreateDatabase("app");
  cluster.Exec("CREATE TABLE kept (id int PRIMARY KEY); INSERT INTO kept VALUES (7)", "app");

  cluster.Stop();
  CHECK_FALSE(cluster.Running());
  CHECK_THROWS_WITH(cluster.Query1("SELECT 1"), Contains("cannot connect"));
  cluster.Stop();  // stopping a stopped server is a no-op

  cluster.Start();
  CHECK(cluster.Running());
  CHECK(cluster.Query1("SELECT id FROM kept", "app") == "7");
  CHECK_THROWS_WITH(cluster.Start(), Contains("already running"));

  // A crash, then crash recovery at start-up.
  cluster.Stop("immediate");
  cluster.Start();
  CHECK(cluster.Query1("SELECT id FROM kept", "app") == "7");
  CHECK_THAT(cluster.ServerLog(), Contains("database system was interrupted"));
}

TEST_CASE("query helpers return text and report errors with the SQL", "[pg][harness]") {
  PgCluster cluster("queries", {"work_mem = '7MB'"});

  CHECK(cluster.Query1("SHOW work_mem") == "7MB");
  CHECK(cluster.Query1("SELECT NULL") == "");
  CHECK(cluster.Query1("SELECT 1 WHERE false") == "");
  const auto rows = cluster.Query("VALUES (1, 'a'), (2, NULL)");
  REQUIRE(rows == std::vector<std::vector<std::string>>{{"1", "a"}, {"2", ""}});
  CHECK_THROWS_WITH(cluster.Exec("SELEC 1"),
                    Contains("syntax error at or near \"SELEC\"") && Contains("SQL: SELEC 1"));
  CHECK_THROWS_WITH(cluster.Exec("SELECT 1", "no_such_db"),
                    Contains("database \"no_such_db\" does not exist"));
}

TEST_CASE("a cluster that cannot start reports its server log", "[pg][harness]") {
  CHECK_THROWS_WITH(PgCluster("broken", {"shared_buffers = 'lots'"}),
                    Contains("pg_ctl start failed") &&
                        Contains("invalid value for parameter \"shared_buffers\""));
}

TEST_CASE("TableChecksum compares contents, UserTables lists what to compare", "[pg][harness]") {
  PgCluster cluster("checksum");
  cluster.CreateDatabase("a");
  cluster.CreateDatabase("b");
  const char* schema = R"sql(
      CREATE TABLE items (id int PRIMARY KEY, name text, price numeric);
      CREATE TABLE "Odd ""Name""" (id int);
      CREATE SCHEMA pgtandem;
      CREATE TABLE pgtandem.delta (id int);
      CREATE TABLE events (id int, at date) PARTITION BY RANGE (at);
      CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
  )sql";
  cluster.Exec(schema, "a");
  cluster.Exec(schema, "b");
  // Same rows, written in different orders, so their physical order differs.
  cluster.Exec("INSERT INTO items VALUES (1, 'tea', 2.50), (2, NULL, 1), (3, 'ça', 0)", "a");
  cluster.Exec("INSERT INTO items VALUES (3, 'ça', 0), (1, 'tea', 2.50), (2, NULL, 1)", "b");

  const std::string checksum = TableChecksum(cluster, "a", "\"public\".\"items\"");
  CHECK(checksum.starts_with("3:"));
  CHECK(checksum.size() == 2 + 32);
  CHECK(TableChecksum(cluster, "b", "\"public\".\"items\"") == checksum);
  CHECK(TableChecksum(cluster, "a", "\"public\".\"events\"") == "0:");

  cluster.Exec("UPDATE items SET price = 2.51 WHERE id = 1", "b");
  CHECK(TableChecksum(cluster, "b", "\"public\".\"items\"") != checksum);

  cluster.Exec("INSERT INTO events VALUES (1, '2026-05-01')", "a");
  CHECK(TableChecksum(cluster, "a", "\"public\".\"events\"").starts_with("1:"));

  CHECK(UserTables(cluster, "a") ==
        std::vector<std::string>{R"("public"."Odd ""Name""")", R"("public"."events")",
                                 R"("public"."items")"});
  CHECK(TableChecksum(cluster, "a", UserTables(cluster, "a").front()) == "0:");
}

}  // namespace
}  // namespace pgtandem::test
