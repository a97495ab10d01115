// What "pgtandem status" reports: per sync and target, how far behind and why.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <nlohmann/json.hpp>

#include "pgtandem/config.hpp"
#include "pgtandem/pg/connection.hpp"

namespace pgtandem {

struct TargetStatus {
  std::string target;
  bool reachable = false;
  std::string unreachable_reason;
  std::optional<int64_t> pending_deltas;  // captured, not yet applied on this target
  std::optional<std::string> last_applied_at;
  std::optional<std::string> applied_snapshot;
  int64_t batches = 0;
  int64_t deltas_applied = 0;
  int64_t rows_copied = 0;
  std::optional<std::string> last_error;  // recorded by the daemon, newest first
  std::optional<std::string> last_error_at;

  // "caught up", "catching up", "error", "unreachable", "not started" (no
  // batch applied yet) or "unknown" (the source could not be read).
  std::string State() const;
};

struct SyncStatus {
  std::string sync;
  std::string source;
  bool source_reachable = false;
  std::string source_unreachable_reason;
  // Reachable, but not replicating: e.g. capture not installed.
  std::string source_problem;
  std::vector<TargetStatus> targets;
};

// Reads the databases (not the daemon), so it works whether the daemon runs or not.
pg::Awaitable<std::vector<SyncStatus>> ReadStatus(boost::asio::any_io_executor executor, const Config& config,
                                                  const std::vector<const SyncConfig*>& syncs);

std::string FormatStatusTable(const std::vector<SyncStatus>& status);
nlohmann::json StatusToJson(const std::vector<SyncStatus>& status);

}  // namespace pgtandem
