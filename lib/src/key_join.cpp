#include "pgtandem/key_join.hpp"

#include <fmt/format.h>

namespace pgtandem {

KeyJoin ChooseKeyJoin(int64_t keys, double pages, pg::Side side) {
  if (keys < kKeysWorthAScan) return KeyJoin::kIndexProbes;
  double keys_a_page_worth_a_scan = side == pg::Side::kSource ? 4 : 8;
  return static_cast<double>(keys) >= pages * keys_a_page_worth_a_scan ? KeyJoin::kTableScan : KeyJoin::kIndexProbes;
}

std::string_view Describe(KeyJoin join) { return join == KeyJoin::kIndexProbes ? "index probes" : "a table scan"; }

std::string KeyJoinSettingsSql(KeyJoin join) {
  bool probes = join == KeyJoin::kIndexProbes;
  // Probes in key order walk the primary key index, and the target's inserts
  // after them, page by page; in hash order each lands on a random page.
  return fmt::format(
      "SELECT pg_catalog.set_config('enable_nestloop', '{0}', true), pg_catalog.set_config('enable_hashjoin', '{1}', true), "
      "pg_catalog.set_config('enable_hashagg', '{1}', true), pg_catalog.set_config('enable_mergejoin', 'off', true)",
      probes ? "on" : "off", probes ? "off" : "on");
}

// By name, not oid: the same query serves the source and the target.
pg::Awaitable<double> RelationPages(pg::Connection& node, const CapturedTable& table) {
  pg::Result pages = co_await node.Exec(fmt::format(
      "SELECT coalesce(pg_catalog.sum(pg_catalog.pg_relation_size(r)), 0) / pg_catalog.current_setting('block_size')::int "
      "FROM (SELECT {0}::regclass AS r WHERE NOT {1} "
      "UNION ALL SELECT relid FROM pg_catalog.pg_partition_tree({0}::regclass) WHERE isleaf AND {1}) t",
      QuoteLiteral(table.name.Quoted()), table.partitioned ? "true" : "false"));
  co_return std::stod(std::string(pages.Get(0, 0)));
}

}  // namespace pgtandem
