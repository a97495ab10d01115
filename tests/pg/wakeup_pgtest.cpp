// The capture triggers wake a listening daemon once per writing transaction,
// not at all where the DBA turned notifications off (a busy source), and not
// while no daemon listens.
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <libpq-fe.h>

#include "pgtandem/source_listener.hpp"
#include "support/replication_setup.hpp"
#include "support/wait_until.hpp"

namespace pgtandem::test {
namespace {

using namespace std::chrono_literals;

const std::string kSchema = R"sql(
CREATE TABLE a (id integer PRIMARY KEY, v text);
CREATE TABLE b (id integer PRIMARY KEY, v text);
)sql";

using Conn = std::unique_ptr<PGconn, decltype(&PQfinish)>;

Conn Connect(PgCluster& cluster) {
  Conn conn(PQconnectdb(cluster.Dsn(kDatabase).c_str()), &PQfinish);
  REQUIRE(PQstatus(conn.get()) == CONNECTION_OK);
  return conn;
}

void Run(PGconn* conn, const std::string& sql) {
  PGresult* result = PQexec(conn, sql.c_str());
  INFO(sql << ": " << PQerrorMessage(conn));
  REQUIRE((PQresultStatus(result) == PGRES_COMMAND_OK || PQresultStatus(result) == PGRES_TUPLES_OK));
  PQclear(result);
}

// Payloads of the notifications on channel "pgtandem" that `listener` gets up
// to the marker the writer sends after its work: notifications arrive in
// commit order, so none of the work's can come after the marker.
std::vector<std::string> WakeupsOf(PGconn* listener, PGconn* writer, const std::string& work) {
  Run(writer, work);
  Run(writer, "NOTIFY pgtandem, 'marker'");
  std::vector<std::string> payloads;
  bool marker = false;
  WaitUntil([&] {
    PQconsumeInput(listener);
    while (PGnotify* n = PQnotifies(listener)) {
      std::string payload = n->extra;
      PQfreemem(n);
      if (payload == "marker") marker = true;
      if (!marker) payloads.push_back(payload);
    }
    return marker;
  }, 10s, "the marker notification");
  return payloads;
}

}  // namespace

TEST_CASE("a writing transaction wakes a listening daemon once, and pgtandem.notify = off silences it", "[pg]") {
  ReplicationSetup setup("wakeup", 1, kSchema, R"(["public.*"])");
  setup.Install();
  Conn listener = Connect(setup.Source());
  Conn writer = Connect(setup.Source());
  // As the daemon's listener does: the lock says someone hears the NOTIFY.
  const std::string lock = fmt::format("SELECT pg_advisory_lock_shared({}, {})", kLockClass, kListenerLockObject);
  Run(listener.get(), lock + "; LISTEN pgtandem");

  CHECK(WakeupsOf(listener.get(), writer.get(),
                  "BEGIN; INSERT INTO a VALUES (1, 'x'), (2, 'y'); UPDATE b SET v = 'z'; INSERT INTO b VALUES (1, 'x'); "
                  "DELETE FROM a WHERE id = 2; COMMIT").size() == 1);
  // One per transaction, not one per session: the flag is transaction-local.
  CHECK(WakeupsOf(listener.get(), writer.get(), "INSERT INTO a VALUES (3, 'x')").size() == 1);
  // A savepoint rolled back takes its notification along; the next write sends it again.
  CHECK(WakeupsOf(listener.get(), writer.get(),
                  "BEGIN; SAVEPOINT s; INSERT INTO a VALUES (4, 'x'); ROLLBACK TO SAVEPOINT s; "
                  "INSERT INTO a VALUES (5, 'x'); COMMIT").size() == 1);
  // No row written, no wake-up.
  CHECK(WakeupsOf(listener.get(), writer.get(), "UPDATE a SET v = 'none' WHERE id < 0").empty());
  CHECK(WakeupsOf(listener.get(), writer.get(), "TRUNCATE b").size() == 1);

  // No session holds the listener's lock: nobody would hear it, so nothing is sent, and the write is still captured.
  Run(listener.get(), fmt::format("SELECT pg_advisory_unlock_shared({}, {})", kLockClass, kListenerLockObject));
  CHECK(WakeupsOf(listener.get(), writer.get(), "INSERT INTO a VALUES (7, 'x')").empty());
  CHECK(setup.Source().Query1("SELECT count(*) FROM pgtandem.d_1 WHERE id = 7", kDatabase) == "1");
  Run(listener.get(), lock);
  CHECK(WakeupsOf(listener.get(), writer.get(), "INSERT INTO a VALUES (8, 'x')").size() == 1);

  Run(writer.get(), "SET pgtandem.notify = off");
  CHECK(WakeupsOf(listener.get(), writer.get(), "INSERT INTO a VALUES (6, 'x')").empty());
  // Still captured: the daemon finds it when it polls.
  CHECK(setup.Source().Query1("SELECT count(*) FROM pgtandem.d_1 WHERE id = 6", kDatabase) == "1");
}

}  // namespace pgtandem::test
