// The shipped configs parse, and every setting is in the example and in README.md at its default.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "pgtandem/config.hpp"

namespace pgtandem {
namespace {

// tests/unit/example_config_test.cpp -> the repository root, fixed at compile time.
const std::filesystem::path kRoot = std::filesystem::path(__FILE__).parent_path().parent_path().parent_path();

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  INFO(path.string());
  REQUIRE(in);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The example as plain JSON (comments dropped), to look keys up by section.
nlohmann::json ExampleJson() {
  const std::string text = ReadFile(kRoot / "config" / "pgtandem.example.json");
  return nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/true, /*ignore_comments=*/true);
}

std::string_view Section(const SettingSpec& spec) { return spec.path.substr(0, spec.path.find('.')); }
std::string_view Key(const SettingSpec& spec) { return spec.path.substr(spec.path.find('.') + 1); }

// An address to listen on is off by default; the example turns it on, on loopback, to show its form.
bool ShownEnabled(const SettingSpec& spec) { return spec.type == SettingType::kAddress; }

}  // namespace

TEST_CASE("The full example config parses, with two targets and every sync key") {
  const Config config = LoadConfig((kRoot / "config" / "pgtandem.example.json").string());
  REQUIRE(config.syncs.size() == 1);
  const SyncConfig& sync = config.syncs[0];
  CHECK(sync.targets.size() == 2);
  CHECK_FALSE(sync.tables.empty());
  CHECK_FALSE(sync.exclude.empty());
  CHECK_FALSE(sync.sequences.empty());
  CHECK(config.metrics.listen.rfind("127.0.0.1:", 0) == 0);
  for (const SettingSpec& spec : SettingSpecs()) {
    INFO(spec.path);
    if (!ShownEnabled(spec)) CHECK(spec.current(config) == spec.DefaultText());
  }
}

TEST_CASE("The minimal example config parses: two nodes, one sync, every setting at its default") {
  const Config config = LoadConfig((kRoot / "config" / "pgtandem.minimal.json").string());
  CHECK(config.nodes.size() == 2);
  REQUIRE(config.syncs.size() == 1);
  CHECK(config.syncs[0].targets.size() == 1);
  for (const SettingSpec& spec : SettingSpecs()) {
    INFO(spec.path);
    CHECK(spec.current(config) == spec.DefaultText());
  }
}

TEST_CASE("Every setting is written out in the full example, at its default unless shown enabled") {
  const nlohmann::json example = ExampleJson();
  for (const SettingSpec& spec : SettingSpecs()) {
    INFO(spec.path);
    const auto section = example.find(std::string(Section(spec)));
    REQUIRE(section != example.end());
    const auto value = section->find(std::string(Key(spec)));
    REQUIRE(value != section->end());
    const std::string text = value->is_string() ? value->get<std::string>() : value->dump();
    if (ShownEnabled(spec)) {
      CHECK_FALSE(text.empty());
    } else {
      CHECK(text == spec.DefaultText());
    }
  }
}

TEST_CASE("Every setting is documented in README.md") {
  const std::string readme = ReadFile(kRoot / "README.md");
  for (const SettingSpec& spec : SettingSpecs()) {
    INFO(spec.path);
    CHECK(readme.find("`" + std::string(spec.path) + "`") != std::string::npos);
  }
}

}  // namespace pgtandem
