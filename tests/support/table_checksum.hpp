// Table contents as one comparable string: how tests check a target equals its source.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "support/pg_cluster.hpp"

namespace pgtandem::test {

// "<row count>:<md5 of all rows as text, sorted>" for `quoted_table` (e.g.
// "public"."orders"); equal strings mean equal contents whatever the physical
// row order. An empty table gives "0:". For a partitioned table it covers all
// partitions.
std::string TableChecksum(const PgCluster& cluster, std::string_view dbname,
                          std::string_view quoted_table);

// Every ordinary and partitioned table outside pg_catalog, information_schema
// and pgtandem, as "schema"."table" (always quoted), sorted. Partitions are
// left out: their rows are counted through their parent.
std::vector<std::string> UserTables(const PgCluster& cluster, std::string_view dbname);

}  // namespace pgtandem::test
