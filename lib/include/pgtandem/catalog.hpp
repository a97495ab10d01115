// What the source's catalog says about the tables a sync replicates.
#pragma once

#include <string>
#include <string_view>
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
  // Every column copied has a type built into PostgreSQL, with binary I/O
  // (see BinaryRowsSql): rows then cross in COPY's binary format, which both
  // nodes parse faster than text.
  bool binary_rows = false;

  // pgtandem.d_<id> on the source.
  std::string DeltaTable() const;
  // `ONLY "s"."t"` for plain tables (no inheritance children), `"s"."t"` for partitioned ones.
  std::string Target() const;
  // COPY of the table's rows (those `where` selects, as "WHERE ..." on alias
  // t) to the client, and COPY of rows from the client into it, in binary
  // when binary_rows says so.
  std::string CopyOutSql(std::string_view where = {}) const;
  std::string CopyInSql() const;
};

// SQL, true when every copied column of relation `relid` (an SQL expression)
// has a type built into PostgreSQL (oid below FirstNormalObjectId) with
// binary send and receive functions. Such a type has the same oid and binary
// form on every node and version; a user type may not (an array or composite
// of one carries its oid, which differs between clusters), so its rows cross
// as text.
std::string BinaryRowsSql(std::string_view relid);

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
