// Installs capture on a sync's source, and removes every pgtandem object from a node.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "pgtandem/config.hpp"
#include "pgtandem/log.hpp"
#include "pgtandem/pg/connection.hpp"

namespace pgtandem {

struct InstallOptions {
  // CREATE TRIGGER waits for every writer of the table, and every writer that
  // arrives meanwhile queues behind it: wait briefly, release, retry later.
  std::chrono::milliseconds lock_timeout{2000};
  int max_attempts = 20;
  // The source node's capture method and, for the C trigger, its module.
  CaptureMethod method = CaptureMethod::kAuto;
  std::string library;
};

struct InstallReport {
  std::vector<std::string> added;     // tables whose capture this run created
  std::vector<std::string> existing;  // tables already captured
  bool c_capture = false;             // the tables' triggers run the C trigger
  std::string c_unavailable;          // why "auto" fell back to PL/pgSQL, or empty
};

// In one transaction: schema pgtandem and capture for every table the sync selects.
pg::Awaitable<InstallReport> InstallCapture(pg::Connection& source, const SyncConfig& sync,
                                            const InstallOptions& options, const Logger& log);

// Drops schema pgtandem and everything that depends on it (triggers on user
// tables included); returns how many triggers went with it.
pg::Awaitable<int> Uninstall(pg::Connection& node);

}  // namespace pgtandem
