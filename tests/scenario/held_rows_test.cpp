// The source reads a batch's rows while the target deletes the old ones; the
// rows read meanwhile wait in the daemon's memory, up to a bound, and past it
// the source waits for the daemon instead.
#include <csignal>
#include <string>

#include <catch2/catch.hpp>

#include "support/proc_status.hpp"
#include "support/replication_setup.hpp"
#include "support/table_lock.hpp"
#include "support/wait_until.hpp"

namespace pgtandem::test {
namespace {

using namespace std::chrono_literals;

// 200 rows of 320 kB: a 64 MB COPY stream, compressed to little on disk.
const std::string kSchema = R"(
CREATE TABLE docs (id integer PRIMARY KEY, body text NOT NULL);
INSERT INTO docs SELECT i, repeat(md5(i::text), 10000) FROM generate_series(1, 200) i;
)";

bool DeleteWaitsForLock(ReplicationSetup& setup) {
  return setup.Target(0).Query1("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                                "'pgtandem sync app target t0' AND wait_event_type = 'Lock' AND query LIKE 'DELETE%'",
                                kDatabase) == "1";
}

}  // namespace

TEST_CASE("rows read while the target's DELETE waits are held up to a bound, then the source waits; both end equal",
          "[scenario]") {
  ReplicationSetup setup("heldrows", 1, kSchema, R"(["public.docs"])");
  setup.Install();
  ChildProcess daemon = setup.StartDaemon();
  setup.WaitEqual(120s);
  long rss_before = ProcStatusKib(daemon.Pid(), "VmHWM");

  SECTION("a batch larger than the bound: the daemon stops reading, the source blocks on its socket") {
    TableLock lock(setup.Target(0), kDatabase, "docs", "id = 1");
    setup.Source().Exec("UPDATE docs SET body = body || 'x'", kDatabase);
    WaitUntil([&] { return DeleteWaitsForLock(setup); }, 60s, "the batch's DELETE to wait for the row lock");
    WaitUntil([&] {
      return setup.Source().Query1("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'ClientWrite' "
                                   "AND query LIKE 'COPY (SELECT t.%'", kDatabase) == "1";
    }, 60s, "the source's row COPY to wait for the daemon to read");
    long rss_held = ProcStatusKib(daemon.Pid(), "VmHWM");
    std::fprintf(stderr, "held rows: daemon peak RSS %ld kB before the batch, %ld kB with the 64 MB batch held up\n",
                 rss_before, rss_held);
    CHECK(rss_held - rss_before < 24 * 1024);
    CHECK(DeleteWaitsForLock(setup));
    lock.Release();
    setup.WaitEqual(120s);
  }

  SECTION("a batch smaller than the bound: every row is read before the DELETE ends") {
    TableLock lock(setup.Target(0), kDatabase, "docs", "id = 1");
    setup.Source().Exec("UPDATE docs SET body = 'short ' || id WHERE id IN (1, 2)", kDatabase);
    WaitUntil([&] { return DeleteWaitsForLock(setup); }, 60s, "the batch's DELETE to wait for the row lock");
    WaitUntil([&] {
      return setup.Source().Query1("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY (SELECT t.%' "
                                   "AND state = 'active'", kDatabase) == "0";
    }, 60s, "the source's row COPY to end");
    CHECK(DeleteWaitsForLock(setup));
    lock.Release();
    setup.WaitEqual(60s);
  }
  daemon.Signal(SIGTERM);
  REQUIRE(daemon.Wait(30s) == 0);
}

}  // namespace pgtandem::test
