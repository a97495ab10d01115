// Compares the source's and a target's definitions of the replicated tables.
#pragma once

#include <string>
#include <vector>

#include "pgtandem/catalog.hpp"
#include "pgtandem/pg/connection.hpp"

namespace pgtandem {

// Every difference in columns, types and primary key, one sentence each,
// naming the table, the column and both definitions; empty when they match.
pg::Awaitable<std::vector<std::string>> CompareTableDefinitions(pg::Connection& source, pg::Connection& target,
                                                                const std::vector<CapturedTable>& tables);

}  // namespace pgtandem
