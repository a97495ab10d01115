// The worker's loop and its failure handling.
#include "pgtandem/target_worker.hpp"

#include <algorithm>
#include <limits>
#include <utility>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "pgtandem/backoff.hpp"
#include "pgtandem/batch_reader.hpp"
#include "pgtandem/catalog.hpp"
#include "pgtandem/lock_wait.hpp"
#include "pgtandem/progress.hpp"

namespace pgtandem {
namespace asio = boost::asio;

namespace {

constexpr int64_t kMinBudget = 100;
constexpr auto kProgressCopyInterval = std::chrono::seconds(1);
constexpr std::string_view kLockNotAvailable = "55P03";  // lock_timeout expired

}  // namespace

TargetWorker::TargetWorker(asio::any_io_executor strand, std::shared_ptr<const Config> config, const SyncConfig& sync,
                           std::string target, std::shared_ptr<const SyncGate> gate, Metrics& metrics)
    : strand_(strand),
      config_(std::move(config)),
      sync_(sync),
      target_name_(std::move(target)),
      gate_(std::move(gate)),
      log_(LogContext{sync.name, target_name_, "target", ""}),
      metrics_(metrics),
      source_(strand, sync.source, pg::Side::kSource, config_->Node(sync.source).dsn,
              std::chrono::seconds(config_->daemon.connect_timeout_s), std::chrono::seconds(config_->daemon.io_timeout_s)),
      target_(strand, target_name_, pg::Side::kTarget, config_->Node(target_name_).dsn,
              std::chrono::seconds(config_->daemon.connect_timeout_s), std::chrono::seconds(config_->daemon.io_timeout_s)),
      wake_timer_(strand),
      retry_timer_(strand),
      pace_timer_(strand),
      budget_(config_->batch.max_rows) {}

void TargetWorker::Wake() {
  wake_pending_ = true;
  wake_timer_.cancel();
}

void TargetWorker::Stop() {
  stopping_ = true;
  wake_timer_.cancel();
  retry_timer_.cancel();
  pace_timer_.cancel();
}

pg::Awaitable<void> TargetWorker::WaitForWork() {
  if (wake_pending_ || stopping_) {
    wake_pending_ = false;
    co_return;
  }
  wake_timer_.expires_after(std::chrono::milliseconds(config_->daemon.poll_interval_ms));
  boost::system::error_code ec;
  co_await wake_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  wake_pending_ = false;
}

// A busy source wakes the worker on nearly every commit. Each batch costs a
// dozen round trips on both nodes whatever its size, so batches one commit
// apart would spend most of the CPU on those; a short pause lets the commits
// arriving meanwhile share one batch. A backlog is applied without pauses.
pg::Awaitable<void> TargetWorker::Pace() {
  auto ready = last_batch_start_ + std::chrono::milliseconds(config_->daemon.min_batch_interval_ms);
  if (last_batch_full_ || stopping_ || std::chrono::steady_clock::now() >= ready) co_return;
  pace_timer_.expires_at(ready);
  boost::system::error_code ec;
  co_await pace_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

// Picks up tables that "install" added while the daemon runs.
pg::Awaitable<void> TargetWorker::LoadTables() {
  std::vector<CapturedTable> tables = co_await LoadCapturedTables(source_, sync_.name);
  auto same_ids = [](const CapturedTable& a, const CapturedTable& b) { return a.id == b.id; };
  if (prepared_ && std::equal(tables.begin(), tables.end(), tables_.begin(), tables_.end(), same_ids)) co_return;
  tables_ = std::move(tables);
  if (tables_.empty()) {
    throw Error(ErrorKind::kState, fmt::format("sync '{}': no table is captured on source node '{}'; run \"pgtandem "
                                               "install --sync {}\" first", sync_.name, sync_.source, sync_.name));
  }
  co_await applier_->Prepare(tables_);
  prepared_ = true;
}

// Budget in deltas for the next batch: the configured row limit, lowered when
// rows are wide so that one batch stays near batch.max_bytes.
void TargetWorker::AdaptBudget(const ApplyStats& stats) {
  if (stats.deltas < kMinBudget || stats.bytes == 0) return;
  double bytes_per_delta = static_cast<double>(stats.bytes) / static_cast<double>(stats.deltas);
  auto fitting = static_cast<int64_t>(static_cast<double>(config_->batch.max_bytes) / bytes_per_delta);
  budget_ = std::clamp(fitting, kMinBudget, config_->batch.max_rows);
}

pg::Awaitable<void> TargetWorker::PrepareTargetSession() {
  std::string name = TargetSessionName(sync_.name, target_name_);
  co_await target_.Exec(fmt::format("SET application_name = {}; SET lock_timeout = '{}s'", QuoteLiteral(name),
                                    config_->daemon.lock_timeout_s));
  int previous = std::exchange(previous_target_pid_, target_.BackendPid());
  if (previous == 0) co_return;
  // A session whose connection was lost in the network lives on in the
  // server, holding its open batch's row locks, until TCP gives up on it
  // (hours): the next batch would wait for it. pg_terminate_backend waits
  // up to 10 s for it to go; it may end a session of this role only.
  pg::Result ended;
  std::string refused;
  try {
    ended = co_await target_.Exec(
        "SELECT pg_catalog.pg_terminate_backend(pid, 10000) FROM pg_catalog.pg_stat_activity "
        "WHERE pid = $1 AND application_name = $2 AND pid <> pg_catalog.pg_backend_pid()",
        std::to_string(previous), name);
  } catch (const Error& e) {
    if (e.SqlState() != "42501") throw;
    refused = e.what();  // e.g. the old session ran as a superuser: batches may wait for it (lock_timeout)
  }
  if (!refused.empty()) {
    log_.Warning("could not end this worker's previous session on the target (server process {}): {}", previous,
                 refused);
  } else if (ended.Rows() > 0) {
    log_.Warning("ended this worker's previous session on the target (server process {}), still open after its "
                 "connection was lost", previous);
  }
}

void TargetWorker::ResolveInDoubt(const Progress& progress) {
  if (in_doubt_batch_ == 0) return;
  if (progress.batches >= in_doubt_batch_) {
    log_.Info("the commit of batch {} was in doubt: the target's progress row shows it committed (batch {} applied), "
              "so it is not applied again", in_doubt_batch_, progress.batches);
  } else {
    log_.Info("the commit of batch {} was in doubt: the target's progress row shows it did not commit (batch {} is "
              "the last applied), so it is applied again", in_doubt_batch_, progress.batches);
  }
  in_doubt_batch_ = 0;
}

// The server's lock-timeout error names no table. The batch's table comes
// first; preparing a session reads every table of the sync, so look at all.
pg::Awaitable<void> TargetWorker::ExplainLockTimeout(RecordedError& failure) {
  std::vector<std::string> tables;
  for (const auto& table : tables_) {
    bool current = table.name.Display() == failure.table;
    tables.insert(current ? tables.begin() : tables.end(), table.name.Quoted());
  }
  std::optional<LockHolders> holders;
  try {
    co_await target_.Exec("ROLLBACK");
    holders = co_await FindLockHolders(target_, tables);
  } catch (const Error&) {
    holders.reset();  // the connection is gone too: the plain lock-timeout error stays
  }
  std::string who;
  if (holders) {
    failure.table = holders->table;
    who = "held by " + holders->holders;
  } else if (!failure.table.empty()) {
    who = "a row it needs is locked by another transaction";
  } else {
    co_return;
  }
  failure.message = fmt::format("target node '{}': table {} is locked by another session: {}; the batch waited "
                                "daemon.lock_timeout_s = {} s, was rolled back and is retried ({})", target_name_,
                                failure.table, who, config_->daemon.lock_timeout_s, failure.message);
}

pg::Awaitable<Progress> TargetWorker::Connect() {
  co_await source_.Connect();
  co_await target_.Connect();
  co_await PrepareTargetSession();
  applier_ = std::make_unique<Applier>(target_, sync_.name, *gate_, log_);
  prepared_ = false;
  co_await PrepareTargetSchema(target_, sync_.name);
  co_await LoadTables();
  std::string install_id = co_await ReadInstallId(source_);
  Progress progress = co_await ReadProgress(target_, sync_.name);
  ResolveInDoubt(progress);
  co_await CheckDeltasKept(source_, sync_.name, target_name_, progress, install_id);
  progress.source_install = install_id;
  co_await ClearErrorOnSource(source_, sync_.name, target_name_);
  metrics_.SetNodeUp(sync_.source, true);
  metrics_.SetNodeUp(target_name_, true);
  if (progress.applied_snapshot == kBeginningSnapshot) {
    log_.Info("connected; no batch applied yet, so every change captured since install will be applied");
  } else if (progress.batches == 0) {
    log_.Info("connected; catching up from source snapshot {}, where bootstrap placed this target",
              progress.applied_snapshot);
  } else {
    log_.Info("connected; {} batches applied so far, through source snapshot {}{}", progress.batches,
              progress.applied_snapshot, progress.window_end ? ", resuming inside a window" : "");
  }
  co_return progress;
}

// A window split into pieces is applied with rows newer than its end, so a
// piece can meet a unique value the target still holds for a row whose change
// lies beyond the window. Applying everything up to now in one transaction
// brings the whole target to one consistent snapshot, which cannot conflict.
pg::Awaitable<Progress> TargetWorker::ApplyBatch(BatchReader& reader, const Batch& batch, bool split) {
  auto started = std::chrono::steady_clock::now();
  std::optional<ApplyResult> result;
  std::exception_ptr failure;
  try {
    result = co_await applier_->Apply(source_, reader, batch);
  } catch (const Error& e) {
    failure = std::current_exception();
    if (const CapturedTable* table = applier_->CurrentTable()) failed_table_ = table->name.Display();
    if (split && (e.SqlState() == "23505" || e.SqlState() == "23P01")) {
      consistent_next_ = true;
      log_.Warning("a piece of a split batch window hit a unique constraint on the target; the next attempt applies "
                   "the rest of the window and every later change in one transaction");
    }
  }
  if (target_.CommitInDoubt()) in_doubt_batch_ = batch.next.batches + 1;
  if (failure) std::rethrow_exception(failure);
  co_await reader.Finish();
  AdaptBudget(result->stats);
  CountBatch(batch, result->stats, std::chrono::steady_clock::now() - started);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  log_.Debug("applied batch {}: {} deltas, {} keys, {} rows, {} bytes in {} ms", result->progress.batches,
             result->stats.deltas, result->stats.keys, result->stats.rows, result->stats.bytes, ms.count());
  co_return result->progress;
}

std::vector<CapturedTable*> TargetWorker::TablesOf(const Batch& batch) {
  std::vector<CapturedTable*> tables;
  for (const auto& segment : batch.segments) {
    for (auto& table : tables_) {
      if (table.id == segment.table->id) tables.push_back(&table);
    }
  }
  return tables;
}

void TargetWorker::CountBatch(const Batch& batch, const ApplyStats& stats, std::chrono::steady_clock::duration took) {
  std::vector<std::pair<std::string, int64_t>> table_deltas;
  for (const auto& segment : batch.segments) table_deltas.emplace_back(segment.table->name.Display(), segment.deltas);
  metrics_.RecordBatch(sync_.name, target_name_, took, stats.rows, table_deltas);
}

// The source's copy of the progress drives purging and status; refreshing it
// after every batch would add a write transaction on the source per batch.
pg::Awaitable<void> TargetWorker::CopyProgress(const Progress& progress, bool force) {
  auto now = std::chrono::steady_clock::now();
  if (progress_copied_ || (!force && now - last_progress_copy_ < kProgressCopyInterval)) co_return;
  co_await CopyProgressToSource(source_, sync_.name, target_name_, progress);
  progress_copied_ = true;
  last_progress_copy_ = now;
}

pg::Awaitable<void> TargetWorker::Session() {
  Progress progress = co_await Connect();
  BatchReader reader(source_, tables_, config_->batch.recopy_percent);
  while (!stopping_ && gate_->Open()) {
    bool split = progress.window_end.has_value();
    int64_t budget = budget_;
    if (consistent_next_) {
      progress.window_end.reset();
      progress.position = {};
      budget = std::numeric_limits<int64_t>::max();
    }
    co_await Pace();
    if (stopping_) break;
    std::optional<Batch> batch = co_await reader.Next(progress, budget);
    if (!batch) {
      healthy_ = true;
      co_await CopyProgress(progress, true);
      co_await WaitForWork();
      if (!progress.window_end) co_await LoadTables();
      continue;
    }
    last_batch_start_ = std::chrono::steady_clock::now();
    last_batch_full_ = batch->next.window_end.has_value();
    co_await schema_guard_.Check(source_, target_, TablesOf(*batch));
    split = split || batch->next.window_end.has_value();
    progress = co_await ApplyBatch(reader, *batch, split && !consistent_next_);
    consistent_next_ = false;
    healthy_ = true;
    progress_copied_ = false;
    co_await CopyProgress(progress, false);
  }
  co_await CopyProgress(progress, true);
}

pg::Awaitable<void> TargetWorker::RecordError(const RecordedError& error) {
  pg::Connection source(strand_, sync_.source, pg::Side::kSource, config_->Node(sync_.source).dsn,
                        std::chrono::seconds(config_->daemon.connect_timeout_s));
  try {
    co_await source.Connect();
    co_await RecordErrorOnSource(source, sync_.name, target_name_, error);
  } catch (const Error&) {
    // The source itself may be what failed; status then reports it unreachable.
  }
}

pg::Awaitable<void> TargetWorker::Run() {
  Backoff backoff(std::chrono::milliseconds(config_->daemon.retry_initial_ms),
                  std::chrono::milliseconds(config_->daemon.retry_max_ms));
  LogLimiter limiter;
  const SyncGates own_gate(1, gate_);
  while (!stopping_) {
    if (!gate_->Open()) {
      log_.Debug("standing by until this daemon holds the sync's lock");
      co_await WaitForOpenGate(own_gate, retry_timer_, stopping_);
      continue;
    }
    RecordedError failure;
    ErrorKind kind = ErrorKind::kInternal;
    failed_table_.clear();
    try {
      co_await Session();
    } catch (const Error& e) {
      failure = {e.what(), e.SqlState(), failed_table_};
      kind = e.Kind();
    } catch (const std::exception& e) {
      failure.message = fmt::format("internal error (please report it): {}", e.what());
    }
    if (kind == ErrorKind::kTarget && failure.sqlstate == kLockNotAvailable) co_await ExplainLockTimeout(failure);
    source_.Close();
    target_.Close();
    if (stopping_) break;
    if (!gate_->Open() || failure.message.empty()) {
      // The lock was lost: another daemon may be active now, and this worker waits.
      log_.Info("stopped applying{}{}: the daemon stands by for this sync", failure.message.empty() ? "" : ": ",
                failure.message);
      continue;
    }
    if (healthy_) backoff.Reset();
    healthy_ = false;
    auto delay = backoff.Next();
    int suppressed = 0;
    if (limiter.Allow(failure.message, suppressed)) {
      log_.Error("{}; retrying in {} ms{}", failure.message, delay.count(), HeldBack(suppressed));
    }
    metrics_.RecordError(sync_.name, target_name_, kind);
    if (kind == ErrorKind::kSource || kind == ErrorKind::kTarget) {
      metrics_.SetNodeUp(kind == ErrorKind::kSource ? sync_.source : target_name_, false);
    }
    co_await RecordError(failure);
    retry_timer_.expires_after(delay);
    boost::system::error_code ec;
    co_await retry_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  log_.Info("stopped");
}

}  // namespace pgtandem
