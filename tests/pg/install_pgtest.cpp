// install / uninstall through the CLI: idempotence, bad input, least privilege, hostile names.
#include <catch2/catch.hpp>

#include "support/replication_setup.hpp"
#include "support/wait_until.hpp"

namespace pgtandem::test {
namespace {

using namespace std::chrono_literals;
using Catch::Matchers::Contains;

const std::string kSchema = R"sql(
CREATE TABLE accounts (id integer PRIMARY KEY, owner text);
CREATE TABLE audit_log (at timestamptz, what text);
CREATE TABLE notes (id integer, body text);
CREATE SCHEMA "Billing";
CREATE TABLE "Billing"."Invoices" (id integer PRIMARY KEY, total numeric);
)sql";

std::string PgtandemObjects(PgCluster& cluster) {
  return cluster.Query1(R"(
SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = 'pgtandem')
     + (SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'pgtandem%')
     + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'pgtandem')
     + (SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE 'pgtandem%'))", kDatabase);
}

}  // namespace

TEST_CASE("install is idempotent, adds tables the config gains, and uninstall leaves nothing", "[pg]") {
  ReplicationSetup setup("install", 1, kSchema, R"(["public.accounts"])");
  RunResult first = setup.Pgtandem({"install"});
  INFO(first.output);
  REQUIRE(first.exit_code == 0);
  REQUIRE_THAT(first.output, Contains("added    public.accounts"));
  RunResult again = setup.Pgtandem({"install", "--sync", "app"});
  REQUIRE(again.exit_code == 0);
  REQUIRE_THAT(again.output, Contains("existing public.accounts"));

  std::string config = setup.DefaultConfig();
  config.replace(config.find(R"(["public.accounts"])"), 20, R"(["public.accounts", "Billing.*"])");
  setup.WriteConfig(config);
  RunResult grown = setup.Pgtandem({"install"});
  INFO(grown.output);
  REQUIRE(grown.exit_code == 0);
  REQUIRE_THAT(grown.output, Contains("added    \"Billing\".\"Invoices\""));
  REQUIRE(setup.Source().Query1("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'pgtandem%'", kDatabase) == "4");

  RunResult removed = setup.Pgtandem({"uninstall", "--node", "source"});
  INFO(removed.output);
  REQUIRE(removed.exit_code == 0);
  REQUIRE(PgtandemObjects(setup.Source()) == "0");
}

TEST_CASE("tables without a primary key are all listed and nothing is installed", "[pg]") {
  ReplicationSetup setup("nokey", 1, kSchema, R"(["public.*"])");
  RunResult result = setup.Pgtandem({"install"});
  REQUIRE(result.exit_code == 6);
  REQUIRE_THAT(result.output, Contains("2 selected table(s) have no primary key: public.audit_log, public.notes"));
  REQUIRE_THAT(result.output, Contains("\"exclude\""));
  REQUIRE(PgtandemObjects(setup.Source()) == "0");
}

TEST_CASE("a pattern that matches no table is named, and nothing is installed", "[pg]") {
  ReplicationSetup setup("nomatch", 1, kSchema, R"(["public.accounts", "billing.*"])");
  RunResult result = setup.Pgtandem({"install"});
  REQUIRE(result.exit_code == 6);
  REQUIRE_THAT(result.output, Contains("pattern \"billing.*\""));
  REQUIRE_THAT(result.output, Contains("matches no table"));
  REQUIRE(PgtandemObjects(setup.Source()) == "0");
}

TEST_CASE("a malformed config is refused with the key's path and exit code 3", "[pg]") {
  ReplicationSetup setup("badconfig", 1, kSchema, R"(["public.accounts"])");
  std::string config = setup.DefaultConfig();
  config.replace(config.find("\"tables\""), 8, "\"tabels\"");
  setup.WriteConfig(config);
  RunResult result = setup.Pgtandem({"install"});
  REQUIRE(result.exit_code == 3);
  REQUIRE_THAT(result.output, Contains("syncs[0].tabels"));
  RunResult missing = Run({PgtandemBinary(), "--config", "/nonexistent/pgtandem.json", "status"});
  REQUIRE(missing.exit_code == 3);
  REQUIRE_THAT(missing.output, Contains("/nonexistent/pgtandem.json"));
}

TEST_CASE("an unreachable source is named with the reason and exit code 4", "[pg]") {
  ReplicationSetup setup("unreachable", 1, kSchema, R"(["public.accounts"])");
  std::string config = setup.DefaultConfig();
  std::string port = std::to_string(setup.Source().Port());
  config.replace(config.find("port=" + port), 5 + port.size(), "port=1");
  setup.WriteConfig(config);
  RunResult result = setup.Pgtandem({"install"});
  INFO(result.output);
  REQUIRE(result.exit_code == 4);
  REQUIRE_THAT(result.output, Contains("source node 'source'"));
  REQUIRE_THAT(result.output, Contains("Connection refused"));
}

TEST_CASE("every command has --help", "[pg]") {
  for (const char* command : {"install", "uninstall", "run", "status"}) {
    RunResult help = Run({PgtandemBinary(), command, "--help"});
    INFO(command);
    REQUIRE(help.exit_code == 0);
    REQUIRE_THAT(help.output, Contains(std::string("Usage: pgtandem [--config FILE] ") + command));
  }
  RunResult top = Run({PgtandemBinary(), "--help"});
  REQUIRE(top.exit_code == 0);
  RunResult unknown = Run({PgtandemBinary(), "--config", "x.json", "instal"});
  REQUIRE(unknown.exit_code == 2);
  REQUIRE_THAT(unknown.output, Contains("unknown command \"instal\""));
}

TEST_CASE("hostile identifiers are quoted everywhere and replicate", "[pg]") {
  const std::string schema = R"sql(
CREATE SCHEMA "x""; DROP TABLE victim; --";
CREATE TABLE victim (id integer PRIMARY KEY);
CREATE TABLE "x""; DROP TABLE victim; --"."Robert'); DROP TABLE victim;--" ("k""ey" text PRIMARY KEY, "$1" text);
)sql";
  ReplicationSetup setup("hostile", 1, schema, R"(["public.*", "\"x\"\"; DROP TABLE victim; --\".*"])");
  setup.Install();
  ChildProcess daemon = setup.StartDaemon();
  setup.Source().Exec(R"(INSERT INTO "x""; DROP TABLE victim; --"."Robert'); DROP TABLE victim;--" VALUES ('a''b', '$$'))",
                      kDatabase);
  setup.Source().Exec("INSERT INTO victim VALUES (1)", kDatabase);
  setup.WaitEqual(30s);
  REQUIRE(setup.Target(0).Query1("SELECT count(*) FROM victim", kDatabase) == "1");
}

}  // namespace pgtandem::test
