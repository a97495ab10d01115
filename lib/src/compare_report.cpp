// What `pgtandem compare` prints: a line per table, example keys, and the JSON for scripts.
#include <fmt/format.h>

#include "pgtandem/compare.hpp"

namespace pgtandem {
namespace {

std::string Examples(const std::vector<KeyValue>& keys, const KeyLayout& layout, int examples) {
  std::vector<std::string> shown;
  for (size_t i = 0; i < keys.size() && i < static_cast<size_t>(examples); ++i) shown.push_back(layout.Display(keys[i]));
  std::string text = fmt::format("{}", fmt::join(shown, ", "));
  if (keys.size() > shown.size()) text += fmt::format("{}{} more", shown.empty() ? "" : " and ", keys.size() - shown.size());
  return text;
}

std::string Label(const TableComparison& table) {
  if (table.Differs()) return "differs";
  return table.keys.unverified.empty() ? "equal" : "unverified";
}

std::string Summary(const TableComparison& table) {
  if (!table.problem.empty()) return "not compared row by row: " + table.problem;
  std::string rows = table.source_rows == table.target_rows
                         ? fmt::format("{} row(s)", table.source_rows)
                         : fmt::format("{} row(s) on the source, {} on the target", table.source_rows, table.target_rows);
  if (table.Equal()) return rows;
  std::string text = fmt::format("{}: {} missing, {} extra, {} different", rows, table.keys.missing.size(),
                                 table.keys.extra.size(), table.keys.different.size());
  if (!table.keys.unverified.empty()) text += fmt::format(", {} unverified", table.keys.unverified.size());
  if (!table.complete) text += fmt::format(" (counting stopped at {} keys: more may differ)", table.keys.missing.size() +
                                           table.keys.extra.size() + table.keys.different.size() +
                                           table.keys.unverified.size());
  return text;
}

void AppendTable(std::string& text, const TableComparison& table, int examples) {
  text += fmt::format("  {:<11} {:<30} {}\n", Label(table), table.table.Display(), Summary(table));
  if (!table.layout || examples <= 0) return;
  const std::pair<const char*, const std::vector<KeyValue>*> kinds[] = {
      {"missing", &table.keys.missing}, {"extra", &table.keys.extra}, {"different", &table.keys.different},
      {"unverified", &table.keys.unverified}};
  for (const auto& [kind, keys] : kinds) {
    if (!keys->empty()) text += fmt::format("      {:<11} {}\n", kind, Examples(*keys, *table.layout, examples));
  }
}

nlohmann::json KeysToJson(const std::vector<KeyValue>& keys, const std::optional<KeyLayout>& layout, int examples) {
  nlohmann::json out = nlohmann::json::array();
  if (!layout) return out;
  for (size_t i = 0; i < keys.size() && i < static_cast<size_t>(examples); ++i) {
    nlohmann::json key = nlohmann::json::object();
    for (size_t column = 0; column < layout->Columns().size(); ++column) key[layout->Columns()[column].name] = keys[i][column];
    out.push_back(std::move(key));
  }
  return out;
}

nlohmann::json TableToJson(const TableComparison& table, int examples) {
  nlohmann::json key_columns = nlohmann::json::array();
  if (table.layout) key_columns = table.layout->Names();
  return {{"table", table.table.Display()},
          {"key_columns", key_columns},
          {"equal", table.Equal()},
          {"problem", table.problem.empty() ? nlohmann::json(nullptr) : nlohmann::json(table.problem)},
          {"source_rows", table.source_rows},
          {"target_rows", table.target_rows},
          {"missing", table.keys.missing.size()},
          {"extra", table.keys.extra.size()},
          {"different", table.keys.different.size()},
          {"unverified", table.keys.unverified.size()},
          {"complete", table.complete},
          {"examples",
           {{"missing", KeysToJson(table.keys.missing, table.layout, examples)},
            {"extra", KeysToJson(table.keys.extra, table.layout, examples)},
            {"different", KeysToJson(table.keys.different, table.layout, examples)},
            {"unverified", KeysToJson(table.keys.unverified, table.layout, examples)}}},
          {"seconds", table.seconds}};
}

bool TargetEqual(const TargetComparison& target) {
  if (target.failure) return false;
  for (const auto& table : target.tables) {
    if (!table.Equal()) return false;
  }
  return true;
}

}  // namespace

std::string FormatComparison(const SyncComparison& comparison, int examples) {
  std::string text;
  for (const auto& target : comparison.targets) {
    std::string heading = fmt::format("sync '{}' source '{}' target '{}'", comparison.sync, comparison.source,
                                      target.target);
    if (target.failure) {
      text += fmt::format("{}: not compared: {}\n", heading, target.failure->what());
      continue;
    }
    int equal = 0, differ = 0;
    for (const auto& table : target.tables) {
      equal += table.Equal() ? 1 : 0;
      differ += table.Differs() ? 1 : 0;
    }
    int unverified = static_cast<int>(target.tables.size()) - equal - differ;
    text += fmt::format("{}: {} table(s) compared in {:.1f} s: {} equal, {} differ{}\n", heading, target.tables.size(),
                        target.seconds, equal, differ,
                        unverified ? fmt::format(", {} unverified", unverified) : std::string());
    for (const auto& table : target.tables) AppendTable(text, table, examples);
  }
  return text;
}

nlohmann::json ComparisonToJson(const std::vector<SyncComparison>& comparisons, int examples) {
  bool all_equal = true;
  nlohmann::json syncs = nlohmann::json::array();
  for (const auto& sync : comparisons) {
    nlohmann::json targets = nlohmann::json::array();
    for (const auto& target : sync.targets) {
      nlohmann::json tables = nlohmann::json::array();
      for (const auto& table : target.tables) tables.push_back(TableToJson(table, examples));
      all_equal = all_equal && TargetEqual(target);
      targets.push_back({{"target", target.target},
                         {"equal", TargetEqual(target)},
                         {"error", target.failure ? nlohmann::json(target.failure->what()) : nlohmann::json(nullptr)},
                         {"seconds", target.seconds},
                         {"tables", tables}});
    }
    syncs.push_back({{"sync", sync.sync}, {"source", sync.source}, {"targets", targets}});
  }
  return {{"equal", all_equal}, {"syncs", syncs}};
}

}  // namespace pgtandem
