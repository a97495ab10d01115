// Rows cross in COPY's binary format when every column's type is built into
// PostgreSQL, as text otherwise; every path that copies rows ends equal.
#include <sstream>
#include <string>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "support/replication_setup.hpp"
#include "support/wait_until.hpp"

namespace pgtandem::test {
namespace {

using namespace std::chrono_literals;
using Catch::Matchers::Contains;

// Enough for a backlog covering the table to be copied whole.
constexpr int kRows = 12'000;

const std::string kSchema = R"sql(
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TABLE builtin (
    id integer PRIMARY KEY, i2 smallint, i8 bigint, n numeric(14,3), nn numeric, f4 real, f8 double precision,
    b boolean, t text, vc varchar(20), c char(5), bin bytea, ts timestamp, tstz timestamptz, d date, tm time,
    iv interval, u uuid, j json, jb jsonb, ia integer[], ta text[], r int4range, ip inet, nw cidr, mac macaddr,
    bits bit varying(8), cash money, pt point, words tsvector, doc xml, tm2 timetz);
CREATE TABLE usertyped (id integer PRIMARY KEY, m mood, p posint, ma mood[], note text);
)sql";

// Edge values on purpose: NaN and infinities, NULLs inside arrays, text with
// tabs, newlines, backslashes and non-ASCII, bytea with zero bytes.
std::string FillBuiltin(int from, int to) {
  return "INSERT INTO builtin SELECT i, (i % 30000)::smallint, i::bigint * 1000000007, i / 7.0, "
         "CASE WHEN i % 10 = 0 THEN 'NaN'::numeric ELSE i * 1.5 END, "
         "CASE WHEN i % 11 = 0 THEN 'Infinity'::real ELSE i / 3.0 END, "
         "CASE WHEN i % 13 = 0 THEN 'NaN'::float8 ELSE 1.0 / i END, i % 2 = 0, "
         "CASE WHEN i % 9 = 0 THEN NULL ELSE E'tab\\there\\nline \\\\ ü ' || i END, 'v' || i, 'c' || i % 100, "
         "decode(md5(i::text) || '00ff00', 'hex'), timestamp '2000-01-01' + i * interval '1 hour', "
         "CASE WHEN i % 17 = 0 THEN '-infinity'::timestamptz ELSE timestamptz '2026-01-01 00:00+02' + i * interval '1 s' END, "
         "date '2020-02-29' + i, time '12:34:56.789', i * interval '1 min 3.5 sec', md5(i::text)::uuid, "
         "json_build_object('k', i, 's', 'a\"b'), jsonb_build_object('a', i, 'b', ARRAY[1, 2]), ARRAY[i, NULL, -i], "
         "ARRAY['a b', NULL, E'q\"\\\\'], int4range(i, i + 10), ('10.0.' || i % 256 || '.1')::inet, "
         "('10.' || i % 256 || '.0.0/16')::cidr, '08:00:2b:01:02:03'::macaddr, (i % 256)::bit(8)::varbit, "
         "(i * 1.25)::money, point(i, -i), to_tsvector('simple', 'word' || i || ' other'), "
         "('<a n=\"' || i || '\">x</a>')::xml, timetz '01:02:03+05' "
         "FROM generate_series(" + std::to_string(from) + ", " + std::to_string(to) + ") i";
}

std::string FillUsertyped(int from, int to) {
  return "INSERT INTO usertyped SELECT i, (ARRAY['sad', 'ok', 'happy', NULL])[1 + i % 4]::mood, i, "
         "ARRAY['ok', NULL]::mood[], 'note ' || i FROM generate_series(" + std::to_string(from) + ", " +
         std::to_string(to) + ") i";
}

// Statements of the target's log that copy rows into `table`, by format.
struct CopiesIn {
  int binary = 0;
  int text = 0;
};

CopiesIn CopiesInto(const PgCluster& target, const std::string& table) {
  CopiesIn copies;
  std::istringstream log(target.ServerLog());
  for (std::string line; std::getline(log, line);) {
    if (line.find("statement: COPY \"public\".\"" + table + "\" (") == std::string::npos) continue;
    if (line.find("FROM STDIN (FORMAT binary)") != std::string::npos) {
      ++copies.binary;
    } else {
      ++copies.text;
    }
  }
  return copies;
}

}  // namespace

TEST_CASE("rows of built-in types cross in COPY's binary format and rows of user types as text, by bootstrap --copy, "
          "a recopy and the key path alike, and end equal", "[scenario]") {
  ReplicationSetup setup("copyformat", 1, kSchema, R"(["public.*"])");
  setup.Source().Exec(FillBuiltin(1, kRows) + "; " + FillUsertyped(1, kRows), kDatabase);
  setup.Target(0).Exec("ALTER SYSTEM SET log_statement = 'all'");
  setup.Target(0).Exec("SELECT pg_reload_conf()");
  setup.Install();
  RunResult copied = setup.Pgtandem({"bootstrap", "--target", "t0", "--copy"});
  INFO(copied.output);
  REQUIRE(copied.exit_code == 0);
  CHECK_THAT(copied.output, Contains(fmt::format("({} rows,", 2 * kRows)));
  REQUIRE(setup.DifferingTables(0).empty());

  // Every row changes while the daemon is stopped: each table is copied whole.
  setup.Source().Exec("ANALYZE builtin, usertyped", kDatabase);
  setup.Source().Exec("UPDATE builtin SET i8 = -i8, t = t || E'\\r'; UPDATE usertyped SET note = note || '!'",
                      kDatabase);
  ChildProcess daemon = setup.StartDaemon();
  setup.WaitEqual(60s);
  INFO(daemon.Output());
  // Counted exactly in either format.
  std::string whole = fmt::format("{0} changes reach batch.recopy_percent of its rows: copied whole ({0} rows)", kRows);
  CHECK_THAT(daemon.Output(), Contains("table public.builtin: " + whole));
  CHECK_THAT(daemon.Output(), Contains("table public.usertyped: " + whole));
  // A few rows change, some are new: key by key.
  setup.Source().Exec(FillBuiltin(kRows + 1, kRows + 10) + "; " + FillUsertyped(kRows + 1, kRows + 10) +
                          "; UPDATE builtin SET ia = NULL, f8 = '-Infinity' WHERE id < 5; "
                          "UPDATE usertyped SET m = 'happy' WHERE id < 5; DELETE FROM builtin WHERE id = 7",
                      kDatabase);
  setup.WaitEqual(60s);
  // A batch whose rows are all gone copies none, and says so.
  setup.Source().Exec("DELETE FROM builtin WHERE id = 8", kDatabase);
  WaitUntil([&] { return daemon.Output().find("1 deltas, 1 keys, 0 rows,") != std::string::npos; }, 60s,
            "the batch of the lone delete, counted as 0 rows");
  setup.WaitEqual(60s);

  CopiesIn builtin = CopiesInto(setup.Target(0), "builtin");
  CopiesIn usertyped = CopiesInto(setup.Target(0), "usertyped");
  CHECK(builtin.binary >= 3);
  CHECK(builtin.text == 0);
  CHECK(usertyped.binary == 0);
  CHECK(usertyped.text >= 3);
}

}  // namespace pgtandem::test
