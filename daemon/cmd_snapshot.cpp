// pgtandem snapshot: export a source snapshot for the DBA's pg_dump, an exact catch-up boundary.
#include <fmt/format.h>

#include "command.hpp"
#include "pgtandem/async.hpp"
#include "pgtandem/error.hpp"
#include "pgtandem/snapshot_export.hpp"

namespace pgtandem::cli {
namespace {

// The source's dsn for the printed pg_dump command: its TLS options too, so
// that the dump verifies the server as pgtandem does, but never its password,
// which pg_dump finds in ~/.pgpass. Only sslpassword, which cannot be left
// out, falls back to host, port, dbname and user.
std::string DumpDsn(const Dsn& dsn) {
  try {
    return dsn.WithoutPassword();
  } catch (const Error&) {
    return dsn.Describe();
  }
}

int Run(const Config& config, const ParsedArgs& args) {
  auto syncs = config.SelectSyncs(args.Value("--sync"));
  if (syncs.size() != 1) throw Error(ErrorKind::kUsage, "the config defines several syncs; name one with --sync NAME");
  const SyncConfig& sync = *syncs.front();
  auto wait = std::chrono::seconds(args.Number("--wait", 1, 86400).value_or(600));
  auto hold = std::chrono::seconds(args.Number("--hold", 1, 86400).value_or(3600));
  Logger log(LogContext{sync.name, sync.source, "source", ""});
  const NodeConfig& node = config.Node(sync.source);
  const std::string dump_dsn = DumpDsn(node.dsn);
  RunBlocking<int>([&](boost::asio::any_io_executor ex) -> pg::Awaitable<int> {
    auto timeout = std::chrono::seconds(config.daemon.connect_timeout_s);
    pg::Connection exporter(ex, sync.source, pg::Side::kSource, node.dsn, timeout);
    pg::Connection watcher(ex, sync.source, pg::Side::kSource, node.dsn, timeout);
    co_await exporter.Connect();
    co_await watcher.Connect();
    ExportedSnapshot exported = co_await ExportSnapshot(exporter, watcher, wait, log);
    fmt::print("snapshot {} exported on source node '{}' (source snapshot {}); it is held open until pg_dump has used "
               "it. Run now, in another terminal (any format; -j works):\n\n"
               "  pg_dump --snapshot={} --format=directory --jobs=4 --file=DUMPDIR \"{}\"\n\n"
               "then restore it on the target and run: pgtandem bootstrap --sync {} --target TARGET\n",
               exported.id, sync.source, exported.snapshot, exported.id, dump_dsn, sync.name);
    pg::Result c_capture =
        co_await watcher.Exec("SELECT pg_catalog.to_regprocedure('pgtandem.capture_row()') IS NOT NULL");
    if (c_capture.Get(0, 0) == "t") {
      fmt::print("\nThe source captures with the C trigger, pgtandem.capture_row(). A server without pgtandem's module "
                 "(a managed one) refuses that function, and the triggers that call it, when the dump is restored; "
                 "bootstrap removes them either way. To restore a directory or custom format dump without those "
                 "errors, leave them out:\n\n"
                 "  pg_restore -l DUMPDIR | grep -v -e capture_row -e pgtandem_capture > DUMPDIR.list\n"
                 "  pg_restore -L DUMPDIR.list -d TARGET DUMPDIR\n");
    }
    std::fflush(stdout);
    co_await HoldUntilDumped(watcher, hold, log);
    fmt::print("pg_dump has finished with the snapshot; it is released\n");
    co_return 0;
  });
  return 0;
}

}  // namespace

const Command& SnapshotCommand() {
  static const Command command{
      {"snapshot", "export a source snapshot for your own pg_dump: an exact boundary for bootstrap",
       "Waits until every transaction that was running when capture was installed has ended, exports a snapshot,\n"
       "records it as a boundary, prints the pg_dump command to run with it, and holds it open until pg_dump has\n"
       "finished. A target restored from that dump catches up from exactly that boundary.",
       {{"--sync", "NAME", "the sync (required when the config has several)"},
        {"--wait", "SECONDS", "longest wait for transactions older than the install (default 600)"},
        {"--hold", "SECONDS", "longest wait for pg_dump to connect (default 3600)"}}},
      &Run};
  return command;
}

}  // namespace pgtandem::cli
