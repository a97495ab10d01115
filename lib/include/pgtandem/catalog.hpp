// What the source's catalog says about the tables a sync replicates.
#pragma once

#include <string>
#include <vector>

#include "pgtandem/config.hpp"
#include "pgtandem/identifier.hpp"
#include "pgtandem/pg/connection.hpp"

namespace pgtandem {

// A table capture has been installed for, as the daemon reads and writes it.
struct CapturedTable {
  int id = 0;
  std::string relid;  // the table's oid on the source
  TableName name;
  bool partitioned = false;
  std::vector<std::string> key_columns;
  // Columns copied, in table order: not dropped, not GENERATED ... STORED.
  std::vector<std::string> columns;

  // pgtandem.d_<id> on the source.
  std::string DeltaTable() const;
  // `ONLY "s"."t"` for plain tables (no inheritance children), `"s"."t"` for partitioned ones.
  std::string Target() const;
};

// Resolves a sync's patterns against the source catalog. Throws one Error that
// lists every problem: patterns matching nothing, tables without a primary key.
pg::Awaitable<std::vector<TableName>> SelectTables(pg::Connection& source, const SyncConfig& sync);

// The source's tables a sync's patterns select now, unchecked (keys, types):
// what status compares with the captured ones to find tables created since install.
pg::Awaitable<std::vector<TableName>> MatchingTables(pg::Connection& source, const SyncConfig& sync);

// The captured tables of a sync, ordered by id (the order batches visit them).
pg::Awaitable<std::vector<CapturedTable>> LoadCapturedTables(pg::Connection& source, const std::string& sync);

// Which pgtandem schema a node holds: kNone, kSource (capture, possibly a
// restored copy of the source), or kTarget (progress of applied changes).
enum class NodeRole { kNone, kSource, kTarget };
pg::Awaitable<NodeRole> ReadNodeRole(pg::Connection& node);

// Joins names quoted: "a", "b".
std::string QuotedList(const std::vector<std::string>& names, std::string_view prefix = {});

}  // namespace pgtandem
