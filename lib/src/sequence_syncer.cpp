// The daemon's periodic sequence sync, one (sync, target) pair per syncer.
#include "pgtandem/sequence_syncer.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

namespace pgtandem {
namespace asio = boost::asio;

namespace {

// Forward only, within what exists; columns without an index are left to the
// CLI and to cutover, so a round never scans a whole table.
SequenceOptions DaemonOptions() {
  SequenceOptions options;
  options.scan_unindexed = false;
  return options;
}

}  // namespace

SequenceSyncer::SequenceSyncer(asio::any_io_executor strand, std::shared_ptr<const Config> config,
                               const SyncConfig& sync, std::string target, std::shared_ptr<const SyncGate> gate)
    : strand_(strand),
      config_(std::move(config)),
      sync_(sync),
      target_name_(std::move(target)),
      gates_(1, std::move(gate)),
      log_(LogContext{sync.name, target_name_, "target", "sequences"}),
      source_(strand, sync.source, pg::Side::kSource, config_->Node(sync.source).dsn,
              std::chrono::seconds(config_->daemon.connect_timeout_s), std::chrono::seconds(config_->daemon.io_timeout_s)),
      target_(strand, target_name_, pg::Side::kTarget, config_->Node(target_name_).dsn,
              std::chrono::seconds(config_->daemon.connect_timeout_s), std::chrono::seconds(config_->daemon.io_timeout_s)),
      timer_(strand) {}

void SequenceSyncer::Stop() {
  stopping_ = true;
  timer_.cancel();
}

pg::Awaitable<TargetSequencesReport> SequenceSyncer::SyncOnce() {
  if (!source_.Connected()) co_await source_.Connect();
  if (!target_.Connected()) co_await target_.Connect();
  SyncSequenceSet set = co_await LoadSyncSequences(source_, sync_);
  co_return co_await SyncTargetSequences(target_, set, DaemonOptions());
}

void SequenceSyncer::LogRound(const TargetSequencesReport& report) {
  std::vector<std::string> risks;
  for (const auto& r : report.sequences) {
    if (r.target_next_after) {
      log_.Debug("set {} to next value {} (source next {})", r.sequence.Display(), *r.target_next_after, r.source_next);
    }
    if (r.at_risk) risks.push_back(DescribeRisk(r, sync_.name, target_name_));
  }
  if (risks.empty()) return;
  std::string message = fmt::format("{} sequence(s) at risk of handing out values the target already holds: {}",
                                    risks.size(), fmt::join(risks, "; "));
  int suppressed = 0;
  if (risks_.Allow(message, suppressed)) {
    log_.Warning("{}{}", message, HeldBack(suppressed));
  }
}

pg::Awaitable<void> SequenceSyncer::Run() {
  while (!stopping_) {
    if (!AnyOpen(gates_)) {
      source_.Close();
      target_.Close();
      co_await WaitForOpenGate(gates_, timer_, stopping_);
      continue;
    }
    std::string failure;
    try {
      TargetSequencesReport report = co_await SyncOnce();
      LogRound(report);
    } catch (const Error& e) {
      failure = e.what();
    } catch (const std::exception& e) {
      failure = fmt::format("internal error (please report it): {}", e.what());
    }
    if (!failure.empty()) {
      source_.Close();
      target_.Close();
      int suppressed = 0;
      if (failures_.Allow(failure, suppressed)) {
        log_.Warning("{}; syncing sequences again in the next round{}", failure, HeldBack(suppressed));
      }
    }
    if (stopping_) break;
    timer_.expires_after(std::chrono::milliseconds(config_->daemon.sequence_sync_interval_ms));
    boost::system::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  log_.Info("stopped");
}

}  // namespace pgtandem
