#include "pgtandem/schema_guard.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "pgtandem/error.hpp"
#include "pgtandem/table_definition.hpp"

namespace pgtandem {
namespace {

// One digest per table, by name, so the same query serves both nodes: what
// CompareTableDefinitions compares (names, types, generated, primary key),
// not column order, which COPY's explicit column lists make irrelevant.
constexpr std::string_view kDigestsSql = R"(
SELECT r.name, pg_catalog.md5(coalesce(pg_catalog.string_agg(pg_catalog.format('%s %s %s %s', a.attname,
           pg_catalog.format_type(a.atttypid, a.atttypmod), a.attgenerated <> '',
           coalesce(a.attnum = ANY (i.indkey::int2[]), false)), ',' ORDER BY a.attname), ''))
  FROM pg_catalog.unnest($1::text[]) AS r(name)
  LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = pg_catalog.to_regclass(r.name) AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_catalog.pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
 GROUP BY r.name)";

constexpr std::string_view kSourceColumnsSql = R"(
WITH k AS (
  SELECT a.attname, a.atttypid, a.atttypmod, o.ord FROM pg_catalog.pg_index i
   CROSS JOIN LATERAL pg_catalog.unnest(i.indkey::int2[]) WITH ORDINALITY AS o(attnum, ord)
   JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = o.attnum
   WHERE i.indrelid = $1::oid AND i.indisprimary)
SELECT ARRAY(SELECT a.attname FROM pg_catalog.pg_attribute a
              WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
              ORDER BY a.attnum),
       ARRAY(SELECT k.attname FROM k ORDER BY k.ord),
       {},
       ARRAY(SELECT pg_catalog.format('%I is %s, its delta column %s', k.attname,
                                      pg_catalog.format_type(k.atttypid, k.atttypmod),
                                      pg_catalog.format_type(d.atttypid, d.atttypmod))
               FROM k JOIN pg_catalog.pg_attribute d ON d.attrelid = pg_catalog.to_regclass($2)
                                                   AND d.attname = k.attname AND NOT d.attisdropped
              WHERE (k.atttypid, k.atttypmod) IS DISTINCT FROM (d.atttypid, d.atttypmod)
              ORDER BY k.ord))";

pg::Awaitable<std::map<std::string, std::string>> Digests(pg::Connection& node, const std::vector<std::string>& names) {
  pg::Result rows = co_await node.Exec(kDigestsSql, TextArrayLiteral(names));
  std::map<std::string, std::string> digests;
  for (int row = 0; row < rows.Rows(); ++row) digests[std::string(rows.Get(row, 0))] = rows.Get(row, 1);
  co_return digests;
}

}  // namespace

pg::Awaitable<void> SchemaGuard::Check(pg::Connection& source, pg::Connection& target,
                                       const std::vector<CapturedTable*>& batch_tables) {
  if (batch_tables.empty()) co_return;
  std::vector<std::string> names;
  for (const CapturedTable* table : batch_tables) names.push_back(table->name.Quoted());
  // DDL on these tables now waits for the batch's source transaction to end,
  // so the rows it reads have the columns checked here.
  co_await source.Exec(fmt::format("LOCK TABLE {} IN ACCESS SHARE MODE", fmt::join(names, ", ")));
  auto on_source = co_await Digests(source, names);
  auto on_target = co_await Digests(target, names);
  std::vector<CapturedTable> differing;
  for (CapturedTable* table : batch_tables) {
    const std::string& digest = on_source[table->name.Quoted()];
    if (digest != on_target[table->name.Quoted()]) {
      differing.push_back(*table);
    } else if (agreed_[table->id] != digest) {
      co_await Adopt(source, *table);
      agreed_[table->id] = digest;
    }
  }
  if (differing.empty()) co_return;
  std::vector<std::string> differences = co_await CompareTableDefinitions(source, target, differing);
  if (differences.empty()) differences.push_back("the definitions changed while they were compared");
  throw Error(ErrorKind::kState,
              fmt::format("replicated tables are defined differently on the source and on this target, so no batch is "
                          "applied until they match:\n  {}\nApply the same DDL on the node that lacks it (on the "
                          "target first, then the source, pauses the sync the least); replication resumes by itself "
                          "once the definitions match",
                          fmt::join(differences, "\n  ")));
}

// Both nodes agree on a definition the sync has not copied yet: copy its
// columns from now on, unless the primary key moved, which the deltas
// captured so far cannot follow.
pg::Awaitable<void> SchemaGuard::Adopt(pg::Connection& source, CapturedTable& table) {
  pg::Result now =
      co_await source.Exec(fmt::format(kSourceColumnsSql, BinaryRowsSql("$1::oid")), table.relid, table.DeltaTable());
  std::vector<std::string> columns = ParseTextArray(now.Get(0, 0));
  std::vector<std::string> key = ParseTextArray(now.Get(0, 1));
  if (key != table.key_columns) {
    throw Error(ErrorKind::kState,
                fmt::format("the primary key of table {} is now ({}) on the source, but capture was installed for ({}); "
                            "run \"pgtandem uninstall\" and \"pgtandem install\", then bootstrap the targets",
                            table.name.Display(), fmt::join(key, ", "), fmt::join(table.key_columns, ", ")));
  }
  bool known = agreed_.count(table.id) > 0;
  if (columns != table.columns && known) {
    log_.Info("table {}: its definition changed alike on the source and this target; copying columns ({}) from now on",
              table.name.Display(), fmt::join(columns, ", "));
  }
  table.columns = std::move(columns);
  table.binary_rows = now.GetBool(0, 2);
  // The capture keeps a key's type from install time; only install changes it.
  std::vector<std::string> retyped = ParseTextArray(now.Get(0, 3));
  if (!retyped.empty()) {
    log_.Warning("table {}: a key column's type changed on the source ({}): run \"pgtandem install\" now. Until "
                 "then a key only the new type holds fails the application's write, and with the PL/pgSQL capture "
                 "so does every write to the table from a session that wrote to it before the change",
                 table.name.Display(), fmt::join(retyped, "; "));
  }
}

}  // namespace pgtandem
