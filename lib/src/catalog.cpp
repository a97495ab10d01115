// Pattern resolution and captured-table descriptions, read from pg_catalog.
#include "pgtandem/catalog.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace pgtandem {
namespace {

// Partitions are captured through their parent, so patterns never select them.
constexpr std::string_view kUserTablesSql = R"(
SELECT n.nspname, c.relname, c.relkind = 'p' AS partitioned,
       EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS has_key,
       ARRAY(SELECT a.attname FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                AND (t.oid = 'pg_catalog.oid'::pg_catalog.regtype
                     OR t.typbasetype = 'pg_catalog.oid'::pg_catalog.regtype)
              ORDER BY a.attnum) AS oid_columns
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
   AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgtandem')
   AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
 ORDER BY 1, 2)";

constexpr std::string_view kCapturedSql = R"(
SELECT t.id, t.schema_name, t.table_name, c.relkind = 'p', t.key_columns, t.relid,
       ARRAY(SELECT a.attname FROM pg_catalog.pg_attribute a
              WHERE a.attrelid = t.relid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
              ORDER BY a.attnum),
       {}
  FROM pgtandem.captured_table t
  JOIN pgtandem.sync_table s ON s.table_id = t.id
  JOIN pg_catalog.pg_class c ON c.oid = t.relid
 WHERE s.sync = $1
 ORDER BY t.id)";

bool MatchesAny(const std::vector<TablePattern>& patterns, const TableName& table) {
  return std::any_of(patterns.begin(), patterns.end(), [&](const TablePattern& p) { return p.Matches(table); });
}

}  // namespace

pg::Awaitable<NodeRole> ReadNodeRole(pg::Connection& node) {
  pg::Result tables = co_await node.Exec(
      "SELECT pg_catalog.to_regclass('pgtandem.captured_table') IS NOT NULL, "
      "pg_catalog.to_regclass('pgtandem.progress') IS NOT NULL");
  if (tables.GetBool(0, 0)) co_return NodeRole::kSource;
  co_return tables.GetBool(0, 1) ? NodeRole::kTarget : NodeRole::kNone;
}

std::string CapturedTable::DeltaTable() const { return fmt::format("pgtandem.d_{}", id); }

std::string CapturedTable::Target() const { return partitioned ? name.Quoted() : "ONLY " + name.Quoted(); }

std::string CapturedTable::CopyOutSql(std::string_view where) const {
  return fmt::format("COPY (SELECT {} FROM {} t{}{}) TO STDOUT{}", QuotedList(columns, "t."), Target(),
                     where.empty() ? "" : " ", where, binary_rows ? " (FORMAT binary)" : "");
}

std::string CapturedTable::CopyInSql() const {
  return fmt::format("COPY {} ({}) FROM STDIN{}", name.Quoted(), QuotedList(columns),
                     binary_rows ? " (FORMAT binary)" : "");
}

std::string BinaryRowsSql(std::string_view relid) {
  return fmt::format(
      "(SELECT coalesce(pg_catalog.bool_and(y.oid < 16384 AND y.typsend::oid <> 0 AND y.typreceive::oid <> 0), true) "
      "FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type y ON y.oid = a.atttypid "
      "WHERE a.attrelid = {} AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '')",
      relid);
}

std::string QuotedList(const std::vector<std::string>& names, std::string_view prefix) {
  std::string out;
  for (const auto& name : names) {
    if (!out.empty()) out += ", ";
    out += prefix;
    out += QuoteIdent(name);
  }
  return out;
}

pg::Awaitable<std::vector<TableName>> SelectTables(pg::Connection& source, const SyncConfig& sync) {
  pg::Result all = co_await source.Exec(kUserTablesSql);
  std::vector<TableName> selected;
  std::vector<std::string> keyless;
  std::vector<std::string> large_objects;
  std::vector<bool> pattern_used(sync.tables.size(), false);
  for (int row = 0; row < all.Rows(); ++row) {
    TableName table{std::string(all.Get(row, 0)), std::string(all.Get(row, 1))};
    bool matched = false;
    for (size_t i = 0; i < sync.tables.size(); ++i) {
      if (sync.tables[i].Matches(table)) matched = pattern_used[i] = true;
    }
    if (!matched || MatchesAny(sync.exclude, table)) continue;
    if (!all.GetBool(row, 3)) keyless.push_back(table.Display());
    for (const auto& column : ParseTextArray(all.Get(row, 4))) {
      large_objects.push_back(fmt::format("{} column {}", table.Display(), QuoteIdent(column)));
    }
    selected.push_back(std::move(table));
  }
  std::vector<std::string> problems;
  for (size_t i = 0; i < sync.tables.size(); ++i) {
    if (!pattern_used[i]) {
      problems.push_back(fmt::format("pattern \"{}\" in \"tables\" matches no table on {}; check the name and "
                                     "its case, or remove it", sync.tables[i].Text(), source.Describe()));
    }
  }
  if (!keyless.empty()) {
    problems.push_back(fmt::format("{} selected table(s) have no primary key: {}; add a primary key, or list them "
                                   "under \"exclude\"", keyless.size(), fmt::join(keyless, ", ")));
  }
  // An oid column (or the lo extension's domain over it) usually points at a
  // large object, which no trigger sees and COPY does not carry: only the
  // number would reach the target, pointing at nothing there.
  if (!large_objects.empty()) {
    problems.push_back(fmt::format("{} selected column(s) have type oid, which usually points at a large object, and "
                                   "large objects are not replicated: {}; store the data in a bytea column, or list "
                                   "the table under \"exclude\" and copy its large objects yourself",
                                   large_objects.size(), fmt::join(large_objects, ", ")));
  }
  if (!problems.empty()) {
    throw Error(ErrorKind::kState, fmt::format("sync '{}': {}", sync.name, fmt::join(problems, "\n")));
  }
  co_return selected;
}

pg::Awaitable<std::vector<TableName>> MatchingTables(pg::Connection& source, const SyncConfig& sync) {
  pg::Result all = co_await source.Exec(kUserTablesSql);
  std::vector<TableName> matching;
  for (int row = 0; row < all.Rows(); ++row) {
    TableName table{std::string(all.Get(row, 0)), std::string(all.Get(row, 1))};
    if (MatchesAny(sync.tables, table) && !MatchesAny(sync.exclude, table)) matching.push_back(std::move(table));
  }
  co_return matching;
}

pg::Awaitable<std::vector<CapturedTable>> LoadCapturedTables(pg::Connection& source, const std::string& sync) {
  NodeRole role = co_await ReadNodeRole(source);
  if (role != NodeRole::kSource) {
    throw Error(ErrorKind::kState, fmt::format("capture is not installed on {} (no pgtandem capture schema); run "
                                               "\"pgtandem install --sync {}\"", source.Describe(), sync));
  }
  pg::Result result = co_await source.Exec(fmt::format(kCapturedSql, BinaryRowsSql("t.relid")), sync);
  std::vector<CapturedTable> tables;
  for (int row = 0; row < result.Rows(); ++row) {
    CapturedTable table;
    table.id = static_cast<int>(result.GetInt(row, 0));
    table.name = {std::string(result.Get(row, 1)), std::string(result.Get(row, 2))};
    table.partitioned = result.GetBool(row, 3);
    table.key_columns = ParseTextArray(result.Get(row, 4));
    table.relid = result.Get(row, 5);
    table.columns = ParseTextArray(result.Get(row, 6));
    table.binary_rows = result.GetBool(row, 7);
    tables.push_back(std::move(table));
  }
  co_return tables;
}

}  // namespace pgtandem
