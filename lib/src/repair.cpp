// Repair through the daemon's own path: a delta row per differing key, nothing written on a target.
#include "pgtandem/repair.hpp"

#include <map>
#include <set>

#include <fmt/format.h>

#include "pgtandem/row_hash.hpp"

namespace pgtandem {
namespace {

constexpr size_t kChunk = 10000;

// What to queue for one table, gathered over every target.
struct Queued {
  TableName table;
  std::optional<KeyLayout> layout;
  std::set<KeyValue> keys;
  std::string skipped;
  bool complete = true;
};

void Gather(const TableComparison& table, const std::string& target, Queued& queued) {
  queued.table = table.table;
  if (!table.problem.empty()) {
    queued.skipped = fmt::format("on target '{}': {}; make the definitions match, then compare again", target,
                                 table.problem);
    return;
  }
  if (!queued.layout) queued.layout = table.layout;
  queued.complete = queued.complete && table.complete;
  for (const auto* list : {&table.keys.missing, &table.keys.extra, &table.keys.different, &table.keys.unverified}) {
    queued.keys.insert(list->begin(), list->end());
  }
}

pg::Awaitable<int64_t> Insert(pg::Connection& source, int table_id, const KeyLayout& layout,
                              const std::set<KeyValue>& keys) {
  std::vector<KeyValue> all(keys.begin(), keys.end());
  std::string sql = fmt::format("INSERT INTO pgtandem.d_{} ({}) SELECT {} FROM {}", table_id,
                                QuotedList(layout.Names()), layout.KeyCasts(), layout.KeysFrom(1));
  int64_t inserted = 0;
  for (size_t start = 0; start < all.size(); start += kChunk) {
    std::vector<KeyValue> chunk(all.begin() + static_cast<long>(start),
                                all.begin() + static_cast<long>(std::min(all.size(), start + kChunk)));
    pg::Params params = layout.KeyParams(chunk);
    pg::Result result = co_await source.ExecParams(sql, std::move(params));
    inserted += result.AffectedRows();
  }
  co_return inserted;
}

}  // namespace

int64_t RepairReport::Keys() const {
  int64_t keys = 0;
  for (const auto& table : tables) keys += table.keys;
  return keys;
}

bool RepairReport::Complete() const {
  for (const auto& table : tables) {
    if (!table.skipped.empty() || !table.complete) return false;
  }
  return true;
}

pg::Awaitable<RepairReport> QueueRepairs(boost::asio::any_io_executor executor, const Config& config,
                                         const SyncComparison& comparison) {
  std::map<int, Queued> by_table;
  for (const auto& target : comparison.targets) {
    for (const auto& table : target.tables) {
      if (table.Differs() || !table.keys.unverified.empty()) Gather(table, target.target, by_table[table.table_id]);
    }
  }
  RepairReport report{comparison.sync, {}};
  if (by_table.empty()) co_return report;
  pg::Connection source(executor, comparison.source, pg::Side::kSource, config.Node(comparison.source).dsn,
                        std::chrono::seconds(config.daemon.connect_timeout_s));
  co_await source.Connect();
  // The keys are text from compare's sessions; read back under the same settings they are the same values.
  co_await PrepareCompareSession(source);
  co_await source.Exec("BEGIN");
  for (const auto& [table_id, queued] : by_table) {
    TableRepair repair{queued.table, 0, queued.skipped, queued.complete};
    if (queued.skipped.empty() && queued.layout) repair.keys = co_await Insert(source, table_id, *queued.layout, queued.keys);
    report.tables.push_back(std::move(repair));
  }
  co_await source.Exec("SELECT pg_catalog.pg_notify('pgtandem', '')");
  co_await source.Exec("COMMIT");
  co_return report;
}

std::string FormatRepair(const RepairReport& report) {
  if (report.tables.empty()) return fmt::format("sync '{}': nothing to repair\n", report.sync);
  std::string text = fmt::format("sync '{}': queued {} key(s) for the daemon to copy again from the source, on every "
                                 "target of the sync\n", report.sync, report.Keys());
  for (const auto& table : report.tables) {
    if (!table.skipped.empty()) {
      text += fmt::format("  not repaired  {:<30} {}\n", table.table.Display(), table.skipped);
    } else {
      text += fmt::format("  queued        {:<30} {} key(s){}\n", table.table.Display(), table.keys,
                          table.complete ? "" : "; more may differ: run repair again once these are applied");
    }
  }
  return text;
}

}  // namespace pgtandem
