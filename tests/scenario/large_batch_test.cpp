// Batches of tens of thousands of keys: the applier picks index probes or a
// table scan for them (lib/src/key_join.cpp), on composite keys and
// partitions too, and either way the targets end equal to the source.
#include <csignal>
#include <string>

#include <catch2/catch.hpp>

#include "support/replication_setup.hpp"

namespace pgtandem::test {
namespace {

using namespace std::chrono_literals;

// About twelve `wide` rows fill a page, so 60,000 rows make some 5,000 pages:
// 12,000 keys are then worth probing on both sides and 40,000 worth a scan
// on the source (key_join.hpp).
const std::string kLargeBatchSchema = R"(
CREATE TABLE wide (id integer PRIMARY KEY, grp integer NOT NULL, pad text NOT NULL);
CREATE TABLE pair (a integer, b text, v integer, PRIMARY KEY (a, b));
CREATE TABLE part (id integer, region integer, v integer, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE part_0 PARTITION OF part FOR VALUES IN (0);
CREATE TABLE part_1 PARTITION OF part FOR VALUES IN (1);
)";

}  // namespace

TEST_CASE("batches of many keys apply by index probes and by table scans, and end equal", "[scenario]") {
  ReplicationSetup setup("large-batch", 1, kLargeBatchSchema, R"(["public.*"])");
  setup.WriteConfig(WithMaxRows(setup.DefaultConfig(), 200000));
  setup.Install();
  ChildProcess daemon = setup.StartDaemon();

  setup.Source().Exec(
      "BEGIN;"
      "INSERT INTO wide SELECT i, i % 7, repeat(md5(i::text), 20) FROM generate_series(1, 60000) i;"
      "INSERT INTO pair SELECT i / 2, 'b' || (i % 2), i FROM generate_series(0, 29999) i;"
      "INSERT INTO part SELECT i, i % 2, i FROM generate_series(1, 30000) i;"
      "COMMIT",
      kDatabase);
  setup.WaitEqual(120s);

  setup.Source().Exec("UPDATE wide SET grp = grp + 1 WHERE id % 5 = 0", kDatabase);
  setup.WaitEqual(120s);

  setup.Source().Exec(
      "BEGIN;"
      "DELETE FROM wide WHERE id % 3 = 1;"
      "UPDATE wide SET grp = grp + 1, pad = upper(pad) WHERE id % 3 = 0;"
      "UPDATE pair SET v = -v WHERE a % 2 = 0;"
      "UPDATE part SET v = v + 1;"
      "UPDATE part SET region = 1 - region WHERE id % 10 = 0;"
      "COMMIT",
      kDatabase);
  setup.WaitEqual(120s);

  std::string log = daemon.Output();
  INFO(log);
  CHECK(log.find("table \"public\".\"wide\": 12000 keys, matched by index probes on the source and by index probes "
                 "on the target") != std::string::npos);
  CHECK(log.find("table \"public\".\"wide\": 40000 keys, matched by a table scan on the source") != std::string::npos);
  daemon.Signal(SIGTERM);
  REQUIRE(daemon.Wait(30s) == 0);
}

}  // namespace pgtandem::test
