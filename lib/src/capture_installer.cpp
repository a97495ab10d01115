// Capture install (one transaction, short lock waits, retried) and uninstall.
#include "pgtandem/capture_installer.hpp"

#include <fmt/format.h>

#include "pgtandem/async.hpp"
#include "pgtandem/backoff.hpp"
#include "pgtandem/catalog.hpp"
#include "pgtandem/identifier.hpp"
#include "pgtandem/sql_text.hpp"

namespace pgtandem {
namespace {

constexpr std::string_view kLockNotAvailable = "55P03";

constexpr std::string_view kBlockersSql = R"(
SELECT pg_catalog.format('pid %s (%s, %s for %s: %s)', a.pid, coalesce(a.usename, '?'), coalesce(a.state, '?'),
                         date_trunc('second', pg_catalog.now() - coalesce(a.xact_start, a.backend_start)),
                         left(regexp_replace(coalesce(a.query, ''), '\s+', ' ', 'g'), 80))
  FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
 WHERE l.relation = $1::regclass AND l.granted AND l.pid <> pg_catalog.pg_backend_pid()
   AND l.mode <> 'AccessShareLock')";

pg::Awaitable<void> CheckCanBeSource(pg::Connection& source) {
  if (source.ServerVersion() < 130000) {
    throw source.Failure(fmt::format("PostgreSQL {} is too old to be a source; capture needs xid8 snapshots "
                                     "(PostgreSQL 13 or later)", source.ServerVersion() / 10000));
  }
  NodeRole role = co_await ReadNodeRole(source);
  if (role == NodeRole::kTarget) {
    throw Error(ErrorKind::kState, fmt::format("{} holds pgtandem's target schema (it receives changes); install "
                                               "capture on the sync's source, or run \"pgtandem uninstall --node "
                                               "{}\" first", source.Describe(), source.Node()));
  }
}

// The C trigger function, unless it is there already for the same module:
// LANGUAGE c needs a superuser even for CREATE OR REPLACE.
pg::Awaitable<void> CreateCaptureFunction(pg::Connection& source, const std::string& library) {
  pg::Result existing = co_await source.Exec(
      "SELECT probin FROM pg_catalog.pg_proc WHERE oid = pg_catalog.to_regprocedure('pgtandem.capture_row()')");
  if (existing.Rows() > 0 && existing.Get(0, 0) == library) co_return;
  co_await source.Exec(fmt::format("CREATE OR REPLACE FUNCTION pgtandem.capture_row() RETURNS trigger "
                                   "LANGUAGE c AS {}, 'capture_row'", QuoteLiteral(library)));
}

// What the DBA does about a C trigger the server would not create.
std::string CaptureFunctionFix(const Error& e) {
  return e.SqlState() == "42501"
             ? "run \"pgtandem install\" once as a superuser (creating a C function needs a superuser)"
             : "install the module on the source's host (the pgtandem package puts it in PostgreSQL's library "
               "directory), or point the node's \"capture_library\" at it";
}

// "capture": "c" insists: no trigger, no install.
pg::Awaitable<void> RequireCaptureFunction(pg::Connection& source, const std::string& library) {
  try {
    co_await CreateCaptureFunction(source, library);
  } catch (const Error& e) {
    throw Error(ErrorKind::kState, fmt::format("{}. The C capture trigger could not be created from {}, and nothing "
                                               "was installed: {}, or set the node's \"capture\" to \"plpgsql\"",
                                               e.what(), library, CaptureFunctionFix(e)),
                e.SqlState());
  }
}

// "capture": "auto" settles for PL/pgSQL when the server cannot create the C
// trigger (no module, one built for another version, no superuser) and keeps
// the reason. The savepoint keeps the install's transaction alive after that.
pg::Awaitable<bool> TryCaptureFunction(pg::Connection& source, const std::string& library, std::string& reason) {
  co_await source.Exec("SAVEPOINT c_capture");
  bool created = false;
  try {
    co_await CreateCaptureFunction(source, library);
    created = true;
  } catch (const Error& e) {
    if (!source.Connected()) throw;
    reason = fmt::format("the C trigger could not be created from {}: {}. To use it, {}", library, e.what(),
                         CaptureFunctionFix(e));
  }
  co_await source.Exec(created ? "RELEASE SAVEPOINT c_capture" : "ROLLBACK TO SAVEPOINT c_capture");
  co_return created;
}

// Runs the whole install in one transaction; `current` names the table being locked.
pg::Awaitable<InstallReport> InstallOnce(pg::Connection& source, const SyncConfig& sync,
                                         const InstallOptions& options, std::string& current) {
  co_await source.Exec("BEGIN");
  co_await source.Exec(fmt::format("SET LOCAL lock_timeout = {}", options.lock_timeout.count()));
  std::vector<TableName> tables = co_await SelectTables(source, sync);
  co_await source.Exec(sql::k_source_schema);
  InstallReport report;
  if (options.method == CaptureMethod::kC) {
    co_await RequireCaptureFunction(source, options.library);
    report.c_capture = true;
  } else if (options.method == CaptureMethod::kAuto) {
    report.c_capture = co_await TryCaptureFunction(source, options.library, report.c_unavailable);
  }
  for (const auto& table : tables) {
    current = table.Quoted();
    pg::Result known = co_await source.Exec("SELECT 1 FROM pgtandem.captured_table WHERE relid = $1::regclass", current);
    co_await source.Exec(fmt::format("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE", current));
    co_await source.Exec("INSERT INTO pgtandem.sync_table (sync, table_id) SELECT $1, pgtandem.capture_table($2::regclass, $3) "
        "ON CONFLICT DO NOTHING", sync.name, current, std::string(report.c_capture ? "true" : "false"));
    (known.Rows() > 0 ? report.existing : report.added).push_back(table.Display());
  }
  co_await source.Exec("COMMIT");
  co_return report;
}

pg::Awaitable<std::string> DescribeBlockers(pg::Connection& source, const std::string& table) {
  pg::Result blockers = co_await source.Exec(kBlockersSql, table);
  std::string text;
  for (int row = 0; row < blockers.Rows(); ++row) text += fmt::format("{}{}", row ? "; " : "", blockers.Get(row, 0));
  co_return text.empty() ? std::string("sessions that have since finished") : text;
}

}  // namespace

pg::Awaitable<InstallReport> InstallCapture(pg::Connection& source, const SyncConfig& sync,
                                            const InstallOptions& options, const Logger& log) {
  co_await CheckCanBeSource(source);
  Backoff backoff(std::chrono::seconds(1), std::chrono::seconds(30));
  for (int attempt = 1;; ++attempt) {
    std::string current;
    std::exception_ptr failure;
    bool lock_timeout = false;
    try {
      co_return co_await InstallOnce(source, sync, options, current);
    } catch (const Error& e) {
      lock_timeout = e.SqlState() == kLockNotAvailable;
      failure = std::current_exception();
    }
    if (source.Connected()) co_await source.Exec("ROLLBACK");
    if (!lock_timeout) std::rethrow_exception(failure);
    std::string blockers = co_await DescribeBlockers(source, current);
    if (attempt >= options.max_attempts) {
      throw Error(ErrorKind::kState,
                  fmt::format("sync '{}': could not lock table {} on {} after {} attempts; it is held by {}. Nothing "
                              "was installed. Retry when the table is quieter, or raise --lock-timeout",
                              sync.name, current, source.Describe(), attempt, blockers));
    }
    auto delay = backoff.Next();
    log.Warning("waiting for a lock on table {} (attempt {} of {}), held by {}; nothing installed yet, retrying in "
                "{} ms", current, attempt, options.max_attempts, blockers, delay.count());
    co_await Sleep(delay);
  }
}

pg::Awaitable<int> Uninstall(pg::Connection& node) {
  pg::Result count = co_await node.Exec(R"(
SELECT count(*) FROM pg_catalog.pg_trigger t
  JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
  JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'pgtandem' AND t.tgparentid = 0)");
  co_await node.Exec("DROP SCHEMA IF EXISTS pgtandem CASCADE");
  co_return static_cast<int>(count.GetInt(0, 0));
}

}  // namespace pgtandem
