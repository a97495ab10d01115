// Where a batch's budget of deltas runs out exactly at the end of one
// table's window, the tables after it in the same window are applied by the
// next batch, not skipped.
#include <string>

#include <catch2/catch.hpp>

#include "support/replication_setup.hpp"

namespace pgtandem::test {

using namespace std::chrono_literals;

TEST_CASE("a table whose changes fill the batch budget exactly leaves the window open for the tables after it",
          "[scenario]") {
  ReplicationSetup setup("budget", 1,
                         "CREATE TABLE first (id integer PRIMARY KEY);"
                         "CREATE TABLE second (id integer PRIMARY KEY);"
                         "CREATE TABLE third (id integer PRIMARY KEY);",
                         R"(["public.*"])");
  setup.WriteConfig(WithMaxRows(setup.DefaultConfig(), 500));
  setup.Install();
  // One transaction, exactly batch.max_rows deltas in each table: the first
  // batch holds all of one table's window and nothing more.
  setup.Source().Exec("BEGIN;"
                      "INSERT INTO first SELECT generate_series(1, 500);"
                      "INSERT INTO second SELECT generate_series(1, 500);"
                      "INSERT INTO third SELECT generate_series(1, 500);"
                      "COMMIT;",
                      kDatabase);
  ChildProcess daemon = setup.StartDaemon();
  setup.WaitEqual(60s);
  CHECK(setup.Target(0).Query1("SELECT count(*) FROM third", kDatabase) == "500");
}

}  // namespace pgtandem::test
