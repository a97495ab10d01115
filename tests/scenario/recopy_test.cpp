// A backlog that touches most of a table is applied by copying the table
// whole; a reader on the target, a foreign key or inserted keys send it down
// the key path instead, and every way ends equal.
#include <chrono>
#include <map>
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

// Every index of the target's items, as the catalog describes it (its
// definition, constraint, tablespace, comments, statistics targets, CLUSTER
// and REPLICA IDENTITY marks), one line each, by name.
std::string IndexCatalog(const PgCluster& target) {
  return target.Query1(R"(
SELECT string_agg(pg_catalog.format('%s: %s; tablespace %s; clustered %s; replica identity %s; comment %s; '
                                    'statistics %s; constraint %s',
         ic.relname, pg_catalog.pg_get_indexdef(i.indexrelid), ts.spcname, i.indisclustered, i.indisreplident,
         pg_catalog.obj_description(i.indexrelid, 'pg_class'),
         (SELECT pg_catalog.string_agg(a.attstattarget::text, ',' ORDER BY a.attnum)
            FROM pg_catalog.pg_attribute a WHERE a.attrelid = i.indexrelid),
         (SELECT pg_catalog.string_agg(pg_catalog.format('%s %s %s', c.conname, pg_catalog.pg_get_constraintdef(c.oid),
                                   pg_catalog.obj_description(c.oid, 'pg_constraint')), ', ' ORDER BY c.conname)
            FROM pg_catalog.pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid)),
       E'\n' ORDER BY ic.relname)
  FROM pg_catalog.pg_index i
  JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
  LEFT JOIN pg_catalog.pg_tablespace ts ON ts.oid = ic.reltablespace
 WHERE i.indrelid = 'items'::regclass)", kDatabase);
}

// The oid of each of the target's indexes of `table`, by name.
std::map<std::string, std::string> IndexOids(const PgCluster& target, const std::string& table = "items") {
  std::map<std::string, std::string> oids;
  for (const auto& row : target.Query("SELECT indexrelid::regclass::text, indexrelid::text FROM pg_index "
                                      "WHERE indrelid = '" + table + "'::regclass", kDatabase)) {
    oids[row[0]] = row[1];
  }
  return oids;
}

TEST_CASE("a recopy builds the target table's indexes after the copy, each exactly as it was", "[scenario]") {
  ReplicationSetup setup("recopy-indexes", 1, kSchema, R"(["public.items"])");
  for (const PgCluster* node : {&setup.Source(), &setup.Target(0)}) {
    node->CreateTablespace("fast_disk");
    node->Exec(R"(
ALTER TABLE items ADD COLUMN code integer, ADD COLUMN parent text;
COMMENT ON CONSTRAINT items_pkey ON items IS 'the key';
ALTER TABLE items CLUSTER ON items_pkey;
CREATE UNIQUE INDEX items_id_label ON items (id, label) WITH (fillfactor = 80);
ALTER TABLE items REPLICA IDENTITY USING INDEX items_id_label;
ALTER TABLE items ADD CONSTRAINT items_code_key UNIQUE (code) DEFERRABLE INITIALLY DEFERRED;
CREATE INDEX items_note_lower ON items (lower(note)) INCLUDE (label) WITH (fillfactor = 70)
  TABLESPACE fast_disk WHERE note IS NOT NULL;
ALTER INDEX items_note_lower ALTER COLUMN 1 SET STATISTICS 500;
COMMENT ON INDEX items_note_lower IS 'notes, case-blind';
ALTER TABLE items ADD CONSTRAINT items_code_excl EXCLUDE USING btree (code WITH =);
ALTER TABLE items ADD CONSTRAINT items_label_key UNIQUE (label);
ALTER TABLE items ADD CONSTRAINT items_parent_fkey FOREIGN KEY (parent) REFERENCES items (label);
)", kDatabase);
  }
  const std::string catalog_before = IndexCatalog(setup.Target(0));
  FillThenChangeAll(setup, "");
  std::map<std::string, std::string> oids_before = IndexOids(setup.Target(0));
  ChildProcess daemon = setup.StartDaemon();
  setup.WaitEqual(60s);
  INFO(daemon.Output());
  // The exclusion constraint and the unique key a foreign key depends on stay; the rest are built after the copy.
  CHECK_THAT(daemon.Output(), Contains("copied whole (17143 rows), then built items_pkey, items_id_label, "
                                       "items_code_key, items_note_lower again"));
  CHECK(IndexCatalog(setup.Target(0)) == catalog_before);
  CHECK(setup.Target(0).Query1("SELECT relreplident FROM pg_class WHERE oid = 'items'::regclass", kDatabase) == "i");
  std::map<std::string, std::string> oids_after = IndexOids(setup.Target(0));
  for (const char* kept : {"items_code_excl", "items_label_key"}) CHECK(oids_after[kept] == oids_before[kept]);
  for (const char* built : {"items_pkey", "items_id_label", "items_code_key", "items_note_lower"}) {
    CHECK(oids_after[built] != oids_before[built]);
  }
  // The rebuilt keys are enforced: a duplicate written on the target is refused.
  CHECK_THROWS(setup.Target(0).Exec("INSERT INTO items (id, label) VALUES (1, 'duplicate key')", kDatabase));
}

TEST_CASE("a recopy builds after the copy only the indexes the target's role may drop and create",
          "[scenario]") {
  ReplicationSetup setup("recopy-not-owner", 1, kSchema, R"(["public.items", "public.tags", "own.labels"])");
  for (const PgCluster* node : {&setup.Source(), &setup.Target(0)}) {
    node->Exec("CREATE SCHEMA own; CREATE TABLE own.labels (id integer PRIMARY KEY, label text)", kDatabase);
    node->Exec("INSERT INTO tags SELECT i, i, 'tag ' || i FROM generate_series(1, " + std::to_string(kRows) +
               ") i; INSERT INTO own.labels SELECT i, 'label ' || i FROM generate_series(1, " +
               std::to_string(kRows) + ") i", kDatabase);
  }
  // items belongs to postgres; tags to the daemon's role, in a schema where it
  // may not create; own.labels to the daemon's role, in its own schema, with
  // an index in a tablespace it may not create in.
  setup.Target(0).CreateTablespace("fast_disk");
  setup.Target(0).Exec(R"(
CREATE ROLE replicator LOGIN;
GRANT CREATE ON DATABASE app TO replicator;
GRANT SET ON PARAMETER session_replication_role TO replicator;
GRANT SELECT, INSERT, DELETE, TRUNCATE ON items TO replicator;
ALTER TABLE tags OWNER TO replicator;
ALTER SCHEMA own OWNER TO replicator;
ALTER TABLE own.labels OWNER TO replicator;
CREATE INDEX labels_label ON own.labels (label) TABLESPACE fast_disk;
)", kDatabase);
  FillThenChangeAll(setup, "ANALYZE tags, own.labels; UPDATE tags SET tag = 'changed ' || id; "
                           "UPDATE own.labels SET label = 'changed ' || id");
  setup.WriteConfig(WithRole(setup.DefaultConfig(), setup.Target(0), "replicator"));
  std::map<std::string, std::string> before = IndexOids(setup.Target(0), "items");
  before.merge(IndexOids(setup.Target(0), "tags"));
  before.merge(IndexOids(setup.Target(0), "own.labels"));
  ChildProcess daemon = setup.StartDaemon();
  setup.WaitEqual(60s);
  INFO(daemon.Output());
  for (const std::string table : {"public.items", "public.tags", "own.labels"}) {
    CHECK_THAT(daemon.Output(), Contains("table " + table + ": "));
  }
  CHECK_THAT(daemon.Output(), Contains("copied whole (17143 rows)\n") && Contains("copied whole (20000 rows)\n") &&
                                  Contains("copied whole (20000 rows), then built labels_pkey again"));
  std::map<std::string, std::string> after = IndexOids(setup.Target(0), "items");
  after.merge(IndexOids(setup.Target(0), "tags"));
  after.merge(IndexOids(setup.Target(0), "own.labels"));
  CHECK(after["items_pkey"] == before["items_pkey"]);
  CHECK(after["tags_pkey"] == before["tags_pkey"]);
  CHECK(after["own.labels_label"] == before["own.labels_label"]);
  CHECK(after["own.labels_pkey"] != before["own.labels_pkey"]);
}

TEST_CASE("a recopy keeps the target's indexes in place while copying when the target refuses to drop them",
          "[scenario]") {
  ReplicationSetup setup("recopy-no-ddl", 1, kSchema, R"(["public.items"])");
  // A DBA's guard against DDL on a table, enabled ALWAYS so that it fires in replica mode too.
  setup.Target(0).Exec(R"(
CREATE FUNCTION refuse_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN IF current_query() LIKE '%items%' THEN RAISE EXCEPTION 'no DDL on items'; END IF; END $$;
CREATE EVENT TRIGGER refuse_ddl ON ddl_command_start WHEN TAG IN ('ALTER TABLE', 'DROP INDEX')
  EXECUTE FUNCTION refuse_ddl();
ALTER EVENT TRIGGER refuse_ddl ENABLE ALWAYS;
)", kDatabase);
  FillThenChangeAll(setup, "");
  const std::string pkey_before = setup.Target(0).Query1("SELECT 'items_pkey'::regclass::oid", kDatabase);
  ChildProcess daemon = setup.StartDaemon();
  setup.WaitEqual(60s);
  INFO(daemon.Output());
  CHECK_THAT(daemon.Output(), Contains("table public.items: copying it with its indexes in place, since one could "
                                       "not be dropped") && Contains("no DDL on items"));
  CHECK_THAT(daemon.Output(), Contains("copied whole (17143 rows)") && !Contains("built items_pkey"));
  CHECK(setup.Target(0).Query1("SELECT 'items_pkey'::regclass::oid", kDatabase) == pkey_before);
}

TEST_CASE("a recopy waits out an autovacuum of the table on the target instead of deleting the rows",
          "[scenario]") {
  ReplicationSetup setup("recopy-autovacuum", 1, kSchema, R"(["public.items"])");
  FillThenChangeAll(setup, "");
  // An autovacuum of items on the target that would take minutes unless cancelled.
  setup.Target(0).Exec("ALTER TABLE items SET (autovacuum_vacuum_insert_threshold = 0, "
                       "autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_cost_delay = 100, "
                       "autovacuum_vacuum_cost_limit = 1)", kDatabase);
  setup.Target(0).Exec("ALTER SYSTEM SET autovacuum_naptime = '1s'");
  setup.Target(0).Exec("SELECT pg_reload_conf()");
  WaitUntil([&] {
    return setup.Target(0).Query1("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker' "
                                  "AND query LIKE '%items%'") == "1";
  }, 60s, "an autovacuum of items on the target");
  ChildProcess daemon = setup.StartDaemon();
  setup.WaitEqual(60s);
  INFO(daemon.Output());
  CHECK_THAT(daemon.Output(), Contains("copied whole (17143 rows)") && !Contains("deleting its rows"));
  CHECK_THAT(setup.Target(0).ServerLog(), Contains("canceling autovacuum task"));
}

TEST_CASE("a recopy that a target reader, a foreign key or a missing grant keeps from truncating the table "
          "deletes its rows instead, and ends equal",
          "[scenario]") {
  ReplicationSetup setup("recopy-refused", 1, kSchema, R"(["public.*"])");
  SECTION("a reader holding the table") {
    FillThenChangeAll(setup, "");
    Reader reader(setup.Target(0), "items");
    ChildProcess daemon = setup.StartDaemon();
    setup.WaitEqual(60s);
    INFO(daemon.Output());
    CHECK_THAT(daemon.Output(), Contains("table public.items: deleting its rows before copying it whole, its indexes "
                                         "in place, since TRUNCATE was refused") && Contains("lock timeout"));
    CHECK_THAT(daemon.Output(), Contains("copied whole (17143 rows)") && !Contains("built items_pkey"));
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
    CHECK_THAT(daemon.Output(), Contains("table public.items: deleting its rows before copying it whole") &&
                                    Contains("foreign key"));
    CHECK_THAT(daemon.Output(), Contains("copied whole (17144 rows)"));
    // The referencing row on the target is still there, and its key again.
    CHECK(setup.Target(0).Query1("SELECT count(*) FROM tags JOIN items ON items.id = tags.item", kDatabase) == "1");
  }
  SECTION("a role without the TRUNCATE grant") {
    FillThenChangeAll(setup, "");
    setup.Target(0).Exec(R"(
CREATE ROLE replicator LOGIN;
GRANT CREATE ON DATABASE app TO replicator;
GRANT SET ON PARAMETER session_replication_role TO replicator;
GRANT SELECT, INSERT, DELETE ON ALL TABLES IN SCHEMA public TO replicator;
)", kDatabase);
    setup.WriteConfig(WithRole(setup.DefaultConfig(), setup.Target(0), "replicator"));
    ChildProcess daemon = setup.StartDaemon();
    setup.WaitEqual(60s);
    INFO(daemon.Output());
    CHECK_THAT(daemon.Output(), Contains("table public.items: deleting its rows before copying it whole") &&
                                    Contains("permission denied"));
    CHECK_THAT(daemon.Output(), Contains("copied whole (17143 rows)"));
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
