// The reload diff: restart-only settings kept, task fingerprints compared.
#include "pgtandem/config_reload.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace pgtandem {
namespace {

bool IsLogSetting(const SettingSpec& spec) { return spec.path.starts_with("log."); }

// Log settings apply to the whole process at once and restart nothing.
std::string SettingsFingerprint(const Config& config) {
  std::string text;
  for (const SettingSpec& spec : SettingSpecs()) {
    if (!IsLogSetting(spec)) text += fmt::format("{}={};", spec.path, spec.current(config));
  }
  return text;
}

std::string NodeFingerprint(const Config& config, const std::string& node) {
  return fmt::format("{}=[{}]", node, config.Node(node).dsn.ConnInfo());
}

std::string Patterns(const std::vector<TablePattern>& patterns) {
  std::vector<std::string> texts;
  for (const auto& pattern : patterns) texts.push_back(pattern.Text());
  return fmt::format("{}", fmt::join(texts, ","));
}

std::string SelectionFingerprint(const SyncConfig& sync) {
  return fmt::format("sync={};source={};tables={};exclude={};sequences={};", sync.name, sync.source,
                     Patterns(sync.tables), Patterns(sync.exclude), Patterns(sync.sequences));
}

}  // namespace

std::vector<RestartOnlyChange> KeepRestartOnlySettings(const Config& running, Config& next) {
  std::vector<RestartOnlyChange> kept;
  for (const SettingSpec& spec : SettingSpecs()) {
    if (spec.reloadable) continue;
    std::string old_value = spec.current(running);
    std::string new_value = spec.current(next);
    if (old_value == new_value) continue;
    if (spec.type == SettingType::kInteger) {
      spec.set_integer(next, std::stoll(old_value));
    } else {
      spec.set_choice(next, old_value);
    }
    kept.push_back({std::string(spec.path), old_value, new_value});
  }
  return kept;
}

std::string TargetTaskFingerprint(const Config& config, const SyncConfig& sync, const std::string& target) {
  return SelectionFingerprint(sync) + NodeFingerprint(config, sync.source) + NodeFingerprint(config, target) +
         SettingsFingerprint(config);
}

std::string LockFingerprint(const Config& config, const SyncConfig& sync) {
  return NodeFingerprint(config, sync.source);
}

std::string LagMonitorFingerprint(const Config& config, const SyncConfig& sync) {
  return SelectionFingerprint(sync) + fmt::format("targets={};", fmt::join(sync.targets, ",")) +
         NodeFingerprint(config, sync.source) + SettingsFingerprint(config);
}

std::string ListenerFingerprint(const Config& config, const std::string& node) {
  return NodeFingerprint(config, node) + SettingsFingerprint(config);
}

std::string PurgerFingerprint(const Config& config, const std::string& node, const std::vector<std::string>& syncs) {
  std::string text = ListenerFingerprint(config, node) + fmt::format("gates={};", fmt::join(syncs, ","));
  for (const SyncConfig& sync : config.syncs) {
    if (sync.source == node) text += fmt::format("{}->{};", sync.name, fmt::join(sync.targets, ","));
  }
  return text;
}

}  // namespace pgtandem
