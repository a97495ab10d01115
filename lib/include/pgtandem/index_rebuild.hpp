// A recopy, and bootstrap --copy, build the target table's indexes after the
// COPY, as pg_restore does, instead of inserting every row into every index
// during it: one sort per index instead of a B-tree descent per row, which is
// the larger half of a recopy's cost on the target and the part that grew
// faster than the rows.
#pragma once

#include <string>
#include <vector>

#include "pgtandem/catalog.hpp"
#include "pgtandem/log.hpp"
#include "pgtandem/pg/connection.hpp"

namespace pgtandem {

// The statements that build the dropped indexes again, exactly as they were.
struct DroppedIndexes {
  std::vector<std::string> names;
  std::vector<std::string> rebuild;
};

// Inside the transaction that emptied the table for its COPY: drops the
// indexes of `table` that can be built again exactly, with their primary key
// or unique constraint, tablespace, comments, statistics targets, CLUSTER and
// REPLICA IDENTITY marks. It leaves in place the indexes anything else
// depends on (a foreign key, a partitioned index, an extension), exclusion
// constraints, invalid indexes, an index in a tablespace the role may not
// create in, and every index of a table the target's role does not own or
// whose schema it may not create in.
// Should a drop fail, nothing is dropped and the COPY keeps the indexes.
pg::Awaitable<DroppedIndexes> DropIndexesForCopy(pg::Connection& target, const CapturedTable& table,
                                                 const Logger& log);

// After the COPY, in the same transaction.
pg::Awaitable<void> RebuildIndexes(pg::Connection& target, const CapturedTable& table, const DroppedIndexes& dropped);

}  // namespace pgtandem
