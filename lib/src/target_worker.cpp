// The worker's loop and its failure handling.
#include "pgtandem/target_worker.hpp"

#include <algorithm>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "pgtandem/backoff.hpp"
#include "pgtandem/batch_reader.hpp"
#include "pgtandem/catalog.hpp"
#include "pgtandem/progress.hpp"

namespace pgtandem {
namespace asio = boost::asio;

namespace {

constexpr int64_t kMinBudget = 100;

}  // namespace

TargetWorker::TargetWorker(asio::any_io_executor strand, const Config& config, const SyncConfig& sync,
                           std::string target)
    : strand_(strand),
      config_(config),
      sync_(sync),
      target_name_(std::move(target)),
      log_(fmt::format("sync {} target {}", sync.name, target_name_)),
      source_(strand, sync.source, pg::Side::kSource, config.Node(sync.source).dsn,
              std::chrono::seconds(config.daemon.connect_timeout_s)),
      target_(strand, target_name_, pg::Side::kTarget, config.Node(target_name_).dsn,
              std::chrono::seconds(config.daemon.connect_timeout_s)),
      wake_timer_(strand),
      retry_timer_(strand),
      budget_(config.batch.max_rows) {}

void TargetWorker::Wake() {
  wake_pending_ = true;
  wake_timer_.cancel();
}

void TargetWorker::Stop() {
  stopping_ = true;
  wake_timer_.cancel();
  retry_timer_.cancel();
}

pg::Awaitable<void> TargetWorker::WaitForWork() {
  if (wake_pending_ || stopping_) {
    wake_pending_ = false;
    co_return;
  }
  wake_timer_.expires_after(std::chrono::milliseconds(config_.daemon.poll_interval_ms));
  boost::system::error_code ec;
  co_await wake_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  wake_pending_ = false;
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
  auto fitting = static_cast<int64_t>(static_cast<double>(config_.batch.max_bytes) / bytes_per_delta);
  budget_ = std::clamp(fitting, kMinBudget, config_.batch.max_rows);
}

pg::Awaitable<void> TargetWorker::Session() {
  co_await source_.Connect();
  co_await target_.Connect();
  applier_ = std::make_unique<Applier>(target_, sync_.name);
  prepared_ = false;
  co_await PrepareTargetSchema(target_, sync_.name);
  co_await LoadTables();
  Progress progress = co_await ReadProgress(target_, sync_.name);
  co_await CheckDeltasKept(source_, sync_.name, target_name_, progress);
  log_.Info("connected to source and target; applied through source snapshot {}{}", progress.applied_snapshot,
            progress.window_end ? " (resuming inside a window)" : "");
  BatchReader reader(source_, tables_);
  healthy_ = true;
  while (!stopping_) {
    std::optional<Batch> batch = co_await reader.Next(progress, budget_);
    if (!batch) {
      co_await WaitForWork();
      if (!progress.window_end) co_await LoadTables();
      continue;
    }
    auto started = std::chrono::steady_clock::now();
    ApplyResult result = co_await applier_->Apply(source_, reader, *batch);
    co_await reader.Finish();
    progress = result.progress;
    co_await CopyProgressToSource(source_, sync_.name, target_name_, progress);
    AdaptBudget(result.stats);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    log_.Debug("applied batch {}: {} deltas, {} keys, {} rows, {} bytes in {} ms", progress.batches,
               result.stats.deltas, result.stats.keys, result.stats.rows, result.stats.bytes, ms.count());
  }
}

pg::Awaitable<void> TargetWorker::RecordError(const std::string& message) {
  pg::Connection source(strand_, sync_.source, pg::Side::kSource, config_.Node(sync_.source).dsn,
                        std::chrono::seconds(config_.daemon.connect_timeout_s));
  try {
    co_await source.Connect();
    co_await RecordErrorOnSource(source, sync_.name, target_name_, message);
  } catch (const Error&) {
    // The source itself may be what failed; status then reports it unreachable.
  }
}

pg::Awaitable<void> TargetWorker::Run() {
  Backoff backoff(std::chrono::milliseconds(config_.daemon.retry_initial_ms),
                  std::chrono::milliseconds(config_.daemon.retry_max_ms));
  LogLimiter limiter;
  while (!stopping_) {
    std::string failure;
    try {
      co_await Session();
    } catch (const Error& e) {
      failure = e.what();
    } catch (const std::exception& e) {
      failure = fmt::format("internal error (please report it): {}", e.what());
    }
    source_.Close();
    target_.Close();
    if (stopping_) break;
    if (healthy_) backoff.Reset();
    healthy_ = false;
    auto delay = backoff.Next();
    int suppressed = 0;
    if (limiter.Allow(failure, suppressed)) {
      log_.Error("{}; retrying in {} ms{}", failure, delay.count(),
                 suppressed ? fmt::format(" ({} similar messages held back)", suppressed) : "");
    }
    co_await RecordError(failure);
    retry_timer_.expires_after(delay);
    boost::system::error_code ec;
    co_await retry_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  log_.Info("stopped");
}

}  // namespace pgtandem
