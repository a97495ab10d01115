// What `pgtandem sequences check|sync` print: one line per sequence, or JSON.
#include "pgtandem/sequences.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace pgtandem {
namespace {

std::string Present(const SequenceReport& r) {
  if (!r.present) return {};
  return fmt::format("; {} holds {} {}", r.present->column, r.ascending ? "up to" : "down to", r.present->value);
}

// The source's name, and the target's where it differs (found through the column it feeds).
std::string Name(const SequenceReport& r) {
  std::string name = r.sequence.Display();
  if (r.target_sequence && *r.target_sequence != r.sequence) {
    name += fmt::format(" ({} on the target)", r.target_sequence->Display());
  }
  return name;
}

std::string OrUnknown(const std::optional<int64_t>& value) { return value ? std::to_string(*value) : "?"; }

struct Line {
  std::string label;
  std::string text;
};

Line SyncLine(const SequenceReport& r) {
  if (r.failed) return {"FAILED", r.detail};
  std::string was = OrUnknown(r.target_next), after = OrUnknown(r.target_next_after);
  switch (r.action) {
    case SequenceAction::kNone:
      return {"in sync", fmt::format("next {} (source next {}{})", was, r.source_next, Present(r))};
    case SequenceAction::kSet:
      return {"set", fmt::format("next {} (was {}; source next {}{})", after, was, r.source_next, Present(r))};
    case SequenceAction::kCreate:
      return {"created", fmt::format("next {} (source next {}{}){}", after, r.source_next, Present(r),
                                     r.detail.empty() ? "" : "; " + r.detail)};
    case SequenceAction::kRedefine:
      return {"redefined",
              fmt::format("{}; next {} (was {}; source next {}{})", fmt::join(r.definition_differences, "; "), after,
                          was, r.source_next, Present(r))};
    case SequenceAction::kKeepAhead:
      return {"ahead", fmt::format("next {} kept (source next {}{}); --allow-backwards moves it back", was,
                                   r.source_next, Present(r))};
    case SequenceAction::kLeaveMissing:
      return {"missing", "not on the target; left alone (--create-missing creates it)"};
    case SequenceAction::kLeaveDefinition:
      return {"differs", fmt::format("{}; left alone (--fix-definitions applies the source's definition)",
                                     fmt::join(r.definition_differences, "; "))};
    case SequenceAction::kCannot: return {"CANNOT", r.detail};
  }
  return {"?", ""};
}

std::vector<Line> CheckLines(const SequenceReport& r) {
  std::vector<Line> lines;
  if (r.missing) {
    lines.push_back({"missing", "not on the target (\"pgtandem sequences sync --create-missing\" creates it)"});
  }
  if (r.behind) {
    lines.push_back({"behind", fmt::format("next {} on the target, {} on the source", *r.target_next, r.source_next)});
  }
  if (r.duplicate_risk) {
    lines.push_back({"duplicate", fmt::format("next {} on the target, but {} already holds {}: the next insert may "
                                              "collide",
                                              *r.target_next, r.present->column, r.present->value)});
  }
  if (!r.definition_differences.empty()) {
    lines.push_back({"differs", fmt::format("{}", fmt::join(r.definition_differences, "; "))});
  }
  if (lines.empty()) {
    lines.push_back({"ok", fmt::format("next {} on the target, {} on the source{}", OrUnknown(r.target_next),
                                       r.source_next, Present(r))});
  }
  return lines;
}

std::string Summary(const TargetSequencesReport& t, SequenceMode mode) {
  size_t risky = 0;
  for (const auto& r : t.sequences) risky += r.at_risk ? 1 : 0;
  if (mode == SequenceMode::kCheck) {
    return fmt::format("{} sequence(s), {}", t.sequences.size(),
                       risky ? fmt::format("{} at risk", risky) : "none at risk");
  }
  return fmt::format("{} sequence(s), {}", t.sequences.size(),
                     risky ? fmt::format("{} still at risk", risky) : "none left at risk");
}

std::string_view ActionName(SequenceAction action) {
  switch (action) {
    case SequenceAction::kNone: return "none";
    case SequenceAction::kSet: return "set";
    case SequenceAction::kCreate: return "create";
    case SequenceAction::kRedefine: return "redefine";
    case SequenceAction::kKeepAhead: return "keep_ahead";
    case SequenceAction::kLeaveMissing: return "leave_missing";
    case SequenceAction::kLeaveDefinition: return "leave_definition";
    case SequenceAction::kCannot: return "cannot";
  }
  return "none";
}

nlohmann::json Optional(const std::optional<int64_t>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json();
}

nlohmann::json SequenceJson(const SequenceReport& r) {
  nlohmann::json j;
  j["sequence"] = r.sequence.Display();
  j["target_sequence"] = r.target_sequence ? nlohmann::json(r.target_sequence->Display()) : nlohmann::json();
  j["reason"] = r.reason;
  j["ascending"] = r.ascending;
  j["source_next"] = r.source_next;
  j["target_next"] = Optional(r.target_next);
  j["target_present_value"] = r.present ? nlohmann::json(r.present->value) : nlohmann::json();
  j["target_present_column"] = r.present ? nlohmann::json(r.present->column) : nlohmann::json();
  j["missing"] = r.missing;
  j["behind"] = r.behind;
  j["duplicate_key_risk"] = r.duplicate_risk;
  j["definition_differences"] = r.definition_differences;
  j["unchecked_columns"] = r.unchecked_columns;
  j["action"] = ActionName(r.action);
  j["target_next_after"] = Optional(r.target_next_after);
  j["failed"] = r.failed;
  j["detail"] = r.detail.empty() ? nlohmann::json() : nlohmann::json(r.detail);
  j["at_risk"] = r.at_risk;
  return j;
}

}  // namespace

std::string DescribeRisk(const SequenceReport& r, const std::string& sync, const std::string& target) {
  std::string command = fmt::format("pgtandem sequences sync --sync {} --target {}", sync, target);
  std::string name = r.sequence.Display();
  if (r.failed || r.action == SequenceAction::kCannot) return fmt::format("{}: {}", name, r.detail);
  if (r.action == SequenceAction::kLeaveMissing) {
    return fmt::format("{} is missing on the target; run \"{} --create-missing\"", name, command);
  }
  if (r.action == SequenceAction::kLeaveDefinition) {
    return fmt::format(
        "{} was left alone because its definition differs ({}); review it, then run \"{} "
        "--fix-definitions\"",
        name, fmt::join(r.definition_differences, "; "), command);
  }
  if (r.missing) return fmt::format("{} is missing on the target", name);
  if (r.duplicate_risk) {
    return fmt::format("{}: next value {} on the target, but {} already holds {}", name, OrUnknown(r.target_next),
                       r.present->column, r.present->value);
  }
  return fmt::format("{}: next value {} on the target, {} on the source", name, OrUnknown(r.target_next),
                     r.source_next);
}

std::string FormatSequencesReport(const SyncSequencesReport& report, SequenceMode mode) {
  std::string out;
  for (const auto& pattern : report.unmatched_patterns) {
    out += fmt::format(
        "note: pattern \"{}\" in the \"sequences\" of sync '{}' selects no sequence on source node "
        "'{}'\n",
        pattern, report.sync, report.source);
  }
  for (const auto& t : report.targets) {
    if (t.failure) {
      out += fmt::format("sync '{}' source '{}' target '{}': not {}: {}\n", report.sync, report.source, t.target,
                         mode == SequenceMode::kCheck ? "checked" : "synced", t.failure->what());
      continue;
    }
    out +=
        fmt::format("sync '{}' source '{}' target '{}': {}\n", report.sync, report.source, t.target, Summary(t, mode));
    size_t width = 0;
    for (const auto& r : t.sequences) width = std::max(width, Name(r).size());
    for (const auto& r : t.sequences) {
      std::vector<Line> lines = mode == SequenceMode::kCheck ? CheckLines(r) : std::vector<Line>{SyncLine(r)};
      for (const auto& line : lines) {
        out += fmt::format("  {:<10} {:<{}}  {}\n", line.label, Name(r), width, line.text);
      }
      if (!r.unchecked_columns.empty()) {
        out += fmt::format("  {:<10} {:<{}}  not compared: {}\n", "note", Name(r), width,
                           fmt::join(r.unchecked_columns, ", "));
      }
    }
  }
  return out;
}

nlohmann::json SequencesReportToJson(const std::vector<SyncSequencesReport>& reports) {
  nlohmann::json syncs = nlohmann::json::array();
  bool at_risk = false;
  for (const auto& report : reports) {
    nlohmann::json targets = nlohmann::json::array();
    for (const auto& t : report.targets) {
      nlohmann::json sequences = nlohmann::json::array();
      for (const auto& r : t.sequences) sequences.push_back(SequenceJson(r));
      nlohmann::json error = t.failure ? nlohmann::json(t.failure->what()) : nlohmann::json();
      targets.push_back({{"target", t.target},
                         {"at_risk", t.AtRisk()},
                         {"error", std::move(error)},
                         {"sequences", std::move(sequences)}});
    }
    at_risk = at_risk || report.AtRisk();
    syncs.push_back({{"sync", report.sync},
                     {"source", report.source},
                     {"unmatched_patterns", report.unmatched_patterns},
                     {"targets", std::move(targets)}});
  }
  return {{"at_risk", at_risk}, {"syncs", std::move(syncs)}};
}

}  // namespace pgtandem
