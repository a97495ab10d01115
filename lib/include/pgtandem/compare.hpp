// `pgtandem compare`: does each target hold exactly the source's rows, while writes go on? Also what `repair` works from.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <nlohmann/json.hpp>

#include "pgtandem/config.hpp"
#include "pgtandem/error.hpp"
#include "pgtandem/key_ranges.hpp"
#include "pgtandem/key_recheck.hpp"
#include "pgtandem/pg/connection.hpp"
#include "pgtandem/table_pattern.hpp"

namespace pgtandem {

struct CompareOptions {
  std::optional<TablePattern> table;  // only the sync's tables it matches; every table when absent
  // Longest wait, per table, for a target to apply the changes a differing key may be waiting for.
  std::chrono::seconds wait{60};
};

// One table on one target.
struct TableComparison {
  TableName table;
  int table_id = 0;  // on the source: its delta table is pgtandem.d_<table_id>
  std::optional<KeyLayout> layout;
  // Why its rows were not compared: its definition differs, or it is missing on the target.
  std::string problem;
  int64_t source_rows = 0;  // counted during the comparison, each node at its own moment
  int64_t target_rows = 0;
  SettledKeys keys;       // each list in key order
  bool complete = true;   // false: more than kMaxKeysPerTable keys differ; the lists hold the first found
  double seconds = 0;

  // Something differs for certain: a problem, or a key that differs for good.
  bool Differs() const;
  bool Equal() const { return !Differs() && keys.unverified.empty(); }
};

struct TargetComparison {
  std::string target;
  std::vector<TableComparison> tables;
  // Why this target could not be compared (unreachable, not bootstrapped): the others still are.
  std::optional<Error> failure;
  double seconds = 0;
};

struct SyncComparison {
  std::string sync;
  std::string source;
  std::vector<TargetComparison> targets;
};

// Compares every captured table of `sync` (those options.table matches) on
// each target (only `only_target` when given), in turn; source and target are
// read at once. A source that fails throws; a target that fails is recorded
// and the next one goes on. Shows progress on stderr (see CompareMeter).
// Throws Error(kUsage) when options.table matches no table of the sync.
pg::Awaitable<SyncComparison> CompareSync(boost::asio::any_io_executor executor, const Config& config,
                                          const SyncConfig& sync, const std::optional<std::string>& only_target,
                                          const CompareOptions& options);

// What the exit status says: 0 all equal, 1 something differs, 7 nothing
// differs for certain but some keys could not be verified in time.
ExitCode CompareExitCode(const std::vector<SyncComparison>& comparisons);

// The text `pgtandem compare` prints for one sync, with up to `examples` keys of each kind per table.
std::string FormatComparison(const SyncComparison& comparison, int examples);
// `pgtandem compare --json` (schema in README.md).
nlohmann::json ComparisonToJson(const std::vector<SyncComparison>& comparisons, int examples);

}  // namespace pgtandem
