// compare and repair against real clusters: exact keys of a damaged target, repair through the daemon, steady writes.
#include <csignal>
#include <map>
#include <set>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/random_workload.hpp"
#include "support/replication_setup.hpp"
#include "support/test_seed.hpp"
#include "support/wait_until.hpp"

namespace pgtandem::test {
namespace {

using namespace std::chrono_literals;

// Rows in every table of kSampleSchema; scratch is large enough to be split
// into several key ranges, and those split again before keys are listed.
const std::string kSampleRows = R"sql(
INSERT INTO customers (id, name, email, mood, attrs, tags, balance, photo)
SELECT g, 'c' || g, 'c' || g || '@example.com',
       CASE WHEN g % 3 = 0 THEN NULL ELSE (ARRAY['sad', 'ok', 'happy'])[1 + g % 3]::mood END,
       jsonb_build_object('g', g), ARRAY['a', NULL, 'b c'], g / 7.0,
       CASE WHEN g % 2 = 0 THEN decode(md5(g::text), 'hex') END
  FROM generate_series(1, 500) g;
SELECT setval('customers_id_seq', 500);
INSERT INTO "Sales Dept"."Orders"
SELECT md5('o' || g)::uuid, 1 + g % 500, 1 + g % 9, CASE WHEN g % 4 = 0 THEN NULL ELSE 'note ' || g END, NULL
  FROM generate_series(1, 300) g;
INSERT INTO order_lines SELECT o."Order ID", l, 'p' || l, l * 1.5 FROM "Sales Dept"."Orders" o, generate_series(1, 3) l;
INSERT INTO events SELECT g, (ARRAY['eu', 'us', 'apac'])[1 + g % 3], jsonb_build_object('v', g) FROM generate_series(1, 3000) g;
INSERT INTO "Weird ""Name""-ü" SELECT 'k' || g, g, tstzrange('2020-01-01', NULL) FROM generate_series(1, 100) g;
INSERT INTO "Weird ""Name""-ü" VALUES ('a "quoted", key', 1, NULL);
INSERT INTO scratch SELECT g, md5(g::text) FROM generate_series(1, 30000) g;
INSERT INTO gen SELECT g, g FROM generate_series(1, 100) g;
)sql";

// Written straight into the target, with its triggers and foreign keys off
// (no cascades), as a careless DBA or a broken tool would.
const std::string kDamage = R"sql(
SET session_replication_role = replica;
UPDATE customers SET balance = balance + 1 WHERE id = 10;
UPDATE customers SET mood = 'happy' WHERE id = 3;
DELETE FROM customers WHERE id = 20;
INSERT INTO customers (id, name) VALUES (9001, 'only on the target');
UPDATE "Sales Dept"."Orders" SET note = '' WHERE "Order ID" = md5('o4')::uuid;
DELETE FROM order_lines WHERE order_id = md5('o7')::uuid AND line = 2;
UPDATE order_lines SET price = 0 WHERE order_id = md5('o8')::uuid AND line = 3;
DELETE FROM events WHERE id = 5;
UPDATE events SET payload = NULL WHERE id = 6;
UPDATE "Weird ""Name""-ü" SET "V" = -1 WHERE "k ey" = 'a "quoted", key';
INSERT INTO "Weird ""Name""-ü" VALUES ('new, "odd" key', 2, NULL);
UPDATE scratch SET v = 'x' WHERE id = 12345;
DELETE FROM scratch WHERE id = 25000;
INSERT INTO scratch VALUES (30001, 'extra');
)sql";

struct CompareRun {
  int exit_code = 0;
  std::string output;
  nlohmann::json report;
};

// The JSON is the last thing printed; the daemon's debug log lines on stderr come before it.
CompareRun CompareJson(ReplicationSetup& setup) {
  RunResult result = setup.Pgtandem({"compare", "--json", "--examples", "100"});
  UNSCOPED_INFO(result.output);
  auto start = result.output.find("\n{\n");
  start = result.output.rfind("{\n", 0) == 0 ? 0 : start;
  REQUIRE(start != std::string::npos);
  return {result.exit_code, result.output, nlohmann::json::parse(result.output.substr(start))};
}

// Per table name: kind -> the example keys, each as "col=value,col=value".
std::map<std::string, std::map<std::string, std::set<std::string>>> Differences(const nlohmann::json& report) {
  std::map<std::string, std::map<std::string, std::set<std::string>>> out;
  for (const auto& table : report["syncs"][0]["targets"][0]["tables"]) {
    for (const auto& [kind, keys] : table["examples"].items()) {
      for (const auto& key : keys) {
        std::string text;
        for (const auto& [column, value] : key.items()) text += (text.empty() ? "" : ",") + column + "=" + value.get<std::string>();
        out[table["table"].get<std::string>()][kind].insert(text);
      }
    }
  }
  return out;
}

std::set<std::string> Keys(std::initializer_list<std::string> keys) { return keys; }

size_t Occurrences(const std::string& text, const std::string& part) {
  size_t count = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++count;
  return count;
}

}  // namespace

TEST_CASE("compare reports exactly the keys damaged on a target, and repair through the daemon makes it equal",
          "[scenario]") {
  ReplicationSetup setup("compare", 1, kSampleSchema, kSampleTables);
  REQUIRE(setup.Pgtandem({"install"}).exit_code == 0);
  ChildProcess daemon = setup.StartDaemon();
  setup.Source().Exec(kSampleRows, kDatabase);
  setup.WaitEqual(60s);
  // Statistics make compare cut scratch into first-level ranges from a sample, which are then split again.
  setup.Source().Exec("ANALYZE", kDatabase);

  CompareRun clean = CompareJson(setup);
  REQUIRE(clean.exit_code == 0);
  REQUIRE(clean.report["equal"] == true);

  setup.Target(0).Exec(kDamage, kDatabase);
  CompareRun damaged = CompareJson(setup);
  REQUIRE(damaged.exit_code == 1);
  REQUIRE(damaged.report["equal"] == false);
  auto found = Differences(damaged.report);
  std::string o4 = setup.Source().Query1("SELECT md5('o4')::uuid", kDatabase);
  std::string o7 = setup.Source().Query1("SELECT md5('o7')::uuid", kDatabase);
  std::string o8 = setup.Source().Query1("SELECT md5('o8')::uuid", kDatabase);
  CHECK(found["public.customers"]["missing"] == Keys({"id=20"}));
  CHECK(found["public.customers"]["extra"] == Keys({"id=9001"}));
  CHECK(found["public.customers"]["different"] == Keys({"id=3", "id=10"}));
  CHECK(found["\"Sales Dept\".\"Orders\""]["different"] == Keys({"Order ID=" + o4}));
  CHECK(found["public.order_lines"]["missing"] == Keys({"line=2,order_id=" + o7}));
  CHECK(found["public.order_lines"]["different"] == Keys({"line=3,order_id=" + o8}));
  CHECK(found["public.events"]["missing"] == Keys({"id=5,region=apac"}));
  CHECK(found["public.events"]["different"] == Keys({"id=6,region=eu"}));
  CHECK(found["public.\"Weird \"\"Name\"\"-ü\""]["different"] == Keys({"k ey=a \"quoted\", key"}));
  CHECK(found["public.\"Weird \"\"Name\"\"-ü\""]["extra"] == Keys({"k ey=new, \"odd\" key"}));
  CHECK(found["public.scratch"]["missing"] == Keys({"id=25000"}));
  CHECK(found["public.scratch"]["extra"] == Keys({"id=30001"}));
  CHECK(found["public.scratch"]["different"] == Keys({"id=12345"}));
  CHECK(found["public.gen"].empty());
  for (const auto& table : damaged.report["syncs"][0]["targets"][0]["tables"]) {
    INFO(table.dump());
    CHECK(table["unverified"] == 0);
    CHECK(table["complete"] == true);
    CHECK(table["missing"].get<size_t>() + table["extra"].get<size_t>() + table["different"].get<size_t>() ==
          found[table["table"].get<std::string>()]["missing"].size() +
              found[table["table"].get<std::string>()]["extra"].size() +
              found[table["table"].get<std::string>()]["different"].size());
  }

  RunResult repaired = setup.Pgtandem({"repair"});
  INFO(repaired.output);
  REQUIRE(repaired.exit_code == 0);
  REQUIRE_THAT(repaired.output, Catch::Matchers::Contains("queued 14 key(s)"));
  setup.WaitEqual(60s);
  CompareRun after = CompareJson(setup);
  REQUIRE(after.exit_code == 0);
  REQUIRE(after.report["equal"] == true);
  daemon.Signal(SIGTERM);
  REQUIRE(daemon.Wait(30s) == 0);
}

TEST_CASE("compare hashes each table whole when the target has applied every change, purged or not",
          "[scenario]") {
  ReplicationSetup setup("comparewhole", 1, kSampleSchema, kSampleTables);
  // Applied deltas stay on the source, as in the seconds after the writes stop.
  setup.WriteConfig(WithPurgeInterval(setup.DefaultConfig(), 86400000));
  REQUIRE(setup.Pgtandem({"install"}).exit_code == 0);
  ChildProcess daemon = setup.StartDaemon();
  setup.Source().Exec(kSampleRows, kDatabase);
  setup.WaitEqual(60s);
  setup.Source().Exec("ANALYZE", kDatabase);
  REQUIRE(setup.Source().Query1("SELECT count(*) FROM pgtandem.d_1", kDatabase) != "0");

  CompareRun clean = CompareJson(setup);
  REQUIRE(clean.exit_code == 0);
  REQUIRE(clean.report["equal"] == true);
  size_t tables = clean.report["syncs"][0]["targets"][0]["tables"].size();
  CHECK(Occurrences(clean.output, "the whole table is equal") == tables);
  CHECK_THAT(clean.output, !Catch::Matchers::Contains("key range(s) compared"));

  // A damaged table no longer sums equal as a whole, and falls back to its ranges.
  setup.Target(0).Exec(kDamage, kDatabase);
  CompareRun damaged = CompareJson(setup);
  REQUIRE(damaged.exit_code == 1);
  CHECK(Differences(damaged.report)["public.scratch"]["different"] == Keys({"id=12345"}));
  CHECK(Differences(damaged.report)["public.gen"].empty());
  daemon.Signal(SIGTERM);
  REQUIRE(daemon.Wait(30s) == 0);
}

TEST_CASE("compare during a steady write load on a healthy pair reports no difference, ten runs in a row",
          "[scenario]") {
  uint64_t seed = TestSeed("compare under load");
  ReplicationSetup setup("compareload", 1, kSampleSchema, kSampleTables);
  REQUIRE(setup.Pgtandem({"install"}).exit_code == 0);
  ChildProcess daemon = setup.StartDaemon();
  setup.Source().Exec(kSampleRows, kDatabase);
  RandomWorkload load(setup.Source().Dsn(kDatabase), seed, 2);
  for (int run = 1; run <= 10; ++run) {
    int64_t before = load.Committed();
    CompareRun result = CompareJson(setup);
    INFO("run " << run);
    INFO(result.output);
    REQUIRE(result.exit_code == 0);
    REQUIRE(result.report["equal"] == true);
    // Each table is hashed whole, the keys changed since the target's progress
    // taken out; only a table truncated since (the load truncates scratch and
    // a partition of events) goes to its key ranges.
    size_t tables = result.report["syncs"][0]["targets"][0]["tables"].size();
    size_t truncated = Occurrences(result.output, "truncated since the target's progress");
    CHECK(Occurrences(result.output, "the whole table is equal") + truncated == tables);
    CHECK(Occurrences(result.output, "the whole table differs") == truncated);
    REQUIRE_FALSE(daemon.TryWait().has_value());
    // Each run must have had writes going on beside it.
    WaitUntil([&] { return load.Committed() > before; }, 10s, "the workload to commit during the run");
  }
  load.Stop();
  setup.WaitEqual(60s);
  daemon.Signal(SIGTERM);
  REQUIRE(daemon.Wait(30s) == 0);
}

TEST_CASE("compare during a steady write load reports exactly the keys damaged on the target", "[scenario]") {
  uint64_t seed = TestSeed("compare damage under load");
  ReplicationSetup setup("comparedamageload", 1, kSampleSchema, kSampleTables);
  REQUIRE(setup.Pgtandem({"install"}).exit_code == 0);
  ChildProcess daemon = setup.StartDaemon();
  setup.Source().Exec(kSampleRows, kDatabase);
  setup.WaitEqual(60s);
  RandomWorkload load(setup.Source().Dsn(kDatabase), seed, 2);
  WaitUntil([&] { return load.Committed() > 20; }, 10s, "the workload to get going");
  // Customers above 400 and below 1 are keys the load never writes.
  setup.Target(0).Exec(R"sql(
SET session_replication_role = replica;
UPDATE customers SET balance = balance + 1 WHERE id = 450;
DELETE FROM customers WHERE id = 460;
INSERT INTO customers (id, name) VALUES (-5, 'only on the target');
)sql", kDatabase);
  int64_t before = load.Committed();
  CompareRun damaged = CompareJson(setup);
  INFO(damaged.output);
  REQUIRE(damaged.exit_code == 1);
  auto found = Differences(damaged.report);
  CHECK(found["public.customers"]["different"] == Keys({"id=450"}));
  CHECK(found["public.customers"]["missing"] == Keys({"id=460"}));
  CHECK(found["public.customers"]["extra"] == Keys({"id=-5"}));
  found.erase("public.customers");
  for (const auto& [table, kinds] : found) {
    INFO(table);
    CHECK(kinds.empty());
  }
  CHECK(load.Committed() > before);

  RunResult repaired = setup.Pgtandem({"repair"});
  INFO(repaired.output);
  REQUIRE(repaired.exit_code == 0);
  load.Stop();
  setup.WaitEqual(60s);
  daemon.Signal(SIGTERM);
  REQUIRE(daemon.Wait(30s) == 0);
}

}  // namespace pgtandem::test
