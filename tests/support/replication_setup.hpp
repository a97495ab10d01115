// A source and N target clusters holding the same schema, a config for them,
// and helpers to run pgtandem and wait until every target equals the source.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "support/child_process.hpp"
#include "support/pg_cluster.hpp"

namespace pgtandem::test {

inline constexpr const char* kDatabase = "app";

class ReplicationSetup {
 public:
  // `tables_json` is the sync's "tables" array, e.g. R"(["public.*"])".
  // Targets get the schema too unless `empty_targets` (they will be restored from a dump).
  ReplicationSetup(std::string label, int targets, const std::string& schema_sql, std::string tables_json,
                   std::string extra_json = {}, bool empty_targets = false);
  ~ReplicationSetup();

  PgCluster& Source() { return *source_; }
  PgCluster& Target(int i) { return *targets_.at(static_cast<size_t>(i)); }
  int Targets() const { return static_cast<int>(targets_.size()); }
  // Makes `cluster` (a physical copy of the source, say) target i: node
  // TargetName(i) points at it from now on, the cluster it replaces is stopped
  // and deleted, and the config is rewritten with DefaultConfig(), replacing
  // any config the test wrote. `cluster` must hold database kDatabase.
  void ReplaceTarget(int i, std::unique_ptr<PgCluster> cluster);
  // Node names in the config: "source", "t0", "t1", ...
  static std::string TargetName(int i) { return "t" + std::to_string(i); }
  const std::filesystem::path& Dir() const { return dir_; }
  const std::filesystem::path& ConfigPath() const { return config_path_; }
  void WriteConfig(const std::string& json);
  // The config this setup wrote by default (useful to derive variants).
  std::string DefaultConfig() const;

  // Variables added to the environment of every pgtandem started from now on
  // (PGPASSFILE, HOME, PATH ...).
  void SetEnvironment(std::map<std::string, std::string> env) { env_ = std::move(env); }
  // pgtandem --config <config> args...
  RunResult Pgtandem(std::vector<std::string> args);
  // Starts "pgtandem run"; its output goes to <dir>/daemon-<n>.log.
  ChildProcess StartDaemon(std::vector<std::string> extra_args = {});

  // Polls until every table of the source equals the same table on each listed
  // target (all when empty); throws naming the first table that still differs.
  void WaitEqual(std::chrono::seconds deadline, std::vector<int> targets = {});
  // Tables whose checksum differs between the source and target i; empty when equal.
  std::vector<std::string> DifferingTables(int target);
  // The target's applied batch count for sync "app" (0 before the first batch).
  long AppliedBatches(int target);
  // "pgtandem install"; fails the test, with install's output, unless it succeeds.
  void Install();
  // The last error the daemon recorded on the source for `sync`'s targets, "" when none.
  std::string LastError(const std::string& sync = "app");

 private:
  std::string label_;
  std::filesystem::path dir_;
  std::filesystem::path config_path_;
  std::unique_ptr<PgCluster> source_;
  std::vector<std::unique_ptr<PgCluster>> targets_;
  std::string tables_json_;
  std::string extra_json_;
  std::map<std::string, std::string> env_;
  int daemons_started_ = 0;
};

// `config` (DefaultConfig() or derived from it) with `daemon` settings added, e.g. R"("io_timeout_s": 3)".
std::string WithDaemonSettings(const std::string& config, const std::string& settings);
// `config` (DefaultConfig() or derived from it) with batch.max_rows set to `rows` instead of the default 500.
std::string WithMaxRows(const std::string& config, long rows);
// `config` (DefaultConfig() or derived from it) with daemon.purge_interval_ms set to `ms` instead of 500.
std::string WithPurgeInterval(const std::string& config, long ms);
// `config` (DefaultConfig() or derived from it) with `node` connected to as `role` instead of postgres.
std::string WithRole(const std::string& config, const PgCluster& node, const std::string& role);
// The C capture module built with the tests (sql/pgtandem_capture.c).
std::string CaptureModulePath();
// `config` (DefaultConfig() or derived from it) with the source node's fields
// after its dsn replaced by `fields`, e.g. R"(, "capture": "auto")". DefaultConfig()
// captures with PL/pgSQL, so the suite does not depend on whether the
// server's library directory holds the module.
std::string WithCapture(const std::string& config, const std::string& fields);
// `config` with the source node capturing through the C trigger of
// CaptureModulePath(). DefaultConfig() itself does so when the environment has
// PGTANDEM_TEST_CAPTURE=c, which runs the whole suite on the C capture.
std::string WithCCapture(const std::string& config);

// Lets a load run for `duration` while checking that the daemon stays alive.
void RunLoad(ChildProcess& daemon, std::chrono::milliseconds duration);

// The pgtandem binary under test.
std::string PgtandemBinary();
// A PostgreSQL 15 client program (pg_dump, pg_restore, pg_basebackup ...).
std::string PgBinary(const std::string& name);

}  // namespace pgtandem::test
