// README's "Bad input" table, run row by row: each input's exit code and the phrases its message must hold.
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include <catch2/catch.hpp>

#include "support/replication_setup.hpp"

namespace pgtandem::test {
namespace {

namespace fs = std::filesystem;

// tests/pg/bad_input_pgtest.cpp -> the repository root, fixed at compile time.
const fs::path kRoot = fs::path(__FILE__).parent_path().parent_path().parent_path();
constexpr const char* kDriven = "bad_input_pgtest";

const std::string kSchema = R"sql(
CREATE TABLE accounts (id integer PRIMARY KEY, owner text);
CREATE TABLE notes (id integer, body text);
CREATE TABLE documents (id integer PRIMARY KEY, blob oid);
)sql";

struct Row {
  std::string input;
  std::string exit;
  std::vector<std::string> phrases;  // the `quoted` parts of "error says"
  std::string tested_by;
};

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  INFO(path.string());
  REQUIRE(in);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string Trim(std::string text) {
  text.erase(0, text.find_first_not_of(' '));
  text.erase(text.find_last_not_of(' ') + 1);
  return text;
}

std::vector<std::string> CodeSpans(const std::string& cell) {
  std::vector<std::string> out;
  for (size_t open = cell.find('`'); open != std::string::npos; open = cell.find('`', open)) {
    const size_t close = cell.find('`', open + 1);
    REQUIRE(close != std::string::npos);
    out.push_back(cell.substr(open + 1, close - open - 1));
    open = close + 1;
  }
  return out;
}

// The rows of the table under "## Bad input", after its header and rule.
std::vector<Row> ReadmeRows() {
  std::istringstream readme(ReadFile(kRoot / "README.md"));
  std::vector<Row> rows;
  bool in_section = false;
  int table_line = 0;
  for (std::string line; std::getline(readme, line);) {
    if (line.starts_with("## ")) in_section = line == "## Bad input";
    if (!in_section || !line.starts_with("|")) continue;
    if (++table_line <= 2) continue;
    std::vector<std::string> cells;
    std::istringstream parts(line.substr(1));
    for (std::string cell; std::getline(parts, cell, '|');) cells.push_back(Trim(cell));
    INFO(line);
    REQUIRE(cells.size() == 5);
    rows.push_back({cells[0], cells[2], CodeSpans(cells[3]), cells[4]});
  }
  return rows;
}

class BadInput {
 public:
  BadInput() : setup_("badinput", 1, kSchema, R"(["public.accounts"])") {
    setup_.Source().RequirePasswords();
    setup_.Source().Exec("CREATE ROLE migrator LOGIN PASSWORD 'right'; GRANT CREATE ON DATABASE app TO migrator; "
                         "ALTER TABLE accounts OWNER TO migrator", kDatabase);
  }

  // Runs pgtandem with the default config, `from` replaced by `to` in it.
  RunResult WithConfig(const std::string& from, const std::string& to, std::vector<std::string> args) {
    std::string config = setup_.DefaultConfig();
    const size_t at = config.find(from);
    REQUIRE(at != std::string::npos);
    config.replace(at, from.size(), to);
    setup_.WriteConfig(config);
    return setup_.Pgtandem(std::move(args));
  }
  RunResult WithTables(const std::string& tables_json, std::vector<std::string> args) {
    return WithConfig(R"(["public.accounts"])", tables_json, std::move(args));
  }
  RunResult Plain(std::vector<std::string> args) { return WithConfig("{", "{", std::move(args)); }
  RunResult WithPort(PgCluster& cluster, std::vector<std::string> args) {
    return WithConfig("port=" + std::to_string(cluster.Port()) + " ", "port=1 ", std::move(args));
  }

  ReplicationSetup setup_;
};

using Driver = std::function<RunResult(BadInput&)>;

const std::map<std::string, Driver>& Drivers() {
  static const std::map<std::string, Driver> drivers = {
      {"config file missing",
       [](BadInput&) { return Run({PgtandemBinary(), "--config", "/nonexistent/pgtandem.json", "status"}); }},
      {"config not JSON",
       [](BadInput& b) {
         b.setup_.WriteConfig(R"({ "nodes": )");
         return b.setup_.Pgtandem({"status"});
       }},
      {"unknown config key", [](BadInput& b) { return b.WithConfig("\"tables\"", "\"tabels\"", {"status"}); }},
      {"duplicate config key",
       [](BadInput& b) { return b.WithConfig("\"batch\":", R"("batch": {}, "batch":)", {"status"}); }},
      {"setting out of range",
       [](BadInput& b) { return b.WithConfig("\"max_rows\": 500", "\"max_rows\": 0", {"status"}); }},
      {"target node not defined",
       [](BadInput& b) { return b.WithConfig(R"("targets": ["t0"])", R"("targets": ["t9"])", {"status"}); }},
      {"bad dsn option",
       [](BadInput& b) { return b.WithConfig("dbname=app", "dbname=app no_such_option=1", {"status"}); }},
      {"malformed table pattern", [](BadInput& b) { return b.WithTables(R"(["accounts"])", {"status"}); }},
      {"unknown command", [](BadInput& b) { return b.Plain({"instal"}); }},
      {"unknown option", [](BadInput& b) { return b.Plain({"install", "--sycn", "app"}); }},
      {"option without its value", [](BadInput& b) { return b.Plain({"install", "--sync"}); }},
      {"unknown sync", [](BadInput& b) { return b.Plain({"status", "--sync", "nope"}); }},
      {"number out of range", [](BadInput& b) { return b.Plain({"install", "--lock-timeout", "5"}); }},
      {"required option missing", [](BadInput& b) { return b.Plain({"bootstrap"}); }},
      {"table without a primary key",
       [](BadInput& b) { return b.WithTables(R"(["public.accounts", "public.notes"])", {"install"}); }},
      {"pattern matching no table",
       [](BadInput& b) { return b.WithTables(R"(["public.accounts", "billing.*"])", {"install"}); }},
      {"hostile identifier in a pattern",
       [](BadInput& b) {
         return b.WithTables(R"(["public.accounts", "\"x\"\"; DROP TABLE accounts; --\".*"])", {"install"});
       }},
      {"large objects (an `oid` or `lo` column)",
       [](BadInput& b) { return b.WithTables(R"(["public.accounts", "public.documents"])", {"install"}); }},
      {"unreachable source", [](BadInput& b) { return b.WithPort(b.setup_.Source(), {"install"}); }},
      {"unreachable target", [](BadInput& b) { return b.WithPort(b.setup_.Target(0), {"sequences", "sync"}); }},
      {"wrong password",
       [](BadInput& b) {
         return b.WithConfig("dbname=app user=postgres", "dbname=app user=migrator password=wrong", {"install"});
       }},
      {"target unreachable for `status`",
       [](BadInput& b) { return b.WithPort(b.setup_.Target(0), {"status"}); }},
  };
  return drivers;
}

}  // namespace

TEST_CASE("every bad input in README's table gets its documented exit code and message", "[pg]") {
  const std::vector<Row> rows = ReadmeRows();
  REQUIRE(rows.size() >= 20);
  BadInput bad;
  for (const Row& row : rows) {
    INFO("README row: " << row.input);
    if (row.tested_by != kDriven) {
      const std::string test = ReadFile(kRoot / row.tested_by);
      for (const auto& phrase : row.phrases) CHECK_THAT(test, Catch::Matchers::Contains(phrase));
      continue;
    }
    const auto driver = Drivers().find(row.input);
    REQUIRE(driver != Drivers().end());
    const RunResult result = driver->second(bad);
    INFO("output:\n" << result.output);
    CHECK(std::to_string(result.exit_code) == row.exit);
    for (const auto& phrase : row.phrases) CHECK_THAT(result.output, Catch::Matchers::Contains(phrase));
  }
  // Nothing was installed by any of them.
  REQUIRE(bad.setup_.Source().Query1("SELECT count(*) FROM pg_namespace WHERE nspname = 'pgtandem'", kDatabase) ==
          "0");
  REQUIRE(bad.setup_.Source().Query1("SELECT to_regclass('public.accounts') IS NOT NULL", kDatabase) == "t");
}

TEST_CASE("every input README's bad-input table runs here is in the table", "[pg]") {
  std::set<std::string> documented;
  for (const Row& row : ReadmeRows()) documented.insert(row.input);
  for (const auto& [input, driver] : Drivers()) {
    INFO(input);
    CHECK(documented.contains(input));
  }
}

}  // namespace pgtandem::test
