// Compare, per target and table: definitions, range checksums, then a re-check of the keys found.
#include "pgtandem/compare.hpp"

#include <array>

#include <fmt/format.h>

#include "pgtandem/async.hpp"
#include "pgtandem/catalog.hpp"
#include "pgtandem/compare_meter.hpp"
#include "pgtandem/row_hash.hpp"
#include "pgtandem/table_compare.hpp"
#include "pgtandem/table_definition.hpp"

namespace pgtandem {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point started) {
  return std::chrono::duration<double>(Clock::now() - started).count();
}

// The sync's captured tables that the --table pattern selects.
pg::Awaitable<std::vector<CapturedTable>> SelectCaptured(pg::Connection& source, const SyncConfig& sync,
                                                         const CompareOptions& options) {
  std::vector<CapturedTable> all = co_await LoadCapturedTables(source, sync.name);
  if (all.empty()) {
    throw Error(ErrorKind::kState, fmt::format("sync '{}': no table is captured on source node '{}'; run \"pgtandem "
                                               "install --sync {}\" first", sync.name, sync.source, sync.name));
  }
  if (!options.table) co_return all;
  std::vector<CapturedTable> selected;
  std::vector<std::string> names;
  for (auto& table : all) {
    names.push_back(table.name.Display());
    if (options.table->Matches(table.name)) selected.push_back(std::move(table));
  }
  if (selected.empty()) {
    throw Error(ErrorKind::kUsage, fmt::format("--table \"{}\" matches no table of sync '{}' (its tables: {})",
                                               options.table->Text(), sync.name, fmt::join(names, ", ")));
  }
  co_return selected;
}

class TargetCompare {
 public:
  TargetCompare(pg::Connection& source, pg::Connection& target, const SyncConfig& sync,
                const std::vector<CapturedTable>& tables, const CompareOptions& options, CompareMeter& meter,
                const Logger& log)
      : source_(source), target_(target), sync_(sync), tables_(tables), options_(options), meter_(meter), log_(log) {}

  pg::Awaitable<std::vector<TableComparison>> Run();

 private:
  pg::Awaitable<TableComparison> CompareTable(const CapturedTable& table);
  pg::Awaitable<void> Settle(const CapturedTable& table, const RowHash& hash, CandidateKeys candidates,
                             TableComparison& result);

  pg::Connection& source_;
  pg::Connection& target_;
  const SyncConfig& sync_;
  const std::vector<CapturedTable>& tables_;
  const CompareOptions& options_;
  CompareMeter& meter_;
  const Logger& log_;
  // Once the target failed to catch up in time, later tables do not wait for it again.
  bool stalled_ = false;
};

pg::Awaitable<void> TargetCompare::Settle(const CapturedTable& table, const RowHash& hash, CandidateKeys candidates,
                                          TableComparison& result) {
  meter_.Step() = fmt::format("re-checking {} key(s) that differed", candidates.keys.size());
  Clock::time_point deadline = stalled_ ? Clock::now() : Clock::now() + options_.wait;
  SettledKeys keys = co_await RecheckKeys(source_, target_, sync_.name, table, *result.layout, hash,
                                          std::move(candidates.keys), deadline, log_);
  if (keys.target_stalled && !stalled_) {
    log_.Warning("the target did not apply the source's changes to {} within {} s (is \"pgtandem run\" running?); "
                 "{} key(s) stay unverified", table.name.Display(), options_.wait.count(), keys.unverified.size());
    stalled_ = true;
  }
  std::array<std::vector<KeyValue>*, 4> lists = {&keys.missing, &keys.extra, &keys.different, &keys.unverified};
  for (std::vector<KeyValue>* list : lists) {
    std::vector<KeyValue> sorted = co_await SortKeys(source_, *result.layout, std::move(*list));
    *list = std::move(sorted);
  }
  result.keys = std::move(keys);
}

pg::Awaitable<TableComparison> TargetCompare::CompareTable(const CapturedTable& table) {
  Clock::time_point started = Clock::now();
  TableComparison result;
  result.table = table.name;
  result.table_id = table.id;
  meter_.StartTable(table.name.Display());
  meter_.Step() = "comparing definitions";
  std::vector<CapturedTable> one = {table};
  std::vector<std::string> differences = co_await CompareTableDefinitions(source_, target_, one);
  if (!differences.empty()) {
    result.problem = fmt::format("{}", fmt::join(differences, "; "));
    result.seconds = SecondsSince(started);
    co_return result;
  }
  KeyLayout layout = co_await LoadKeyLayout(source_, table);
  result.layout = std::move(layout);
  RowHash hash = co_await LoadRowHash(source_, table);
  CandidateKeys candidates =
      co_await FindCandidateKeys(source_, target_, sync_.name, table, *result.layout, hash, meter_.Step(), log_);
  result.source_rows = candidates.source_rows;
  result.target_rows = candidates.target_rows;
  result.complete = candidates.complete;
  if (!candidates.keys.empty()) co_await Settle(table, hash, std::move(candidates), result);
  result.seconds = SecondsSince(started);
  log_.Debug("table {}: {} row(s) on the source, {} on the target; {} missing, {} extra, {} different, {} unverified "
            "({:.1f} s)", table.name.Display(), result.source_rows, result.target_rows, result.keys.missing.size(),
            result.keys.extra.size(), result.keys.different.size(), result.keys.unverified.size(), result.seconds);
  co_return result;
}

pg::Awaitable<std::vector<TableComparison>> TargetCompare::Run() {
  std::vector<TableComparison> results;
  for (const auto& table : tables_) {
    TableComparison result = co_await CompareTable(table);
    results.push_back(std::move(result));
  }
  co_return results;
}

// The tables of one target, with the progress line running beside them.
pg::Awaitable<std::vector<TableComparison>> CompareTables(TargetCompare& compare, CompareMeter& meter) {
  std::vector<TableComparison> results;
  std::exception_ptr failure;
  try {
    results = co_await compare.Run();
  } catch (...) {
    failure = std::current_exception();
  }
  meter.Finish();
  if (failure) std::rethrow_exception(failure);
  co_return results;
}

pg::Awaitable<TargetComparison> CompareTarget(boost::asio::any_io_executor executor, const Config& config,
                                              const SyncConfig& sync, pg::Connection& source,
                                              const std::vector<CapturedTable>& tables, const std::string& name,
                                              const CompareOptions& options) {
  Clock::time_point started = Clock::now();
  Logger log(LogContext{sync.name, name, "target", "compare"});
  pg::Connection target(executor, name, pg::Side::kTarget, config.Node(name).dsn,
                        std::chrono::seconds(config.daemon.connect_timeout_s));
  co_await target.Connect();
  co_await PrepareCompareSession(target);
  NodeRole role = co_await ReadNodeRole(target);
  if (role == NodeRole::kSource) {
    throw Error(ErrorKind::kState, fmt::format("{} holds a restored copy of the source's capture schema; run "
                                               "\"pgtandem bootstrap --sync {} --target {}\" before comparing it",
                                               target.Describe(), sync.name, name));
  }
  CompareMeter meter(static_cast<int>(tables.size()), log);
  TargetCompare compare(source, target, sync, tables, options, meter, log);
  pg::Awaitable<std::vector<TableComparison>> work = CompareTables(compare, meter);
  pg::Awaitable<int> progress = meter.Run();
  std::pair<std::vector<TableComparison>, int> done = co_await BothOf(std::move(work), std::move(progress));
  TargetComparison result{name, std::move(done.first), std::nullopt, SecondsSince(started)};
  co_return result;
}

}  // namespace

bool TableComparison::Differs() const {
  return !problem.empty() || !complete || !keys.missing.empty() || !keys.extra.empty() || !keys.different.empty();
}

pg::Awaitable<SyncComparison> CompareSync(boost::asio::any_io_executor executor, const Config& config,
                                          const SyncConfig& sync, const std::optional<std::string>& only_target,
                                          const CompareOptions& options) {
  pg::Connection source(executor, sync.source, pg::Side::kSource, config.Node(sync.source).dsn,
                        std::chrono::seconds(config.daemon.connect_timeout_s));
  co_await source.Connect();
  co_await PrepareCompareSession(source);
  std::vector<CapturedTable> tables = co_await SelectCaptured(source, sync, options);
  SyncComparison comparison{sync.name, sync.source, {}};
  for (const auto& name : sync.targets) {
    if (only_target && *only_target != name) continue;
    std::optional<Error> failure;
    try {
      TargetComparison result = co_await CompareTarget(executor, config, sync, source, tables, name, options);
      comparison.targets.push_back(std::move(result));
    } catch (const Error& e) {
      failure = e;
    }
    if (!failure) continue;
    if (failure->Kind() == ErrorKind::kSource || failure->Kind() == ErrorKind::kInternal) throw *failure;
    // A failed target may have left the source inside a transaction, or holding the purge lock.
    source.Close();
    co_await source.Connect();
    co_await PrepareCompareSession(source);
    comparison.targets.push_back({name, {}, std::move(failure), 0});
  }
  co_return comparison;
}

ExitCode CompareExitCode(const std::vector<SyncComparison>& comparisons) {
  bool unverified = false;
  for (const auto& sync : comparisons) {
    for (const auto& target : sync.targets) {
      for (const auto& table : target.tables) {
        if (table.Differs()) return ExitCode::kFailure;
        unverified = unverified || !table.keys.unverified.empty();
      }
    }
  }
  return unverified ? ExitCode::kTimeout : ExitCode::kOk;
}

}  // namespace pgtandem
