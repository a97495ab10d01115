// The JSON configuration: nodes, syncs, and the table of scalar settings.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pgtandem/dsn.hpp"
#include "pgtandem/table_pattern.hpp"

namespace pgtandem {

// How a source captures changes: PL/pgSQL triggers work on any PostgreSQL,
// managed ones included; the C trigger (sql/pgtandem_capture.c) costs the
// writers less but needs the module on the server and a superuser to install.
// kAuto, the default, takes the C trigger where install can create it and
// PL/pgSQL elsewhere: a managed source still installs, a self-hosted one with
// the package gets the cheaper capture without being told.
enum class CaptureMethod { kAuto, kPlpgsql, kC };

// A database pgtandem connects to, as source or target.
struct NodeConfig {
  std::string name;
  Dsn dsn;
  CaptureMethod capture = CaptureMethod::kAuto;
  // What CREATE FUNCTION ... LANGUAGE c names for capture "c" or "auto".
  std::string capture_library = "$libdir/pgtandem_capture";
};

// Replicates the selected tables and sequences of one source node to targets.
struct SyncConfig {
  std::string name;
  std::string source;
  std::vector<std::string> targets;
  std::vector<TablePattern> tables;
  std::vector<TablePattern> exclude;    // applied after tables; may be empty
  std::vector<TablePattern> sequences;  // kept in step on the targets (see sequences.hpp); may be empty
};

// The scalar settings below are zero here on purpose: their defaults, ranges
// and units live in one place, SettingSpecs(), and Config() applies them.

// Bounds on one batch, so a backlog costs time, not memory.
struct BatchConfig {
  int64_t max_rows = 0;
  int64_t max_bytes = 0;
  int recopy_percent = 0;
};

struct DaemonConfig {
  int threads = 0;
  int poll_interval_ms = 0;
  int min_batch_interval_ms = 0;
  int purge_interval_ms = 0;
  int sequence_sync_interval_ms = 0;
  int retry_initial_ms = 0;
  int retry_max_ms = 0;
  int connect_timeout_s = 0;
  int io_timeout_s = 0;
  int lock_timeout_s = 0;
};

struct LogConfig {
  std::string level;   // debug, info, warning or error
  std::string format;  // text or json (see log.hpp)
};

// The daemon's Prometheus endpoint; off while `listen` is empty.
struct MetricsConfig {
  std::string listen;  // "HOST:PORT", HOST an IP address ("[::1]:9187" for IPv6)
  int lag_interval_ms = 0;
};

// A whole, validated configuration.
struct Config {
  // Scalar settings at their defaults from SettingSpecs(); no nodes or syncs.
  Config();

  std::map<std::string, NodeConfig> nodes;
  std::vector<SyncConfig> syncs;
  BatchConfig batch;
  DaemonConfig daemon;
  LogConfig log;
  MetricsConfig metrics;
  std::string origin;  // where it was read from (a path), for messages

  // Throw Error(kUsage) naming the unknown name and listing the defined ones.
  const SyncConfig& Sync(std::string_view name) const;
  const NodeConfig& Node(std::string_view name) const;
  // The named sync, or all of them when name is nullopt.
  std::vector<const SyncConfig*> SelectSyncs(const std::optional<std::string>& name) const;
};

enum class SettingType {
  kInteger,
  kChoice,   // a string from a fixed list
  kAddress,  // "HOST:PORT" to listen on, HOST an IP address; empty: off
};

// One scalar setting under batch/daemon/log: the single source of truth for
// its validation, default and documentation (after pgbouncer's bouncer_params[]).
struct SettingSpec {
  std::string_view path;  // "section.key", as written in the JSON
  SettingType type = SettingType::kInteger;
  int64_t default_integer = 0;                // kInteger
  std::string_view default_choice;            // kChoice and kAddress
  std::string_view unit;                      // "rows", "bytes", "ms", "s", or empty
  int64_t min = 0;                            // kInteger, inclusive
  int64_t max = 0;                            // kInteger, inclusive
  std::span<const std::string_view> choices;  // kChoice
  bool reloadable = false;                    // SIGHUP applies it without a restart
  std::string_view description;               // one line, for docs and errors

  // Where the value lives in Config; the setter matching `type` is set.
  void (*set_integer)(Config&, int64_t) = nullptr;
  void (*set_choice)(Config&, std::string_view) = nullptr;  // kChoice and kAddress
  // The value in `config` as text (for `config show` and reload diffs).
  std::string (*current)(const Config&) = nullptr;

  // The default as it would be written in the JSON, e.g. "50000" or "info".
  std::string DefaultText() const;
};

// Every scalar setting, in documentation order.
std::span<const SettingSpec> SettingSpecs();

// metrics.listen taken apart; nullopt when it is not HOST:PORT with HOST an
// IPv4 address or a bracketed IPv6 one, and PORT in 1..65535.
struct ListenAddress {
  std::string host;  // without brackets
  uint16_t port = 0;
};
std::optional<ListenAddress> ParseListenAddress(std::string_view text);

// Parses and validates a whole config. Every error is Error(kConfig) starting
// with "config <origin>: " and naming the key path, e.g. syncs[0].tables[1].
Config ParseConfig(std::string_view json_text, const std::string& origin);
// Reads the file at `path` and parses it; origin is the path.
Config LoadConfig(const std::string& path);

}  // namespace pgtandem
