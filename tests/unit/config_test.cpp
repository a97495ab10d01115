// Config: the JSON shape, defaults from the settings table, and every error class.
#include "pgtandem/config.hpp"

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "pgtandem/error.hpp"

namespace pgtandem {
namespace {

using Json = nlohmann::json;

Json Minimal() {
  return Json::parse(R"({
    "nodes": {"old": {"dsn": "host=db1 dbname=app user=migrator"},
              "new": {"dsn": "postgresql://migrator:s3cret@db2/app"}},
    "syncs": [{"name": "app", "source": "old", "targets": ["new"], "tables": ["public.*"]}]
  })");
}

Config Parse(const Json& json) { return ParseConfig(json.dump(2), "test.json"); }

const SettingSpec& Spec(std::string_view path) {
  for (const SettingSpec& spec : SettingSpecs()) {
    if (spec.path == path) return spec;
  }
  FAIL("no setting " << path);
  throw;
}

TEST_CASE("Config parses the full example") {
  const Config config = ParseConfig(R"({
    "nodes": { "old": { "dsn": "host=db1 dbname=app user=migrator" },
               "new": { "dsn": "host=db2 dbname=app user=migrator" },
               "dr":  { "dsn": "host=db3 dbname=app user=migrator" } },
    "syncs": [ { "name": "app", "source": "old", "targets": ["new", "dr"],
                 "tables": ["public.*", "Billing.Invoices"], "exclude": ["public.audit_log"],
                 "sequences": ["public.*"] } ],
    "batch":  { "max_rows": 1000, "max_bytes": 1048576 },
    "daemon": { "threads": 4, "poll_interval_ms": 500, "purge_interval_ms": 20000,
                "retry_initial_ms": 100, "retry_max_ms": 5000, "connect_timeout_s": 3 },
    "log":    { "level": "debug" } })",
                                    "/etc/pgtandem/pgtandem.json");
  CHECK(config.origin == "/etc/pgtandem/pgtandem.json");
  REQUIRE(config.nodes.size() == 3);
  CHECK(config.Node("new").name == "new");
  CHECK(config.Node("new").dsn.Describe() == "host=db2 dbname=app user=migrator");
  const SyncConfig& sync = config.Sync("app");
  CHECK(sync.source == "old");
  CHECK(sync.targets == std::vector<std::string>{"new", "dr"});
  REQUIRE(sync.tables.size() == 2);
  CHECK(sync.tables[1].Matches("Billing", "Invoices"));
  REQUIRE(sync.exclude.size() == 1);
  CHECK(sync.exclude[0].Text() == "public.audit_log");
  CHECK(sync.sequences.size() == 1);
  CHECK(config.batch.max_rows == 1000);
  CHECK(config.batch.max_bytes == 1048576);
  CHECK(config.daemon.threads == 4);
  CHECK(config.daemon.poll_interval_ms == 500);
  CHECK(config.daemon.purge_interval_ms == 20000);
  CHECK(config.daemon.retry_initial_ms == 100);
  CHECK(config.daemon.retry_max_ms == 5000);
  CHECK(config.daemon.connect_timeout_s == 3);
  CHECK(config.log.level == "debug");
}

TEST_CASE("Config allows comments") {
  const Config config = ParseConfig(R"({
    // Where the data lives today.
    "nodes": {"old": {"dsn": "host=db1"}, /* and where it goes */ "new": {"dsn": "host=db2"}},
    "syncs": [{"name": "app", "source": "old", "targets": ["new"], "tables": ["public.*"]}]
  })",
                                    "c.json");
  CHECK(config.nodes.size() == 2);
}

TEST_CASE("Config fills omitted settings from the settings table") {
  const Config config = Parse(Minimal());
  CHECK(config.batch.max_rows == 1000000);
  CHECK(config.batch.max_bytes == 268435456);
  CHECK(config.daemon.threads == 2);
  CHECK(config.daemon.poll_interval_ms == 1000);
  CHECK(config.daemon.purge_interval_ms == 10000);
  CHECK(config.daemon.sequence_sync_interval_ms == 5000);
  CHECK(config.daemon.retry_initial_ms == 250);
  CHECK(config.daemon.retry_max_ms == 30000);
  CHECK(config.daemon.connect_timeout_s == 10);
  CHECK(config.daemon.io_timeout_s == 30);
  CHECK(config.daemon.lock_timeout_s == 60);
  CHECK(config.log.level == "info");
  CHECK(config.Sync("app").exclude.empty());
  CHECK(config.Sync("app").sequences.empty());
  for (const SettingSpec& spec : SettingSpecs()) {
    CHECK(spec.current(config) == spec.DefaultText());
    CHECK(spec.current(Config()) == spec.DefaultText());
  }
}

TEST_CASE("Config settings table is complete and consistent") {
  CHECK(SettingSpecs().size() == 17);
  for (const SettingSpec& spec : SettingSpecs()) {
    INFO(spec.path);
    CHECK(spec.path.find('.') != std::string_view::npos);
    CHECK_FALSE(spec.description.empty());
    REQUIRE(spec.current != nullptr);
    if (spec.type == SettingType::kInteger) {
      REQUIRE(spec.set_integer != nullptr);
      CHECK_FALSE(spec.unit.empty());
      CHECK(spec.min <= spec.default_integer);
      CHECK(spec.default_integer <= spec.max);
      Config config;  // the maximum fits the field it is stored in
      spec.set_integer(config, spec.max);
      CHECK(spec.current(config) == std::to_string(spec.max));
    } else if (spec.type == SettingType::kChoice) {
      REQUIRE(spec.set_choice != nullptr);
      CHECK(std::find(spec.choices.begin(), spec.choices.end(), spec.default_choice) !=
            spec.choices.end());
    } else {
      REQUIRE(spec.set_choice != nullptr);
      CHECK(spec.default_choice.empty());  // an address to listen on is never a default
    }
  }
  CHECK_FALSE(Spec("daemon.threads").reloadable);
  CHECK(Spec("log.level").reloadable);
  CHECK(Spec("log.format").reloadable);
  CHECK(Spec("batch.max_rows").unit == "rows");
}

TEST_CASE("Config enforces the ranges of the settings table") {
  Json json = Minimal();
  json["batch"]["max_rows"] = 0;
  REQUIRE_THROWS_WITH(Parse(json),
                      Catch::StartsWith("config test.json: batch.max_rows is 0, outside 1..") &&
                          Catch::Contains("rows"));
  json = Minimal();
  json["daemon"]["threads"] = 1000;
  REQUIRE_THROWS_WITH(Parse(json), Catch::Contains("daemon.threads is 1000, outside 1..256"));
  json = Minimal();
  json["batch"]["max_bytes"] = 18446744073709551615ULL;
  REQUIRE_THROWS_WITH(Parse(json),
                      Catch::Contains("batch.max_bytes is 18446744073709551615, outside"));
  json = Minimal();
  json["daemon"]["retry_initial_ms"] = 5000;
  json["daemon"]["retry_max_ms"] = 1000;
  REQUIRE_THROWS_WITH(Parse(json), Catch::Contains("daemon.retry_max_ms (1000) is below "
                                                   "daemon.retry_initial_ms (5000)"));
  json = Minimal();
  json["log"]["level"] = "warn";
  REQUIRE_THROWS_WITH(Parse(json), Catch::Contains("log.level is 'warn' (did you mean 'warning'?); "
                                                   "use one of: debug, info, warning, error"));
}

TEST_CASE("Config takes metrics.listen as an IP address and a port, and nothing else") {
  Json json = Minimal();
  CHECK(Parse(json).metrics.listen.empty());
  json["metrics"]["listen"] = "127.0.0.1:9187";
  CHECK(Parse(json).metrics.listen == "127.0.0.1:9187");
  json["metrics"]["listen"] = "[::1]:9187";
  CHECK(Parse(json).metrics.listen == "[::1]:9187");
  for (const char* bad : {"localhost:9187", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "::1:9187", ":9187",
                          "127.0.0.1:91x"}) {
    INFO(bad);
    json["metrics"]["listen"] = bad;
    REQUIRE_THROWS_WITH(Parse(json), Catch::Contains(std::string("metrics.listen is '") + bad +
                                                     "', not HOST:PORT with HOST an IP address"));
  }
  json["metrics"]["listen"] = 9187;
  REQUIRE_THROWS_WITH(Parse(json), Catch::Contains("metrics.listen must be a string \"HOST:PORT\", found number 9187"));
  auto address = ParseListenAddress("[::1]:9187");
  REQUIRE(address);
  CHECK(address->host == "::1");
  CHECK(address->port == 9187);
}

TEST_CASE("Config rejects wrong types naming the path and the expected and found types") {
  Json json = Minimal();
  json["daemon"]["threads"] = "2";
  REQUIRE_THROWS_WITH(
      Parse(json), Catch::Contains("daemon.threads must be an integer (threads), found a string"));
  json["daemon"]["threads"] = 1.5;
  REQUIRE_THROWS_WITH(
      Parse(json),
      Catch::Contains("daemon.threads must be an integer (threads), found number 1.5"));
  json = Minimal();
  json["syncs"][0]["targets"] = "new";
  REQUIRE_THROWS_WITH(
      Parse(json), Catch::Contains("syncs[0].targets must be an array of strings, found a string"));
  json = Minimal();
  json["syncs"][0]["tables"][1] = 7;
  REQUIRE_THROWS_WITH(Parse(json),
                      Catch::Contains("syncs[0].tables[1] must be a string, found number 7"));
  json = Minimal();
  json["nodes"]["old"] = "host=db1 password=hunter2";
  REQUIRE_THROWS_WITH(
      Parse(json), Catch::Contains("nodes.old must be an object") && !Catch::Contains("hunter2"));
  json = Minimal();
  json["syncs"] = Json::object();
  REQUIRE_THROWS_WITH(Parse(json),
                      Catch::Contains("syncs must be an array of syncs, found an object"));
  json = Minimal();
  json["log"] = true;
  REQUIRE_THROWS_WITH(Parse(json), Catch::Contains("log must be an object, found boolean true"));
  REQUIRE_THROWS_WITH(ParseConfig("[1]", "t.json"),
                      Catch::Contains("the top level must be a JSON object, found an array"));
}

TEST_CASE("Config takes a node's capture method and the C module's path, and refuses anything else") {
  Json json = Minimal();
  REQUIRE(Parse(json).Node("old").capture == CaptureMethod::kAuto);
  REQUIRE(Parse(json).Node("old").capture_library == "$libdir/pgtandem_capture");
  json["nodes"]["old"]["capture_library"] = "/opt/pg/lib/pgtandem_capture.so";
  REQUIRE(Parse(json).Node("old").capture == CaptureMethod::kAuto);
  REQUIRE(Parse(json).Node("old").capture_library == "/opt/pg/lib/pgtandem_capture.so");
  json["nodes"]["old"]["capture"] = "auto";
  REQUIRE(Parse(json).Node("old").capture == CaptureMethod::kAuto);
  json["nodes"]["old"]["capture"] = "c";
  REQUIRE(Parse(json).Node("old").capture == CaptureMethod::kC);
  REQUIRE(Parse(json).Node("old").capture_library == "/opt/pg/lib/pgtandem_capture.so");
  json["nodes"]["old"]["capture_library"] = "";
  REQUIRE_THROWS_WITH(Parse(json), Catch::Contains("nodes.old.capture_library is empty"));
  json["nodes"]["old"]["capture"] = "plpgsql";
  json["nodes"]["old"]["capture_library"] = "/opt/pg/lib/pgtandem_capture.so";
  REQUIRE_THROWS_WITH(Parse(json), Catch::Contains("only the C capture loads it") &&
                                       Catch::Contains("set \"capture\" to \"c\" or \"auto\""));
  json["nodes"]["old"].erase("capture_library");
  REQUIRE(Parse(json).Node("old").capture == CaptureMethod::kPlpgsql);
  json["nodes"]["old"]["capture"] = "plpgsq";
  REQUIRE_THROWS_WITH(Parse(json), Catch::Contains("nodes.old.capture is 'plpgsq' (did you mean 'plpgsql'?)"));
  json["nodes"]["old"]["capture"] = "atuo";
  REQUIRE_THROWS_WITH(Parse(json), Catch::Contains("(did you mean 'auto'?)"));
  json["nodes"]["old"]["capture"] = true;
  REQUIRE_THROWS_WITH(Parse(json), Catch::Contains("nodes.old.capture must be \"auto\", \"plpgsql\" or \"c\""));
}

TEST_CASE("Config rejects unknown keys anywhere and suggests the nearest") {
  Json json = Minimal();
  json["syncs"][0]["tabels"] = Json::array({"public.x"});
  REQUIRE_THROWS_WITH(
      Parse(json),
      Catch::StartsWith("config test.json: unknown key syncs[0].tabels (did you mean 'tables'?)") &&
          Catch::Contains("name, source, targets, tables, exclude, sequences"));
  json = Minimal();
  json["deamon"] = Json::object();
  REQUIRE_THROWS_WITH(
      Parse(json),
      Catch::Contains("unknown key deamon (did you mean 'daemon'?); valid keys at the top level"));
  json = Minimal();
  json["batch"]["max_row"] = 5;
  REQUIRE_THROWS_WITH(Parse(json),
                      Catch::Contains("unknown key batch.max_row (did you mean 'max_rows'?); valid "
                                      "keys in batch: max_rows, max_bytes"));
  json = Minimal();
  json["nodes"]["old"]["password"] = "x";
  REQUIRE_THROWS_WITH(
      Parse(json), Catch::Contains("unknown key nodes.old.password; valid keys in nodes.old: dsn"));
  json = Minimal();
  json["zzzzzz"] = 1;
  REQUIRE_THROWS_WITH(
      Parse(json),
      Catch::Contains(
          "unknown key zzzzzz; valid keys at the top level: nodes, syncs, batch, daemon, log"));
}

TEST_CASE("Config reports JSON syntax errors with origin line and column") {
  REQUIRE_THROWS_WITH(ParseConfig("{\n  \"nodes\": {,\n}", "/etc/p.json"),
                      Catch::StartsWith("config /etc/p.json: invalid JSON at line 2, column 13: "));
  REQUIRE_THROWS_WITH(ParseConfig("  \n", "e.json"),
                      Catch::Contains("config e.json: the file is empty"));
  // "last read" would quote the half-read string: the password.
  REQUIRE_THROWS_WITH(
      ParseConfig("{\"nodes\": {\"a\": {\"dsn\": \"password=hun\\qter2\"}}}", "x.json"),
      Catch::Contains("invalid JSON at line 1, column ") && !Catch::Contains("hun"));
  REQUIRE_THROWS_WITH(
      ParseConfig(R"({"nodes": {"old": {"dsn": "host=a"}, "old": {"dsn": "host=b"}}})", "d.json"),
      Catch::Contains("config d.json: key nodes.old appears twice"));
  REQUIRE_THROWS_WITH(ParseConfig(R"({"syncs": [{}, {"name": "a", "name": "b"}]})", "d.json"),
                      Catch::Contains("key syncs[1].name appears twice"));
}

TEST_CASE("Config requires nodes and syncs") {
  Json json = Minimal();
  json.erase("nodes");
  REQUIRE_THROWS_WITH(Parse(json), Catch::Contains("config test.json: nodes is missing"));
  json = Minimal();
  json["nodes"] = Json::object();
  REQUIRE_THROWS_WITH(Parse(json), Catch::Contains("nodes is empty; define at least one"));
  json = Minimal();
  json.erase("syncs");
  REQUIRE_THROWS_WITH(Parse(json), Catch::Contains("syncs is missing"));
  json = Minimal();
  json["syncs"] = Json::array();
  REQUIRE_THROWS_WITH(Parse(json), Catch::Contains("syncs is empty; define at least one sync"));
  json = Minimal();
  json["syncs"][0].erase("tables");
  REQUIRE_THROWS_WITH(
      Parse(json),
      Catch::Contains("syncs[0].tables is missing; add it, e.g. \"tables\": [\"public.*\"]"));
  json = Minimal();
  json["syncs"][0]["tables"] = Json::array();
  REQUIRE_THROWS_WITH(Parse(json), Catch::Contains("syncs[0].tables is empty"));
  json = Minimal();
  json["syncs"][0]["targets"] = Json::array();
  REQUIRE_THROWS_WITH(Parse(json), Catch::Contains("syncs[0].targets is empty"));
}

TEST_CASE("Config validates node and sync names") {
  Json json = Minimal();
  json["nodes"]["my node"] = json["nodes"]["old"];
  REQUIRE_THROWS_WITH(Parse(json), Catch::Contains("nodes: node name 'my node' is not valid"));
  json = Minimal();
  json["syncs"][0]["name"] = "";
  REQUIRE_THROWS_WITH(Parse(json), Catch::Contains("syncs[0].name: sync name '' is not valid"));
  json = Minimal();
  json["syncs"][1] = json["syncs"][0];
  REQUIRE_THROWS_WITH(Parse(json),
                      Catch::Contains("syncs[1].name 'app' is already used by syncs[0]"));
  json["syncs"][1]["name"] = "app-2.x_y";
  CHECK(Parse(json).syncs.size() == 2);
}

TEST_CASE("Config checks that syncs name defined nodes") {
  Json json = Minimal();
  json["syncs"][0]["source"] = "olf";
  REQUIRE_THROWS_WITH(
      Parse(json), Catch::Contains("syncs[0].source names node 'olf', which is not "
                                   "defined (did you mean 'old'?); \"nodes\" defines: new, old"));
  json = Minimal();
  json["syncs"][0]["targets"] = Json::array({"new", "gone"});
  REQUIRE_THROWS_WITH(
      Parse(json), Catch::Contains("syncs[0].targets[1] names node 'gone', which is not defined"));
  json = Minimal();
  json["syncs"][0]["targets"] = Json::array({"old"});
  REQUIRE_THROWS_WITH(Parse(json),
                      Catch::Contains("syncs[0].targets[0] 'old' is also the sync's source"));
  json = Minimal();
  json["syncs"][0]["targets"] = Json::array({"new", "new"});
  REQUIRE_THROWS_WITH(
      Parse(json), Catch::Contains("syncs[0].targets[1] 'new' is listed twice (also targets[0])"));
}

TEST_CASE("Config reports bad patterns and DSNs at their path") {
  Json json = Minimal();
  json["syncs"][0]["tables"] = Json::array({"public.*", "users"});
  REQUIRE_THROWS_WITH(
      Parse(json),
      Catch::StartsWith(
          "config test.json: syncs[0].tables[1]: table pattern 'users': there is no dot"));
  json = Minimal();
  json["syncs"][0]["exclude"] = Json::array({"a.b.c"});
  REQUIRE_THROWS_WITH(Parse(json), Catch::Contains("syncs[0].exclude[0]: table pattern 'a.b.c'"));
  json = Minimal();
  json["syncs"][0]["sequences"] = Json::array({".x"});
  REQUIRE_THROWS_WITH(Parse(json), Catch::Contains("syncs[0].sequences[0]: table pattern '.x'"));
  json = Minimal();
  json["nodes"]["old"]["dsn"] = "";
  REQUIRE_THROWS_WITH(Parse(json), Catch::Contains("nodes.old.dsn is empty"));
  json.erase("nodes");
  json["nodes"]["old"] = Json::object();
  REQUIRE_THROWS_WITH(Parse(json), Catch::Contains("nodes.old.dsn is missing"));
  json["nodes"]["old"]["dsn"] = "host=db1 passwrd=hunter2";
  REQUIRE_THROWS_WITH(Parse(json),
                      Catch::Contains("config test.json: nodes.old.dsn: invalid connection string: "
                                      "invalid connection option \"passwrd\""));
  json["nodes"]["old"]["dsn"] = "host=db1 password=hun ter2";
  REQUIRE_THROWS_WITH(Parse(json), Catch::Contains("nodes.old.dsn: invalid connection string") &&
                                       !Catch::Contains("ter2"));
}

TEST_CASE("Config looks up syncs and nodes by name") {
  Json json = Minimal();
  json["syncs"][1] = json["syncs"][0];
  json["syncs"][1]["name"] = "billing";
  const Config config = Parse(json);
  CHECK(config.SelectSyncs(std::nullopt).size() == 2);
  REQUIRE(config.SelectSyncs("billing").size() == 1);
  CHECK(config.SelectSyncs("billing")[0] == &config.syncs[1]);
  REQUIRE_THROWS_WITH(config.Sync("nope"), "unknown sync 'nope'; the config defines: app, billing");
  REQUIRE_THROWS_WITH(config.SelectSyncs("nope"), Catch::Contains("unknown sync 'nope'"));
  REQUIRE_THROWS_WITH(config.Node("nope"), "unknown node 'nope'; the config defines: new, old");
  try {
    config.Sync("nope");
  } catch (const Error& e) {
    CHECK(e.Kind() == ErrorKind::kUsage);
  }
}

TEST_CASE("LoadConfig reads a file and names it in errors") {
  const auto dir = std::filesystem::temp_directory_path() / "pgtandem_config_test";
  std::filesystem::create_directories(dir);
  const auto path = (dir / "pgtandem.json").string();
  std::ofstream(path) << Minimal().dump();
  CHECK(LoadConfig(path).origin == path);
  std::ofstream(path) << "{\"nodes\": 1}";
  REQUIRE_THROWS_WITH(LoadConfig(path), Catch::StartsWith("config " + path + ": nodes must be"));
  std::filesystem::remove(path);
  REQUIRE_THROWS_WITH(LoadConfig(path),
                      Catch::StartsWith("config " + path + ": cannot open: No such file") &&
                          Catch::Contains("pass --config PATH or set PGTANDEM_CONFIG"));
  REQUIRE_THROWS_WITH(LoadConfig(dir.string()), Catch::Contains("is a directory"));
  try {
    LoadConfig(path);
  } catch (const Error& e) {
    CHECK(e.Kind() == ErrorKind::kConfig);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace pgtandem
