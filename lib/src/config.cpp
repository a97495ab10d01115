// Parsing and validation of the JSON config; scalar settings come from SettingSpecs().
#include "pgtandem/config.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <type_traits>

#include "pgtandem/error.hpp"

namespace pgtandem {
namespace {

using Json = nlohmann::json;
using Keys = std::span<const std::string_view>;


constexpr std::string_view kNodeKeys[] = {"dsn", "capture", "capture_library"};
constexpr std::string_view kCaptureMethods[] = {"auto", "plpgsql", "c"};
constexpr std::string_view kSyncKeys[] = {"name",   "source",  "targets",
                                          "tables", "exclude", "sequences"};
constexpr std::string_view kWhereHint =
    "pass --config PATH or set PGTANDEM_CONFIG to the config file";

std::string_view Section(const SettingSpec& spec) {
  return spec.path.substr(0, spec.path.find('.'));
}
std::string_view Key(const SettingSpec& spec) { return spec.path.substr(spec.path.find('.') + 1); }

std::vector<std::string_view> TopLevelKeys() {
  std::vector<std::string_view> keys = {"nodes", "syncs"};
  for (const SettingSpec& spec : SettingSpecs()) {
    if (std::find(keys.begin(), keys.end(), Section(spec)) == keys.end()) {
      keys.push_back(Section(spec));
    }
  }
  return keys;
}

std::vector<std::string_view> SectionKeys(std::string_view section) {
  std::vector<std::string_view> keys;
  for (const SettingSpec& spec : SettingSpecs()) {
    if (Section(spec) == section) keys.push_back(Key(spec));
  }
  return keys;
}

std::string Join(std::string_view path, std::string_view key) {
  return path.empty() ? std::string(key) : fmt::format("{}.{}", path, key);
}

std::string Index(std::string_view path, size_t i) { return fmt::format("{}[{}]", path, i); }

// Optimal string alignment distance: a swapped pair of letters costs one edit.
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min(
          {d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

// The candidate a typo most likely meant, if one is close enough to suggest.
template <typename Range>
std::optional<std::string> Nearest(std::string_view word, const Range& candidates) {
  std::optional<std::string> best;
  size_t best_distance = std::max<size_t>(1, word.size() / 3) + 1;
  for (const auto& candidate : candidates) {
    // A truncated key ("warn", "poll_interval") is as likely a typo as a swap.
    const bool prefix = word.size() >= 3 && std::string_view(candidate).starts_with(word);
    const size_t distance = prefix ? 1 : EditDistance(word, candidate);
    if (distance < best_distance && distance < word.size()) {
      best = std::string(candidate);
      best_distance = distance;
    }
  }
  return best;
}

template <typename Range>
std::string DidYouMean(std::string_view word, const Range& candidates) {
  const auto best = Nearest(word, candidates);
  return best ? fmt::format(" (did you mean '{}'?)", *best) : "";
}

// What was found where something else was expected. String contents are not
// shown: a misplaced value may be a connection string with a password.
std::string Found(const Json& value) {
  if (value.is_null()) return "null";
  if (value.is_boolean()) return fmt::format("boolean {}", value.get<bool>());
  if (value.is_number()) return fmt::format("number {}", value.dump());
  if (value.is_string()) return "a string";
  if (value.is_array()) return "an array";
  return "an object";
}

bool IsValidName(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return std::isalnum(c) != 0 || c == '_' || c == '.' || c == '-';
  });
}

std::pair<size_t, size_t> LineColumn(std::string_view text, size_t byte) {
  const std::string_view before = text.substr(0, byte > 0 ? byte - 1 : 0);  // byte is 1-based
  const size_t newline = before.rfind('\n');
  const size_t line_start = newline == std::string_view::npos ? 0 : newline + 1;
  return {1 + static_cast<size_t>(std::count(before.begin(), before.end(), '\n')),
          before.size() - line_start + 1};
}

// nlohmann's reason without its "[json.exception...] ... column N: " prefix and
// without "last read: '...'", which may quote part of a dsn with a password.
std::string JsonReason(std::string_view what) {
  const size_t colon = what.find(": ", what.find("column "));
  const std::string_view reason = colon == std::string_view::npos ? what : what.substr(colon + 2);
  const size_t last = reason.find("; last read: ");
  if (last == std::string_view::npos) return std::string(reason);
  const size_t expected = reason.rfind("'; expected ");
  const bool has_expected = expected != std::string_view::npos && expected > last;
  return std::string(reason.substr(0, last)) +
         (has_expected ? std::string(reason.substr(expected + 1)) : "");
}

// nlohmann keeps the last of two equal keys silently; a config that defines
// node "old" twice is a mistake, so the parse callback reports it.
class DuplicateKeyCheck {
 public:
  explicit DuplicateKeyCheck(const std::string& origin) : origin_(origin) {}

  bool operator()(int /*depth*/, Json::parse_event_t event, Json& parsed) {
    using Event = Json::parse_event_t;
    if (event == Event::object_start || event == Event::array_start) {
      frames_.emplace_back().array = event == Event::array_start;
    } else if (event == Event::object_end || event == Event::array_end) {
      frames_.pop_back();
      Advance();
    } else if (event == Event::key) {
      OnKey(parsed.get<std::string>());
    } else {
      Advance();
    }
    return true;
  }

 private:
  struct Frame {
    bool array = false;
    size_t index = 0;  // arrays: the element being read
    std::string key;   // objects: the member being read
    std::set<std::string> keys;
  };

  void Advance() {
    if (!frames_.empty() && frames_.back().array) ++frames_.back().index;
  }

  void OnKey(const std::string& key) {
    Frame& frame = frames_.back();
    frame.key = key;
    if (frame.keys.insert(key).second) return;
    std::string path;
    for (const Frame& f : frames_) path = f.array ? Index(path, f.index) : Join(path, f.key);
    throw Error(ErrorKind::kConfig,
                fmt::format("config {}: key {} appears twice; keep one", origin_, path));
  }

  const std::string& origin_;
  std::vector<Frame> frames_;
};

// Turns a JSON document into a Config, failing at the first problem with a
// message that starts with the origin and names the key path.
class ConfigParser {
 public:
  explicit ConfigParser(const std::string& origin) : origin_(origin) {}

  Config Parse(std::string_view text) const {
    const Json root = ParseJson(text);
    ExpectType(root, "the top level", root.is_object(), "a JSON object");
    CheckKeys(root, "", TopLevelKeys());
    Config config;
    config.origin = origin_;
    ParseSettings(root, config);
    ParseNodes(root, config);
    ParseSyncs(root, config);
    return config;
  }

 private:
  [[noreturn]] void Fail(std::string_view message) const {
    throw Error(ErrorKind::kConfig, fmt::format("config {}: {}", origin_, message));
  }

  Json ParseJson(std::string_view text) const {
    if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
      Fail("the file is empty; see config/ for an example");
    }
    try {
      // Comments are allowed so that the example config can explain each key.
      return Json::parse(text.begin(), text.end(), DuplicateKeyCheck(origin_),
                         /*allow_exceptions=*/true, /*ignore_comments=*/true);
    } catch (const Json::parse_error& e) {
      const auto [line, column] = LineColumn(text, e.byte);
      Fail(fmt::format("invalid JSON at line {}, column {}: {}", line, column,
                       JsonReason(e.what())));
    }
  }

  void ExpectType(const Json& value, std::string_view path, bool ok,
                  std::string_view expected) const {
    if (!ok) Fail(fmt::format("{} must be {}, found {}", path, expected, Found(value)));
  }

  void CheckKeys(const Json& object, std::string_view path, Keys allowed) const {
    for (const auto& item : object.items()) {
      if (std::find(allowed.begin(), allowed.end(), item.key()) != allowed.end()) continue;
      Fail(fmt::format("unknown key {}{}; valid keys {}: {}", Join(path, item.key()),
                       DidYouMean(item.key(), allowed),
                       path.empty() ? "at the top level" : "in " + std::string(path),
                       fmt::join(allowed, ", ")));
    }
  }

  const Json& Required(const Json& object, std::string_view path, std::string_view key,
                       std::string_view example) const {
    const auto it = object.find(key);
    if (it == object.end()) {
      Fail(fmt::format("{} is missing; add it, e.g. {}", Join(path, key), example));
    }
    return *it;
  }

  std::string String(const Json& object, std::string_view path, std::string_view key,
                     std::string_view example) const {
    const Json& value = Required(object, path, key, example);
    ExpectType(value, Join(path, key), value.is_string(), "a string");
    return value.get<std::string>();
  }

  void CheckName(std::string_view name, std::string_view path, std::string_view what) const {
    if (IsValidName(name)) return;
    Fail(
        fmt::format("{}: {} name '{}' is not valid; use one or more letters, digits, '_', '.' "
                    "or '-'",
                    path, what, name));
  }

  void ParseSettings(const Json& root, Config& config) const {
    for (const SettingSpec& spec : SettingSpecs()) {
      const auto section = root.find(Section(spec));
      if (section == root.end()) continue;
      ExpectType(*section, Section(spec), section->is_object(), "an object");
      CheckKeys(*section, Section(spec), SectionKeys(Section(spec)));
      const auto value = section->find(Key(spec));
      if (value != section->end()) ApplySetting(spec, *value, config);
    }
    if (config.daemon.retry_max_ms < config.daemon.retry_initial_ms) {
      Fail(
          fmt::format("daemon.retry_max_ms ({}) is below daemon.retry_initial_ms ({}); raise the "
                      "first or lower the second",
                      config.daemon.retry_max_ms, config.daemon.retry_initial_ms));
    }
  }

  void ApplySetting(const SettingSpec& spec, const Json& value, Config& config) const {
    if (spec.type == SettingType::kAddress) {
      ExpectType(value, spec.path, value.is_string(), "a string \"HOST:PORT\"");
      const auto text = value.get<std::string>();
      if (!text.empty() && !ParseListenAddress(text)) {
        Fail(fmt::format("{} is '{}', not HOST:PORT with HOST an IP address and PORT 1..65535; e.g. "
                         "\"127.0.0.1:9187\", \"0.0.0.0:9187\" or \"[::1]:9187\"", spec.path, text));
      }
      return spec.set_choice(config, text);
    }
    if (spec.type == SettingType::kChoice) {
      ExpectType(value, spec.path, value.is_string(), "a string");
      const auto text = value.get<std::string>();
      if (std::find(spec.choices.begin(), spec.choices.end(), text) == spec.choices.end()) {
        Fail(fmt::format("{} is '{}'{}; use one of: {}", spec.path, text,
                         DidYouMean(text, spec.choices), fmt::join(spec.choices, ", ")));
      }
      return spec.set_choice(config, text);
    }
    ExpectType(value, spec.path, value.is_number_integer(),
               fmt::format("an integer ({})", spec.unit));
    const bool huge = value.is_number_unsigned() &&
                      value.get<uint64_t>() > uint64_t{std::numeric_limits<int64_t>::max()};
    const int64_t number = huge ? std::numeric_limits<int64_t>::max() : value.get<int64_t>();
    if (number < spec.min || number > spec.max) {
      Fail(fmt::format("{} is {}, outside {}..{} {}; default {}. {}", spec.path, value.dump(),
                       spec.min, spec.max, spec.unit, spec.DefaultText(), spec.description));
    }
    spec.set_integer(config, number);
  }

  void ParseNodes(const Json& root, Config& config) const {
    constexpr std::string_view kExample = R"("nodes": {"old": {"dsn": "host=db1 dbname=app"}})";
    const Json& nodes = Required(root, "", "nodes", kExample);
    ExpectType(nodes, "nodes", nodes.is_object(), "an object of named nodes");
    if (nodes.empty()) Fail(fmt::format("nodes is empty; define at least one, e.g. {}", kExample));
    for (const auto& item : nodes.items()) {
      const std::string path = Join("nodes", item.key());
      CheckName(item.key(), "nodes", "node");
      ExpectType(item.value(), path, item.value().is_object(), R"(an object like {"dsn": "..."})");
      CheckKeys(item.value(), path, kNodeKeys);
      NodeConfig node{item.key(), ParseDsn(item.value(), path)};
      ParseCapture(item.value(), path, node);
      config.nodes.emplace(item.key(), std::move(node));
    }
  }

  void ParseCapture(const Json& object, const std::string& path, NodeConfig& node) const {
    if (const auto it = object.find("capture"); it != object.end()) {
      ExpectType(*it, Join(path, "capture"), it->is_string(), R"("auto", "plpgsql" or "c")");
      const std::string text = it->get<std::string>();
      if (text == "c") {
        node.capture = CaptureMethod::kC;
      } else if (text == "plpgsql") {
        node.capture = CaptureMethod::kPlpgsql;
      } else if (text != "auto") {
        Fail(fmt::format("{}.capture is '{}'{}; use \"auto\" (the default: the C trigger where the server can load "
                         "it, PL/pgSQL elsewhere), \"plpgsql\" (any PostgreSQL) or \"c\" (the pgtandem_capture "
                         "module, installed on the server)",
                         path, text, DidYouMean(text, kCaptureMethods)));
      }
    }
    if (object.contains("capture_library")) {
      node.capture_library = String(object, path, "capture_library", R"("capture_library": "$libdir/pgtandem_capture")");
      if (node.capture == CaptureMethod::kPlpgsql) {
        Fail(fmt::format("{}.capture_library is set, but node '{}' has \"capture\": \"plpgsql\" and only the C "
                         "capture loads it; set \"capture\" to \"c\" or \"auto\", or remove capture_library",
                         path, node.name));
      }
      if (node.capture_library.empty()) {
        Fail(fmt::format("{}.capture_library is empty; give the module's path, e.g. \"$libdir/pgtandem_capture\"",
                         path));
      }
    }
  }

  Dsn ParseDsn(const Json& node, const std::string& path) const {
    const std::string text =
        String(node, path, "dsn", R"("dsn": "host=db1 dbname=app user=pgtandem")");
    if (text.empty()) {
      Fail(
          fmt::format("{}.dsn is empty; give a libpq connection string, e.g. "
                      "\"host=db1 dbname=app user=pgtandem\"",
                      path));
    }
    try {
      return Dsn(text);
    } catch (const Error& e) {
      Fail(fmt::format("{}.dsn: {}", path, e.what()));
    }
  }

  void ParseSyncs(const Json& root, Config& config) const {
    const Json& syncs = Required(root, "", "syncs", R"("syncs": [{"name": "app", ...}])");
    ExpectType(syncs, "syncs", syncs.is_array(), "an array of syncs");
    if (syncs.empty()) Fail("syncs is empty; define at least one sync");
    for (size_t i = 0; i < syncs.size(); ++i) {
      const std::string path = Index("syncs", i);
      config.syncs.push_back(ParseSync(syncs[i], path));
      ValidateSync(config, i, path);
    }
  }

  SyncConfig ParseSync(const Json& sync, const std::string& path) const {
    ExpectType(sync, path, sync.is_object(), "an object");
    CheckKeys(sync, path, kSyncKeys);
    SyncConfig out;
    out.name = String(sync, path, "name", R"("name": "app")");
    CheckName(out.name, Join(path, "name"), "sync");
    out.source = String(sync, path, "source", R"("source": "old")");
    out.targets =
        Strings(Required(sync, path, "targets", R"("targets": ["new"])"), Join(path, "targets"));
    out.tables =
        Patterns(Required(sync, path, "tables", R"("tables": ["public.*"])"), Join(path, "tables"));
    if (out.tables.empty()) {
      Fail(fmt::format("{}.tables is empty; list at least one pattern, e.g. \"public.*\"", path));
    }
    out.exclude = OptionalPatterns(sync, path, "exclude");
    out.sequences = OptionalPatterns(sync, path, "sequences");
    return out;
  }

  std::vector<std::string> Strings(const Json& list, const std::string& path) const {
    ExpectType(list, path, list.is_array(), "an array of strings");
    std::vector<std::string> out;
    for (size_t i = 0; i < list.size(); ++i) {
      ExpectType(list[i], Index(path, i), list[i].is_string(), "a string");
      out.push_back(list[i].get<std::string>());
    }
    return out;
  }

  std::vector<TablePattern> OptionalPatterns(const Json& sync, const std::string& path,
                                             std::string_view key) const {
    const auto list = sync.find(key);
    return list == sync.end() ? std::vector<TablePattern>{} : Patterns(*list, Join(path, key));
  }

  std::vector<TablePattern> Patterns(const Json& list, const std::string& path) const {
    std::vector<TablePattern> out;
    const std::vector<std::string> texts = Strings(list, path);
    for (size_t i = 0; i < texts.size(); ++i) {
      try {
        out.push_back(TablePattern::Parse(texts[i]));
      } catch (const Error& e) {
        Fail(fmt::format("{}: {}", Index(path, i), e.what()));
      }
    }
    return out;
  }

  void ValidateSync(const Config& config, size_t index, const std::string& path) const {
    const SyncConfig& sync = config.syncs[index];
    for (size_t i = 0; i < index; ++i) {
      if (config.syncs[i].name != sync.name) continue;
      Fail(fmt::format("{}.name '{}' is already used by syncs[{}]; sync names must be unique", path,
                       sync.name, i));
    }
    CheckNodeRef(config, sync.source, Join(path, "source"));
    CheckTargets(config, sync, Join(path, "targets"));
  }

  void CheckTargets(const Config& config, const SyncConfig& sync, const std::string& path) const {
    if (sync.targets.empty()) Fail(fmt::format("{} is empty; list at least one node", path));
    for (size_t i = 0; i < sync.targets.size(); ++i) {
      const std::string& target = sync.targets[i];
      CheckNodeRef(config, target, Index(path, i));
      if (target == sync.source) {
        Fail(fmt::format("{} '{}' is also the sync's source; a node cannot replicate to itself",
                         Index(path, i), target));
      }
      const auto first = std::find(sync.targets.begin(), sync.targets.end(), target);
      if (first != sync.targets.begin() + static_cast<std::ptrdiff_t>(i)) {
        Fail(fmt::format("{} '{}' is listed twice (also targets[{}]); list each target once",
                         Index(path, i), target, first - sync.targets.begin()));
      }
    }
  }

  void CheckNodeRef(const Config& config, const std::string& name, const std::string& path) const {
    if (config.nodes.contains(name)) return;
    std::vector<std::string> defined;
    for (const auto& [node, _] : config.nodes) defined.push_back(node);
    Fail(fmt::format("{} names node '{}', which is not defined{}; \"nodes\" defines: {}", path,
                     name, DidYouMean(name, defined), fmt::join(defined, ", ")));
  }

  const std::string& origin_;
};

template <typename Range, typename Name>
std::string ListNames(const Range& items, Name name) {
  std::vector<std::string> names;
  for (const auto& item : items) names.push_back(name(item));
  return names.empty() ? "(none)" : fmt::format("{}", fmt::join(names, ", "));
}

}  // namespace

const SyncConfig& Config::Sync(std::string_view name) const {
  for (const SyncConfig& sync : syncs) {
    if (sync.name == name) return sync;
  }
  throw Error(ErrorKind::kUsage,
              fmt::format("unknown sync '{}'; the config defines: {}", name,
                          ListNames(syncs, [](const SyncConfig& s) { return s.name; })));
}

const NodeConfig& Config::Node(std::string_view name) const {
  const auto it = nodes.find(std::string(name));
  if (it != nodes.end()) return it->second;
  throw Error(ErrorKind::kUsage,
              fmt::format("unknown node '{}'; the config defines: {}", name,
                          ListNames(nodes, [](const auto& item) { return item.first; })));
}

std::vector<const SyncConfig*> Config::SelectSyncs(const std::optional<std::string>& name) const {
  if (name) return {&Sync(*name)};
  std::vector<const SyncConfig*> out;
  for (const SyncConfig& sync : syncs) out.push_back(&sync);
  return out;
}

std::optional<ListenAddress> ParseListenAddress(std::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string host(text.substr(0, colon));
  const std::string_view port_text = text.substr(colon + 1);
  const bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
  if (bracketed) host = host.substr(1, host.size() - 2);
  unsigned char address[sizeof(in6_addr)];
  const bool valid_host = bracketed ? inet_pton(AF_INET6, host.c_str(), address) == 1
                                    : inet_pton(AF_INET, host.c_str(), address) == 1;
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (!valid_host || ec != std::errc() || end != port_text.data() + port_text.size() || port < 1 || port > 65535) {
    return std::nullopt;
  }
  return ListenAddress{host, static_cast<uint16_t>(port)};
}

Config ParseConfig(std::string_view json_text, const std::string& origin) {
  return ConfigParser(origin).Parse(json_text);
}

Config LoadConfig(const std::string& path) {
  std::error_code ignored;
  if (std::filesystem::is_directory(path, ignored)) {
    throw Error(ErrorKind::kConfig,
                fmt::format("config {}: is a directory, not a file; {}", path, kWhereHint));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int error = errno;
    const std::string_view fix =
        error == EACCES ? "make it readable by the user pgtandem runs as" : kWhereHint;
    throw Error(ErrorKind::kConfig,
                fmt::format("config {}: cannot open: {}; {}", path, std::strerror(error), fix));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    throw Error(ErrorKind::kConfig,
                fmt::format("config {}: cannot read: {}", path, std::strerror(errno)));
  }
  return ParseConfig(text.str(), path);
}

}  // namespace pgtandem
