// pgtandem uninstall: remove every pgtandem object from a node.
#include <set>

#include <fmt/format.h>

#include "command.hpp"
#include "pgtandem/async.hpp"
#include "pgtandem/capture_installer.hpp"

namespace pgtandem::cli {
namespace {

int Run(const Config& config, const ParsedArgs& args) {
  std::set<std::string> nodes;
  if (auto node = args.Value("--node")) {
    config.Node(*node);
    nodes.insert(*node);
  } else {
    for (const SyncConfig* sync : config.SelectSyncs(args.Value("--sync"))) nodes.insert(sync->source);
  }
  for (const auto& node : nodes) {
    int triggers = RunBlocking<int>([&](boost::asio::any_io_executor ex) -> pg::Awaitable<int> {
      pg::Connection connection(ex, node, pg::Side::kSource, config.Node(node).dsn,
                                std::chrono::seconds(config.daemon.connect_timeout_s));
      co_await connection.Connect();
      co_return co_await Uninstall(connection);
    });
    fmt::print("node '{}': removed schema pgtandem and {} capture trigger(s); no pgtandem object remains\n", node,
               triggers);
  }
  return 0;
}

}  // namespace

const Command& UninstallCommand() {
  static const Command command{
      {"uninstall", "remove every pgtandem object (schema, functions, triggers) from a node",
       "Without --node, acts on the source node of each selected sync. Capture stops at once for every sync\n"
       "on that source; on a target, its recorded progress is removed with the schema.",
       {{"--sync", "NAME", "the source of this sync (default: of every sync)"},
        {"--node", "NODE", "this node instead, source or target"}}},
      &Run};
  return command;
}

}  // namespace pgtandem::cli
