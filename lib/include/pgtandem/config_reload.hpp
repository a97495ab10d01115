// What a SIGHUP reload changes: settings kept until a restart, and which tasks must restart.
#pragma once

#include <string>
#include <vector>

#include "pgtandem/config.hpp"

namespace pgtandem {

// A setting SIGHUP cannot change (SettingSpec::reloadable false) that the new file changes.
struct RestartOnlyChange {
  std::string path;
  std::string running;  // the value kept
  std::string wanted;   // the value in the new file
};

// Puts the running value of every restart-only setting back into `next`,
// returning what was put back, so the reload can say a restart is needed.
std::vector<RestartOnlyChange> KeepRestartOnlySettings(const Config& running, Config& next);

// Everything a task's behaviour depends on, as text: a reload restarts a task
// whose fingerprint changed and leaves the others running untouched.
// A (sync, target) worker or sequence syncer: the sync's source and table
// selection, both nodes' connection strings, and the scalar settings.
std::string TargetTaskFingerprint(const Config& config, const SyncConfig& sync, const std::string& target);
// A sync's lock: only the source's connection string (restarting the lock
// would let a standby daemon take the sync over).
std::string LockFingerprint(const Config& config, const SyncConfig& sync);
// A sync's lag monitor: the source, the targets and the settings.
std::string LagMonitorFingerprint(const Config& config, const SyncConfig& sync);
// A source's listener: the node's connection string and the settings.
std::string ListenerFingerprint(const Config& config, const std::string& node);
// A source's purger: that and every (sync, target) pair reading from the node,
// in this daemon's selection of syncs or not (it purges for all of them).
std::string PurgerFingerprint(const Config& config, const std::string& node, const std::vector<std::string>& syncs);

}  // namespace pgtandem
