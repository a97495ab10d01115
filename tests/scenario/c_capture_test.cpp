// The C capture trigger (sql/pgtandem_capture.c): the same deltas as the
// PL/pgSQL trigger, one wake-up per transaction, and replication that ends
// equal under a random load with the daemon killed.
#include <csignal>
#include <fstream>
#include <random>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <libpq-fe.h>

#include "pgtandem/source_listener.hpp"
#include "support/random_workload.hpp"
#include "support/replication_setup.hpp"
#include "support/test_seed.hpp"
#include "support/wait_until.hpp"

namespace pgtandem::test {
namespace {

using namespace std::chrono_literals;
using Catch::Matchers::Contains;

// Keys whose equality is not byte equality (numeric, a case-insensitive
// collation), composite and quoted keys, a key stored out of line, a key whose
// type changes after install, and a partitioned table rows move across.
const std::string kSchema = R"sql(
CREATE COLLATION nocase (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE TABLE amounts (k numeric PRIMARY KEY, v text);
CREATE TABLE names (k text COLLATE nocase PRIMARY KEY, v int);
CREATE TABLE "Order Lines" ("order" int, "line no" smallint, item text, PRIMARY KEY ("order", "line no"));
CREATE TABLE docs (k text PRIMARY KEY, v int);
ALTER TABLE docs ALTER COLUMN k SET STORAGE EXTERNAL;
CREATE TABLE events (region text, id bigint, v int, PRIMARY KEY (region, id)) PARTITION BY LIST (region);
CREATE TABLE events_eu PARTITION OF events FOR VALUES IN ('eu');
-- Its columns at other positions than the parent's.
CREATE TABLE events_us (gone int, v int, id bigint NOT NULL, region text NOT NULL);
ALTER TABLE events_us DROP COLUMN gone;
ALTER TABLE events ATTACH PARTITION events_us FOR VALUES IN ('us');
)sql";

// Every kind of write capture sees, one statement at a time.
const std::string kWrites = R"sql(
INSERT INTO amounts VALUES (1.0, 'a'), (2, 'b'), (3, 'c');
UPDATE amounts SET k = 1.00 WHERE k = 1;
UPDATE amounts SET k = 20 WHERE k = 2;
UPDATE amounts SET v = 'cc' WHERE k = 3;
DELETE FROM amounts WHERE k = 20;
INSERT INTO names VALUES ('Alice', 1), ('bob', 2);
UPDATE names SET k = 'ALICE' WHERE k = 'alice';
UPDATE names SET k = 'Robert' WHERE k = 'bob';
INSERT INTO names VALUES ('robert', 5) ON CONFLICT (k) DO UPDATE SET v = excluded.v;
INSERT INTO "Order Lines" SELECT o, l, 'item' FROM generate_series(1, 3) o, generate_series(1, 2) l;
UPDATE "Order Lines" SET "line no" = "line no" + 10 WHERE "order" = 2;
DELETE FROM "Order Lines" WHERE "order" = 3;
INSERT INTO docs VALUES (repeat('long key ', 250), 1);
UPDATE docs SET v = 2;
INSERT INTO events VALUES ('eu', 1, 1), ('eu', 2, 2), ('us', 3, 3);
UPDATE events SET region = 'us' WHERE id = 1;
UPDATE events SET v = 30 WHERE region = 'us';
DELETE FROM events WHERE id = 2;
BEGIN; SAVEPOINT s; INSERT INTO amounts VALUES (7, 'rolled back'); ROLLBACK TO s; INSERT INTO amounts VALUES (8, 'kept'); COMMIT;
BEGIN; INSERT INTO amounts VALUES (9, 'aborted'); ROLLBACK;
ALTER TABLE "Order Lines" ALTER COLUMN "line no" TYPE integer;
)sql";

// In a session of its own: PL/pgSQL's plan, cached in the session above, would
// refuse the key's new type.
const std::string kWriteAfterTypeChange = R"sql(
INSERT INTO "Order Lines" VALUES (4, 32000, 'after a type change of the key');
)sql";

// Every delta of every captured table as text, in capture order, without the
// transaction ids and times, which differ between databases.
const std::string kDeltasFunction = R"sql(
CREATE FUNCTION deltas() RETURNS text LANGUAGE plpgsql AS $$
DECLARE r record; part text; result text := '';
BEGIN
  FOR r IN SELECT id, table_name FROM pgtandem.captured_table ORDER BY table_name LOOP
    EXECUTE format('SELECT string_agg(%L || '' '' || (to_jsonb(d) - ''txid'' - ''captured_at'')::text, E''\n'' ORDER BY seq)
                    FROM pgtandem.d_%s d', r.table_name, r.id) INTO part;
    result := result || coalesce(part, '') || E'\n';
  END LOOP;
  RETURN result;
END $$;
)sql";

const std::string kTables = R"(["public.amounts", "public.names", "public.\"Order Lines\"", "public.docs", "public.events"])";

void Replace(std::string& text, const std::string& from, const std::string& to) {
  auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  text.replace(at, from.size(), to);
}

// `config` with the source's dsn naming role migrator, created to own every
// table of kSchema and nothing more: no superuser.
std::string AsTableOwner(PgCluster& source, std::string config) {
  source.Exec("CREATE ROLE migrator LOGIN; GRANT CREATE ON DATABASE app TO migrator; "
              "ALTER TABLE amounts OWNER TO migrator; ALTER TABLE names OWNER TO migrator; "
              "ALTER TABLE \"Order Lines\" OWNER TO migrator; ALTER TABLE docs OWNER TO migrator; "
              "ALTER TABLE events OWNER TO migrator; ALTER TABLE events_eu OWNER TO migrator; "
              "ALTER TABLE events_us OWNER TO migrator", kDatabase);
  Replace(config, source.Dsn(kDatabase), source.Dsn(kDatabase, "migrator"));
  return config;
}

// Names of the functions the capture triggers of database `db` run.
std::string TriggerFunctions(PgCluster& cluster, std::string_view db) {
  return cluster.Query1("SELECT string_agg(DISTINCT tgfoid::regproc::text, ',') FROM pg_trigger "
                        "WHERE tgname = 'pgtandem_capture' AND tgparentid = 0", db);
}

// Notifications on channel "pgtandem" that a listening connection receives for
// `sql`, counted up to a marker NOTIFY sent after it: notifications arrive in
// commit order, so none of `sql`'s can come later. The listener holds the
// daemon's listener lock, as a daemon does, unless `as_daemon` is false.
int Wakeups(const std::string& dsn, const std::string& sql, bool as_daemon = true) {
  PGconn* listener = PQconnectdb(dsn.c_str());
  PGconn* writer = PQconnectdb(dsn.c_str());
  REQUIRE(PQstatus(listener) == CONNECTION_OK);
  REQUIRE(PQstatus(writer) == CONNECTION_OK);
  if (as_daemon) {
    PQclear(PQexec(listener,
                   fmt::format("SELECT pg_advisory_lock_shared({}, {})", kLockClass, kListenerLockObject).c_str()));
  }
  PQclear(PQexec(listener, "LISTEN pgtandem; LISTEN test_marker"));
  PGresult* result = PQexec(writer, (sql + "; NOTIFY test_marker").c_str());
  INFO(PQerrorMessage(writer));
  REQUIRE(PQresultStatus(result) == PGRES_COMMAND_OK);
  PQclear(result);
  int wakeups = 0;
  bool marker = false;
  WaitUntil([&] {
    PQconsumeInput(listener);
    while (PGnotify* notify = PQnotifies(listener)) {
      if (std::string_view(notify->relname) == "pgtandem") ++wakeups;
      if (std::string_view(notify->relname) == "test_marker") marker = true;
      PQfreemem(notify);
    }
    return marker;
  }, 10s, "the marker notification");
  PQfinish(writer);
  PQfinish(listener);
  return wakeups;
}

}  // namespace

TEST_CASE("the C capture trigger writes exactly the deltas the PL/pgSQL trigger writes", "[scenario]") {
  ReplicationSetup setup("c-deltas", 1, kSchema, kTables);
  PgCluster& source = setup.Source();
  source.CreateDatabase("twin");
  source.Exec(kSchema, "twin");
  setup.WriteConfig(WithCCapture(setup.DefaultConfig()));
  setup.Install();
  std::string twin = setup.DefaultConfig();
  Replace(twin, source.Dsn(kDatabase), source.Dsn("twin"));
  const auto twin_config = setup.Dir() / "twin.json";
  std::ofstream(twin_config) << twin;
  RunResult installed = Run({PgtandemBinary(), "--config", twin_config.string(), "install"}, 60s);
  INFO(installed.output);
  REQUIRE(installed.exit_code == 0);
  REQUIRE(TriggerFunctions(source, kDatabase) == "pgtandem.capture_row");
  REQUIRE_THAT(TriggerFunctions(source, "twin"), !Contains("capture_row"));

  for (std::string_view db : {std::string_view(kDatabase), std::string_view("twin")}) {
    source.Exec(kWrites, db);
    source.Exec(kWriteAfterTypeChange, db);
    source.Exec(kDeltasFunction, db);
  }
  const std::string c_deltas = source.Query1("SELECT deltas()", kDatabase);
  INFO(c_deltas);
  REQUIRE(c_deltas == source.Query1("SELECT deltas()", "twin"));
  // Not vacuous: key changes, keys equal but not alike, a key stored out of line, moved rows.
  auto deltas = [&](const std::string& table, const std::string& columns) {
    const std::string id = source.Query1("SELECT id FROM pgtandem.captured_table WHERE table_name = '" + table + "'",
                                         kDatabase);
    return source.Query1(fmt::format("SELECT string_agg({}, ',' ORDER BY seq) FROM pgtandem.d_{}", columns, id),
                         kDatabase);
  };
  CHECK(deltas("amounts", "k || ':' || inserted") ==
        "1.0:true,2:true,3:true,1.00:false,20:true,2:false,3:false,20:false,8:true");
  CHECK(deltas("names", "k || ':' || inserted") ==
        "Alice:true,bob:true,ALICE:false,Robert:true,bob:false,Robert:false");
  CHECK(deltas("docs", "(k = repeat('long key ', 250))::text") == "true,true");
  CHECK_THAT(deltas("events", "region || id || ':' || inserted"), Contains("us1:true"));
  CHECK_THAT(deltas("Order Lines", "\"order\" || '/' || \"line no\""), Contains("2/12,2/2") && Contains(",4/32000"));
  CHECK(source.Query1("SELECT count(*) FROM pgtandem.d_1 WHERE captured_at IS NULL", kDatabase) == "0");

  // One wake-up per transaction; a savepoint rolled back takes its wake-up with it.
  const std::string dsn = source.Dsn(kDatabase);
  CHECK(Wakeups(dsn, "BEGIN; UPDATE amounts SET v = 'x'; INSERT INTO names VALUES ('carol', 3); COMMIT") == 1);
  CHECK(Wakeups(dsn, "BEGIN; SAVEPOINT s; UPDATE amounts SET v = 'y'; ROLLBACK TO s; "
                     "UPDATE amounts SET v = 'z'; COMMIT") == 1);
  CHECK(Wakeups(dsn, "BEGIN; SAVEPOINT s; UPDATE amounts SET v = 'w'; RELEASE s; SAVEPOINT t; "
                     "UPDATE names SET v = 9; ROLLBACK TO t; COMMIT") == 1);
  CHECK(Wakeups(dsn, "SET pgtandem.notify = off; UPDATE amounts SET v = 'quiet'") == 0);
  CHECK(Wakeups(dsn, "UPDATE amounts SET v = 'unheard'", false) == 0);
}

TEST_CASE("with the C capture a random load reaches the target equal, the daemon killed at random moments",
          "[scenario]") {
  uint64_t seed = TestSeed("C capture, kill -9");
  std::mt19937_64 rng(seed);
  ReplicationSetup setup("c-random", 1, kSampleSchema, kSampleTables);
  setup.WriteConfig(WithCCapture(setup.DefaultConfig()));
  setup.Install();
  REQUIRE(TriggerFunctions(setup.Source(), kDatabase) == "pgtandem.capture_row");
  RandomWorkload load(setup.Source().Dsn(kDatabase), seed, 3);
  for (int kill = 0; kill < 3; ++kill) {
    ChildProcess daemon = setup.StartDaemon();
    RunLoad(daemon, std::chrono::milliseconds(500 + rng() % 1500));
    daemon.Signal(SIGKILL);
    daemon.Wait(10s);
  }
  ChildProcess daemon = setup.StartDaemon();
  RunLoad(daemon, 2s);
  load.Stop();
  REQUIRE(load.Committed() > 50);
  setup.WaitEqual(90s);
  daemon.Signal(SIGTERM);
  REQUIRE(daemon.Wait(30s) == 0);
}

TEST_CASE("install switches between the C and the PL/pgSQL capture, and says why it cannot use C", "[scenario]") {
  ReplicationSetup setup("c-install", 1, kSchema, kTables);
  PgCluster& source = setup.Source();
  const std::string plpgsql = WithCapture(setup.DefaultConfig(), R"(, "capture": "plpgsql")");
  const std::string c = WithCCapture(plpgsql);

  std::string missing = c;
  Replace(missing, CaptureModulePath(), "/nonexistent/pgtandem_capture");
  setup.WriteConfig(missing);
  RunResult refused = setup.Pgtandem({"install"});
  INFO(refused.output);
  REQUIRE(refused.exit_code != 0);
  REQUIRE_THAT(refused.output, Contains("/nonexistent/pgtandem_capture") && Contains("capture_library"));
  REQUIRE(source.Query1("SELECT to_regnamespace('pgtandem') IS NULL", kDatabase) == "t");

  setup.WriteConfig(AsTableOwner(source, c));
  refused = setup.Pgtandem({"install"});
  INFO(refused.output);
  REQUIRE(refused.exit_code != 0);
  REQUIRE_THAT(refused.output, Contains("needs a superuser"));

  setup.WriteConfig(plpgsql);
  setup.Install();
  source.Exec("INSERT INTO amounts VALUES (1, 'plpgsql')", kDatabase);
  setup.WriteConfig(c);
  setup.Install();
  REQUIRE(TriggerFunctions(source, kDatabase) == "pgtandem.capture_row");
  source.Exec("INSERT INTO amounts VALUES (2, 'c')", kDatabase);
  setup.WriteConfig(plpgsql);
  setup.Install();
  REQUIRE_THAT(TriggerFunctions(source, kDatabase), !Contains("capture_row"));
  source.Exec("INSERT INTO amounts VALUES (3, 'plpgsql again')", kDatabase);
  const std::string amounts =
      source.Query1("SELECT id FROM pgtandem.captured_table WHERE table_name = 'amounts'", kDatabase);
  REQUIRE(source.Query1("SELECT string_agg(k::text || inserted, ',' ORDER BY seq) FROM pgtandem.d_" + amounts,
                        kDatabase) == "1true,2true,3true");

  ChildProcess daemon = setup.StartDaemon();
  setup.WaitEqual(60s);
  daemon.Signal(SIGTERM);
  REQUIRE(daemon.Wait(30s) == 0);
}

TEST_CASE("by default install takes the C capture where the server can create it, PL/pgSQL elsewhere, and says why",
          "[scenario]") {
  ReplicationSetup setup("c-auto", 1, kSchema, kTables);
  PgCluster& source = setup.Source();
  const std::string automatic =
      WithCapture(setup.DefaultConfig(), fmt::format(R"(, "capture_library": "{}")", CaptureModulePath()));
  auto captured = [&] {
    const std::string id =
        source.Query1("SELECT id FROM pgtandem.captured_table WHERE table_name = 'amounts'", kDatabase);
    return source.Query1("SELECT string_agg(k::text, ',' ORDER BY seq) FROM pgtandem.d_" + id, kDatabase);
  };

  setup.WriteConfig(AsTableOwner(source, automatic));
  RunResult installed = setup.Pgtandem({"install"});
  INFO(installed.output);
  REQUIRE(installed.exit_code == 0);
  REQUIRE_THAT(installed.output, Contains("capture: PL/pgSQL, because the C trigger could not be created from " +
                                          CaptureModulePath()) &&
                                     Contains("needs a superuser"));
  REQUIRE_THAT(TriggerFunctions(source, kDatabase), !Contains("capture_row"));
  source.Exec("INSERT INTO amounts VALUES (1, 'no superuser')", kDatabase);

  std::string missing = automatic;
  Replace(missing, CaptureModulePath(), "/nonexistent/pgtandem_capture");
  setup.WriteConfig(missing);
  installed = setup.Pgtandem({"install"});
  INFO(installed.output);
  REQUIRE(installed.exit_code == 0);
  REQUIRE_THAT(installed.output, Contains("capture: PL/pgSQL, because the C trigger could not be created from "
                                          "/nonexistent/pgtandem_capture") &&
                                     Contains("could not access file") && Contains("install the module"));
  REQUIRE_THAT(TriggerFunctions(source, kDatabase), !Contains("capture_row"));
  source.Exec("INSERT INTO amounts VALUES (2, 'no module')", kDatabase);

  setup.WriteConfig(automatic);
  installed = setup.Pgtandem({"install"});
  INFO(installed.output);
  REQUIRE(installed.exit_code == 0);
  REQUIRE_THAT(installed.output, Contains("capture: the C trigger, from " + CaptureModulePath()));
  REQUIRE(TriggerFunctions(source, kDatabase) == "pgtandem.capture_row");
  source.Exec("INSERT INTO amounts VALUES (3, 'c')", kDatabase);
  REQUIRE(captured() == "1,2,3");

  ChildProcess daemon = setup.StartDaemon();
  setup.WaitEqual(60s);
  daemon.Signal(SIGTERM);
  REQUIRE(daemon.Wait(30s) == 0);
}

}  // namespace pgtandem::test
