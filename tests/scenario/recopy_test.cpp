// A backlog that touches most of a table is applied by copying the table
// whole; a reader on the target, a foreign key or inserted keys send it down
// the key path instead, and every way ends equal.
#include <chrono>
#include <string>

#include <catch2/catch.hpp>
#include <libpq-fe.h>

#include "support/replication_setup.hpp"
#include "support/wait_until.hpp"

namespace pgtandem::test {
namespace {

using namespace std::chrono_literals;
using Catch::Matchers::Contains;

constexpr int kRows = 20'000;

const std::string kSchema = R"(
CREATE TABLE items (id integer PRIMARY KEY, label text NOT NULL, note text);
CREATE TABLE tags (id integer PRIMARY KEY, item integer, tag text);
CREATE TABLE parted (id integer, region integer, v text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE parted_0 PARTITION OF parted FOR VALUES IN (0);
CREATE TABLE parted_1 PARTITION OF parted FOR VALUES IN (1);
)";

// A session on the target reading the table, with its transaction left open.
class Reader {
 public:
  Reader(const PgCluster& cluster, const std::string& table) : conn_(PQconnectdb(cluster.Dsn(kDatabase).c_str())) {
    REQUIRE(PQstatus(conn_) == CONNECTION_OK);
    Exec("BEGIN");
    Exec("SELECT count(*) FROM " + table);
  }
  ~Reader() { PQfinish(conn_); }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

 private:
  void Exec(const std::string& sql) {
    PGresult* result = PQexec(conn_, sql.c_str());
    bool ok = PQresultStatus(result) == PGRES_COMMAND_OK || PQresultStatus(result) == PGRES_TUPLES_OK;
    PQclear(result);
    REQUIRE(ok);
  }
  PGconn* conn_;
};

// Both nodes hold kRows items; capture is on; the source then changes every item.
void FillThenChangeAll(ReplicationSetup& setup, const std::string& extra_change) {
  std::string fill = "INSERT INTO items SELECT i, 'item ' || i, NULL FROM generate_series(1, " +
                     std::to_string(kRows) + ") i";
  setup.Source().Exec(fill, kDatabase);
  setup.Target(0).Exec(fill, kDatabase);
  setup.Install();
  // The share of the table a backlog covers is judged from the source's statistics.
  setup.Source().Exec("ANALYZE items", kDatabase);
  setup.Source().Exec("UPDATE items SET note = 'changed ' || id WHERE id % 7 <> 0", kDatabase);
  setup.Source().Exec("DELETE FROM items WHERE id % 7 = 0", kDatabase);
  if (!extra_change.empty()) setup.Source().Exec(extra_change, kDatabase);
}

}  // namespace

TEST_CASE("a backlog of updates and deletes covering most of a table is applied by copying the table whole",
          "[scenario]") {
  ReplicationSetup setup("recopy", 1, kSchema, R"(["public.*"])");
  // A partitioned table is emptied and copied through its parent; rows also move between partitions.
  std::string fill = "INSERT INTO parted SELECT i, i % 2, 'row ' || i FROM generate_series(1, " +
                     std::to_string(kRows) + ") i";
  setup.Source().Exec(fill, kDatabase);
  setup.Target(0).Exec(fill, kDatabase);
  FillThenChangeAll(setup, "ANALYZE parted; UPDATE parted SET region = 1 - region WHERE id % 3 = 0; "
                           "UPDATE parted SET v = 'changed' WHERE id % 3 <> 0");
  ChildProcess daemon = setup.StartDaemon();
  setup.WaitEqual(60s);
  INFO(daemon.Output());
  CHECK_THAT(daemon.Output(), Contains("table public.items: " + std::to_string(kRows) +
                                       " changes reach batch.recopy_percent of its rows: copied whole"));
  CHECK_THAT(daemon.Output(), Contains("table public.parted: ") && Contains("copied whole (20000 rows)"));
  // Replication goes on after it, key by key.
  setup.Source().Exec("UPDATE items SET note = 'later' WHERE id = 1", kDatabase);
  setup.WaitEqual(60s);
}

TEST_CASE("a recopy that a target reader or a foreign key stands in the way of goes key by key and ends equal",
          "[scenario]") {
  ReplicationSetup setup("recopy-refused", 1, kSchema, R"(["public.*"])");
  SECTION("a reader holding the table") {
    FillThenChangeAll(setup, "");
    Reader reader(setup.Target(0), "items");
    ChildProcess daemon = setup.StartDaemon();
    setup.WaitEqual(60s);
    INFO(daemon.Output());
    CHECK_THAT(daemon.Output(), Contains("table public.items: applying key by key, not copying it whole"));
    CHECK_THAT(daemon.Output(), Contains("lock timeout"));
  }
  SECTION("a foreign key from another table") {
    setup.Source().Exec("INSERT INTO items VALUES (-1, 'tagged', NULL)", kDatabase);
    setup.Target(0).Exec("INSERT INTO items VALUES (-1, 'tagged', NULL)", kDatabase);
    setup.Target(0).Exec("INSERT INTO tags VALUES (1, -1, 'kept')", kDatabase);
    setup.Target(0).Exec("ALTER TABLE tags ADD FOREIGN KEY (item) REFERENCES items (id)", kDatabase);
    setup.Source().Exec("INSERT INTO tags VALUES (1, -1, 'kept')", kDatabase);
    FillThenChangeAll(setup, "");
    ChildProcess daemon = setup.StartDaemon();
    setup.WaitEqual(60s);
    INFO(daemon.Output());
    CHECK_THAT(daemon.Output(), Contains("table public.items: applying key by key, not copying it whole"));
    CHECK_THAT(daemon.Output(), Contains("foreign key"));
  }
}

TEST_CASE("a large backlog that inserts keys is applied key by key, so a row written on the target in the way "
          "is still found",
          "[scenario]") {
  ReplicationSetup setup("recopy-collision", 1, kSchema, R"(["public.items"])");
  // One batch holds the whole window: the collision check needs that.
  setup.WriteConfig(WithMaxRows(setup.DefaultConfig(), 1000000));
  FillThenChangeAll(setup, "INSERT INTO items VALUES (30000, 'new on the source', NULL)");
  setup.Target(0).Exec("INSERT INTO items VALUES (30000, 'written on the target', NULL)", kDatabase);
  ChildProcess daemon = setup.StartDaemon();
  WaitUntil([&] { return setup.LastError().find("(id)=(30000)") != std::string::npos; }, 60s,
            "the target to stop on key 30000");
  CHECK(setup.Target(0).Query1("SELECT label FROM items WHERE id = 30000", kDatabase) == "written on the target");
  setup.Target(0).Exec("DELETE FROM items WHERE id = 30000", kDatabase);
  setup.WaitEqual(60s);
  INFO(daemon.Output());
  CHECK_THAT(daemon.Output(), !Contains("copied whole"));
}

}  // namespace pgtandem::test
