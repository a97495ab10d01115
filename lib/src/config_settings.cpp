// The declarative table of scalar settings: the truth for their defaults, ranges and documentation.
#include <array>
#include <type_traits>

#include <fmt/format.h>

#include "pgtandem/config.hpp"

namespace pgtandem {
namespace {

template <auto kSection, auto kField>
void SetInteger(Config& config, int64_t value) {
  auto& field = (config.*kSection).*kField;
  // Safe: every spec's max fits its field (checked by config_test).
  field = static_cast<std::remove_reference_t<decltype(field)>>(value);
}

template <auto kSection, auto kField>
void SetChoice(Config& config, std::string_view value) {
  (config.*kSection).*kField = std::string(value);
}

template <auto kSection, auto kField>
std::string Current(const Config& config) {
  return fmt::format("{}", (config.*kSection).*kField);
}

constexpr std::array<std::string_view, 4> kLogLevels = {"debug", "info", "warning", "error"};
constexpr std::array<std::string_view, 2> kLogFormats = {"text", "json"};
constexpr bool kReload = true;    // SIGHUP applies it
constexpr bool kRestart = false;  // takes effect at the next start

// Builders for kSettings rows: they fill the fields a type uses and bind the
// row to its Config member, so a row cannot name one key and set another.
template <auto kSection, auto kField>
constexpr SettingSpec Integer(std::string_view path, int64_t default_value, std::string_view unit,
                              int64_t min, int64_t max, bool reloadable, std::string_view what) {
  SettingSpec spec;
  spec.path = path;
  spec.default_integer = default_value;
  spec.unit = unit;
  spec.min = min;
  spec.max = max;
  spec.reloadable = reloadable;
  spec.description = what;
  spec.set_integer = &SetInteger<kSection, kField>;
  spec.current = &Current<kSection, kField>;
  return spec;
}

template <auto kSection, auto kField>
constexpr SettingSpec Choice(std::string_view path, std::string_view default_value,
                             std::span<const std::string_view> choices, bool reloadable,
                             std::string_view what) {
  SettingSpec spec;
  spec.path = path;
  spec.type = SettingType::kChoice;
  spec.default_choice = default_value;
  spec.choices = choices;
  spec.reloadable = reloadable;
  spec.description = what;
  spec.set_choice = &SetChoice<kSection, kField>;
  spec.current = &Current<kSection, kField>;
  return spec;
}

template <auto kSection, auto kField>
constexpr SettingSpec Address(std::string_view path, bool reloadable, std::string_view what) {
  SettingSpec spec;
  spec.path = path;
  spec.type = SettingType::kAddress;
  spec.reloadable = reloadable;
  spec.description = what;
  spec.set_choice = &SetChoice<kSection, kField>;
  spec.current = &Current<kSection, kField>;
  return spec;
}

// The truth for every scalar setting. Bounds mark where a value stops making
// sense, not what is recommended; the defaults are the recommendation.
constexpr SettingSpec kSettings[] = {
    // path, default, unit, min, max, reloadable, description
    Integer<&Config::batch, &BatchConfig::max_rows>(
        "batch.max_rows", 1'000'000, "rows", 1, 100'000'000, kReload,
        "Most delta rows one batch carries to a target in one transaction."),
    Integer<&Config::batch, &BatchConfig::max_bytes>(
        "batch.max_bytes", 256 << 20, "bytes", 64 << 10, int64_t{16} << 30, kReload,
        "Most row data one batch carries; a batch ends at whichever limit comes first."),
    Integer<&Config::batch, &BatchConfig::recopy_percent>(
        "batch.recopy_percent", 50, "%", 0, 100, kReload,
        "A table whose window of updates and deletes reaches this share of its rows is copied whole instead of "
        "key by key; 0: never."),
    Integer<&Config::daemon, &DaemonConfig::threads>(
        "daemon.threads", 2, "threads", 1, 256, kRestart,
        "Threads running the syncs; each (sync, target) pair still applies in order."),
    Integer<&Config::daemon, &DaemonConfig::poll_interval_ms>(
        "daemon.poll_interval_ms", 1'000, "ms", 10, 3'600'000, kReload,
        "How often the source is checked for changes when no notification arrives."),
    Integer<&Config::daemon, &DaemonConfig::min_batch_interval_ms>(
        "daemon.min_batch_interval_ms", 20, "ms", 0, 60'000, kReload,
        "Least time between two batches' starts to one target, unless a backlog fills them: commits "
        "arriving meanwhile share one batch."),
    Integer<&Config::daemon, &DaemonConfig::purge_interval_ms>(
        "daemon.purge_interval_ms", 10'000, "ms", 100, 86'400'000, kReload,
        "How often deltas applied on every target are deleted from the source."),
    Integer<&Config::daemon, &DaemonConfig::sequence_sync_interval_ms>(
        "daemon.sequence_sync_interval_ms", 5'000, "ms", 100, 86'400'000, kReload,
        "How often the daemon sets each target's sequences forward to the source's."),
    Integer<&Config::daemon, &DaemonConfig::retry_initial_ms>(
        "daemon.retry_initial_ms", 250, "ms", 1, 600'000, kReload,
        "First wait before retrying a failed node; doubles, with jitter, per retry."),
    Integer<&Config::daemon, &DaemonConfig::retry_max_ms>(
        "daemon.retry_max_ms", 30'000, "ms", 1, 3'600'000, kReload,
        "Longest wait between retries; at least daemon.retry_initial_ms."),
    Integer<&Config::daemon, &DaemonConfig::connect_timeout_s>(
        "daemon.connect_timeout_s", 10, "s", 2, 3'600, kReload,
        "libpq connect_timeout for every connection (libpq treats 1 as 2)."),
    Integer<&Config::daemon, &DaemonConfig::io_timeout_s>(
        "daemon.io_timeout_s", 30, "s", 1, 86'400, kRestart,
        "No byte moving on a daemon connection this long: check from a second connection; reconnect if stalled."),
    Integer<&Config::daemon, &DaemonConfig::lock_timeout_s>(
        "daemon.lock_timeout_s", 60, "s", 1, 86'400, kRestart,
        "Longest a batch waits for a lock on a target table; it then rolls back, says who holds it, and retries."),
    Choice<&Config::log, &LogConfig::level>(
        "log.level", "info", kLogLevels, kReload,
        "Least severe messages logged: debug, info, warning or error."),
    Choice<&Config::log, &LogConfig::format>(
        "log.format", "text", kLogFormats, kReload,
        "Log lines as \"text\" or as \"json\" objects (ts, level, sync, node, side, task, message), one a line."),
    Address<&Config::metrics, &MetricsConfig::listen>(
        "metrics.listen", kRestart,
        "HOST:PORT where the daemon serves Prometheus metrics at /metrics; unset: no metrics."),
    Integer<&Config::metrics, &MetricsConfig::lag_interval_ms>(
        "metrics.lag_interval_ms", 5'000, "ms", 100, 3'600'000, kReload,
        "How often the daemon reads each target's lag and pending changes from the source for its metrics."),
};

}  // namespace

std::string SettingSpec::DefaultText() const {
  return type == SettingType::kInteger ? std::to_string(default_integer) : std::string(default_choice);
}

std::span<const SettingSpec> SettingSpecs() { return kSettings; }

Config::Config() {
  for (const SettingSpec& spec : kSettings) {
    if (spec.type != SettingType::kInteger) {
      spec.set_choice(*this, spec.default_choice);
    } else {
      spec.set_integer(*this, spec.default_integer);
    }
  }
}

}  // namespace pgtandem
