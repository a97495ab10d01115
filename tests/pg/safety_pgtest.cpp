// What must never happen quietly: forged truncations, reinstalls that skip changes, split windows that livelock.
#include <catch2/catch.hpp>

#include "support/replication_setup.hpp"
#include "support/wait_until.hpp"

namespace pgtandem::test {
namespace {

using namespace std::chrono_literals;
using Catch::Matchers::Contains;

const std::string kSchema = R"sql(
CREATE TABLE accounts (id integer PRIMARY KEY, owner text);
CREATE TABLE handles (id integer PRIMARY KEY, handle text NOT NULL UNIQUE);
)sql";

void SetConfigValue(ReplicationSetup& setup, const std::string& from, const std::string& to) {
  std::string config = setup.DefaultConfig();
  auto at = config.find(from);
  REQUIRE(at != std::string::npos);
  config.replace(at, from.size(), to);
  setup.WriteConfig(config);
}

}  // namespace

TEST_CASE("a role without privileges cannot log a TRUNCATE for the applier to replay", "[pg]") {
  ReplicationSetup setup("forge", 1, kSchema, R"(["public.*"])");
  REQUIRE(setup.Pgtandem({"install"}).exit_code == 0);
  setup.Source().Exec("INSERT INTO accounts SELECT g, 'o' FROM generate_series(1, 10) g", kDatabase);
  setup.Source().Exec("CREATE ROLE mallory LOGIN; GRANT CREATE ON SCHEMA public TO mallory", kDatabase);
  auto as_mallory = [&](const std::string& sql) { setup.Source().Exec("SET ROLE mallory; " + sql, kDatabase); };
  REQUIRE_THROWS_WITH(as_mallory("INSERT INTO pgtandem.truncate_log (table_id, relid) "
                                 "SELECT id, relid FROM pgtandem.captured_table"),
                      Contains("permission denied"));
  REQUIRE_THROWS_WITH(as_mallory("CREATE TABLE mine (id int); CREATE TRIGGER t AFTER TRUNCATE ON mine "
                                 "FOR EACH STATEMENT EXECUTE FUNCTION pgtandem.capture_truncate('1')"),
                      Contains("permission denied"));
  // Row deltas stay open to every writer; a forged one only re-copies the source's state.
  as_mallory("INSERT INTO pgtandem.d_1 (id) VALUES (3), (99)");
  ChildProcess daemon = setup.StartDaemon();
  setup.WaitEqual(30s);
  REQUIRE(setup.Target(0).Query1("SELECT count(*) FROM accounts", kDatabase) == "10");
}

TEST_CASE("a target whose progress predates a reinstall of capture is refused, not silently caught up", "[pg]") {
  ReplicationSetup setup("reinstall", 1, kSchema, R"(["public.*"])");
  REQUIRE(setup.Pgtandem({"install"}).exit_code == 0);
  {
    ChildProcess daemon = setup.StartDaemon();
    setup.Source().Exec("INSERT INTO accounts VALUES (1, 'a')", kDatabase);
    setup.WaitEqual(30s);
  }
  REQUIRE(setup.Pgtandem({"uninstall"}).exit_code == 0);
  setup.Source().Exec("INSERT INTO accounts VALUES (2, 'never captured')", kDatabase);
  REQUIRE(setup.Pgtandem({"install"}).exit_code == 0);
  ChildProcess daemon = setup.StartDaemon();
  WaitUntil([&] { return daemon.Output().find("installed anew") != std::string::npos; }, 30s,
            "the daemon to refuse the target");
  REQUIRE_THAT(daemon.Output(), Contains("must be bootstrapped again"));
  // The daemon logs the refusal first, then records it on the source for status.
  std::string shown;
  WaitUntil([&] { return (shown = setup.Pgtandem({"status"}).output).find("error") != std::string::npos; }, 30s,
            "status to show the refused target in state error");
  REQUIRE_THAT(shown, Contains("installed anew"));
}

TEST_CASE("unique values swapped inside a window split into pieces are applied without a livelock", "[pg]") {
  ReplicationSetup setup("split", 1, kSchema, R"(["public.*"])");
  setup.Source().Exec("INSERT INTO handles SELECT g, 'h' || g FROM generate_series(1, 20) g", kDatabase);
  setup.Target(0).Exec("INSERT INTO handles SELECT g, 'h' || g FROM generate_series(1, 20) g", kDatabase);
  SetConfigValue(setup, "\"max_rows\": 500", "\"max_rows\": 1");
  REQUIRE(setup.Pgtandem({"install"}).exit_code == 0);
  setup.Source().Exec(R"(
BEGIN;
UPDATE handles SET handle = 'tmp' WHERE id = 1;
UPDATE handles SET handle = 'h1' WHERE id = 2;
UPDATE handles SET handle = 'h2' WHERE id = 1;
COMMIT;)", kDatabase);
  ChildProcess daemon = setup.StartDaemon();
  setup.WaitEqual(30s);
  REQUIRE_THAT(daemon.Output(), Contains("hit a unique constraint"));
}

}  // namespace pgtandem::test
