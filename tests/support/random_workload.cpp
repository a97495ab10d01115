// The sample schema and the random operations run against it.
#include "support/random_workload.hpp"

#include <chrono>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>
#include <libpq-fe.h>

namespace pgtandem::test {

const std::string kSampleSchema = R"sql(
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE SCHEMA "Sales Dept";
CREATE TABLE customers (
    id bigserial PRIMARY KEY, name text NOT NULL, email text UNIQUE, mood mood, attrs jsonb, tags text[],
    balance numeric(12,2), created timestamptz DEFAULT now(), photo bytea);
CREATE TABLE "Sales Dept"."Orders" (
    "Order ID" uuid PRIMARY KEY, customer_id bigint REFERENCES customers ON DELETE CASCADE,
    qty posint, note text, big text);
CREATE TABLE order_lines (
    order_id uuid REFERENCES "Sales Dept"."Orders" ON DELETE CASCADE, line integer, product text, price numeric,
    PRIMARY KEY (order_id, line));
CREATE TABLE events (id bigint, region text, payload jsonb, at timestamptz DEFAULT now(), PRIMARY KEY (id, region))
    PARTITION BY LIST (region);
CREATE TABLE events_eu PARTITION OF events FOR VALUES IN ('eu');
CREATE TABLE events_us PARTITION OF events FOR VALUES IN ('us');
CREATE TABLE events_apac PARTITION OF events FOR VALUES IN ('apac');
CREATE TABLE "Weird ""Name""-ü" ("k ey" text PRIMARY KEY, "V" integer, ts tstzrange);
CREATE TABLE scratch (id integer PRIMARY KEY, v text);
CREATE TABLE gen (id integer PRIMARY KEY, a integer, b integer GENERATED ALWAYS AS (a * 2) STORED);
)sql";

const std::string kSampleTables = R"(["public.*", "Sales Dept.*"])";

namespace {

// Each operation is SQL over one random number; conflicts are expected.
std::string Operation(std::mt19937_64& rng, bool truncates) {
  uint64_t x = rng() % 100000;
  uint64_t c = 1 + rng() % 400;  // customer ids stay in a small range so updates hit rows
  switch (rng() % 17) {
    case 0: case 1:
      return fmt::format(
          "INSERT INTO customers (name, email, mood, attrs, tags, balance, photo) VALUES ('n{0}', 'c{0}@example.com', "
          "(ARRAY['sad','ok','happy',NULL])[1 + {0} % 4]::mood, jsonb_build_object('k', {0}, 'a', jsonb_build_array(1, "
          "'two', NULL)), ARRAY['a', 'b c', NULL, 'q\"uote'], {0} / 7.0, decode(md5('{0}'), 'hex')) "
          "ON CONFLICT DO NOTHING", x);
    case 2:
      return fmt::format("UPDATE customers SET balance = balance + 1.25, attrs = attrs || '{{\"u\": 1}}' WHERE id = {}", c);
    case 3:
      return fmt::format("UPDATE customers SET mood = NULL, tags = NULL, photo = NULL WHERE id = {}", c);
    case 4:
      return fmt::format("DELETE FROM customers WHERE id = {}", c);
    case 5: case 6:
      return fmt::format(
          "WITH o AS (INSERT INTO \"Sales Dept\".\"Orders\" SELECT gen_random_uuid(), id, 1 + {0} % 9, 'note {0}', "
          "CASE WHEN {0} % 10 = 0 THEN (SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 300)) END "
          "FROM customers WHERE id = {1} RETURNING \"Order ID\") "
          "INSERT INTO order_lines SELECT \"Order ID\", g, 'p' || g, g * 1.5 FROM o, generate_series(1, 3) g",
          x, c);
    case 7:
      return fmt::format("UPDATE \"Sales Dept\".\"Orders\" SET qty = qty + 1, note = NULL WHERE \"Order ID\" IN "
                         "(SELECT \"Order ID\" FROM \"Sales Dept\".\"Orders\" ORDER BY 1 OFFSET {} LIMIT 1)", x % 50);
    case 8:
      return fmt::format("UPDATE order_lines SET line = line + 100 WHERE (order_id, line) IN "
                         "(SELECT order_id, line FROM order_lines ORDER BY 1, 2 OFFSET {} LIMIT 1)", x % 80);
    case 9:
      return fmt::format("INSERT INTO events VALUES ({0}, (ARRAY['eu','us','apac'])[1 + {0} % 3], "
                         "jsonb_build_object('v', {0})) ON CONFLICT DO NOTHING", x % 3000);
    case 10:
      return fmt::format("UPDATE events SET region = CASE region WHEN 'eu' THEN 'us' WHEN 'us' THEN 'apac' ELSE 'eu' "
                         "END, payload = NULL WHERE id = {}", x % 3000);
    case 11:
      return fmt::format("DELETE FROM events WHERE id = {}", x % 3000);
    case 12:
      return fmt::format("INSERT INTO \"Weird \"\"Name\"\"-ü\" VALUES ('k{0}', {1}, tstzrange(now(), NULL)) "
                         "ON CONFLICT (\"k ey\") DO UPDATE SET \"V\" = EXCLUDED.\"V\"", x % 50, x);
    case 13:
      return fmt::format("INSERT INTO scratch SELECT g, md5(g::text) FROM generate_series({0}, {0} + 5) g "
                         "ON CONFLICT (id) DO UPDATE SET v = 'again'", x % 1000);
    case 14:
      return truncates && rng() % 20 == 0 ? "TRUNCATE scratch" : fmt::format("DELETE FROM scratch WHERE id = {}", x % 1000);
    case 15:
      return truncates && rng() % 30 == 0 ? "TRUNCATE events_apac" : fmt::format("UPDATE gen SET a = a + 1 WHERE id = {}", x % 100);
    default:
      return fmt::format("INSERT INTO gen VALUES ({}, {}) ON CONFLICT (id) DO UPDATE SET a = EXCLUDED.a", x % 100, x);
  }
}

bool Exec(PGconn* conn, const std::string& sql) {
  PGresult* result = PQexec(conn, sql.c_str());
  ExecStatusType status = PQresultStatus(result);
  PQclear(result);
  return status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
}

}  // namespace

RandomWorkload::RandomWorkload(std::string dsn, uint64_t seed, int writers, bool truncates, bool reconnect)
    : dsn_(std::move(dsn)), truncates_(truncates), reconnect_(reconnect) {
  for (int i = 0; i < writers; ++i) threads_.emplace_back([this, seed, i] { Write(seed * 1000 + static_cast<uint64_t>(i)); });
}

RandomWorkload::~RandomWorkload() {
  stop_ = true;
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void RandomWorkload::Stop() {
  stop_ = true;
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  if (!failures_.empty()) throw std::runtime_error("workload writer failed: " + failures_.front());
}

void RandomWorkload::Write(uint64_t seed) {
  static std::mutex failures_mutex;
  std::mt19937_64 rng(seed);
  PGconn* conn = PQconnectdb(dsn_.c_str());
  while (!stop_) {
    if (PQstatus(conn) != CONNECTION_OK && reconnect_) {
      PQfinish(conn);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the server is restarting
      conn = PQconnectdb(dsn_.c_str());
      continue;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
      std::lock_guard lock(failures_mutex);
      failures_.push_back(PQerrorMessage(conn));
      break;
    }
    Exec(conn, "BEGIN");
    bool ok = true;
    for (uint64_t n = 1 + rng() % 4; n > 0 && ok; --n) ok = Exec(conn, Operation(rng, truncates_));
    bool commit = ok && rng() % 20 != 0;
    Exec(conn, commit ? "COMMIT" : "ROLLBACK");
    if (commit) ++committed_;
  }
  PQfinish(conn);
}

}  // namespace pgtandem::test
