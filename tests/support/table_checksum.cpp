// Table contents as one comparable string: how tests check a target equals its source.
#include "support/table_checksum.hpp"

namespace pgtandem::test {

std::string TableChecksum(const PgCluster& cluster, std::string_view dbname,
                          std::string_view quoted_table) {
  // COLLATE "C" sorts bytewise, so two databases with different default
  // collations still agree on the order; coalesce covers the empty table,
  // where string_agg is NULL.
  const std::string sql =
      "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, E'\\n' "
      "ORDER BY t::text COLLATE \"C\")), '') FROM " +
      std::string(quoted_table) + " AS t";
  return cluster.Query1(sql, dbname);
}

std::vector<std::string> UserTables(const PgCluster& cluster, std::string_view dbname) {
  // Temp and toast schemas hold no replicated tables.
  const auto rows = cluster.Query(
      R"sql(SELECT '"' || replace(n.nspname, '"', '""') || '"."'
                   || replace(c.relname, '"', '""') || '"'
              FROM pg_class c
              JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p')
               AND NOT c.relispartition
               AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgtandem')
               AND n.nspname NOT LIKE 'pg\_toast%'
               AND n.nspname NOT LIKE 'pg\_temp\_%'
               AND n.nspname NOT LIKE 'pg\_toast\_temp\_%'
             ORDER BY n.nspname COLLATE "C", c.relname COLLATE "C")sql",
      dbname);
  std::vector<std::string> tables;
  tables.reserve(rows.size());
  for (const auto& row : rows) tables.push_back(row.at(0));
  return tables;
}

}  // namespace pgtandem::test
