// Column-by-column comparison of table definitions, read from each node's catalog.
#include "pgtandem/table_definition.hpp"

#include <map>

#include <fmt/format.h>

namespace pgtandem {
namespace {

struct Column {
  std::string type;
  bool generated = false;
  bool in_key = false;
};

constexpr std::string_view kColumnsSql = R"(
SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attgenerated <> '',
       coalesce(a.attnum = ANY (i.indkey::int2[]), false)
  FROM pg_catalog.pg_attribute a
  LEFT JOIN pg_catalog.pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
 WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped)";

// Columns by name; nullopt when the table does not exist.
pg::Awaitable<std::optional<std::map<std::string, Column>>> ReadColumns(pg::Connection& node, const TableName& table) {
  pg::Result exists = co_await node.Exec("SELECT pg_catalog.to_regclass($1) IS NOT NULL", table.Quoted());
  if (!exists.GetBool(0, 0)) co_return std::nullopt;
  pg::Result rows = co_await node.Exec(kColumnsSql, table.Quoted());
  std::map<std::string, Column> columns;
  for (int row = 0; row < rows.Rows(); ++row) {
    columns[std::string(rows.Get(row, 0))] = {std::string(rows.Get(row, 1)), rows.GetBool(row, 2), rows.GetBool(row, 3)};
  }
  co_return columns;
}

std::string Describe(const Column& c) {
  return fmt::format("{}{}{}", c.type, c.generated ? ", generated" : "", c.in_key ? ", in the primary key" : "");
}

void Compare(const std::string& table, const std::map<std::string, Column>& source,
             const std::map<std::string, Column>& target, std::vector<std::string>& out) {
  for (const auto& [name, column] : source) {
    auto found = target.find(name);
    if (found == target.end()) {
      out.push_back(fmt::format("table {}: column {} ({}) is missing on the target", table, QuoteIdent(name), Describe(column)));
    } else if (Describe(found->second) != Describe(column)) {
      out.push_back(fmt::format("table {}: column {} is {} on the source but {} on the target", table, QuoteIdent(name),
                                Describe(column), Describe(found->second)));
    }
  }
  for (const auto& [name, column] : target) {
    if (!source.count(name)) {
      out.push_back(fmt::format("table {}: column {} ({}) exists only on the target", table, QuoteIdent(name),
                                Describe(column)));
    }
  }
}

}  // namespace

pg::Awaitable<std::vector<std::string>> CompareTableDefinitions(pg::Connection& source, pg::Connection& target,
                                                                const std::vector<CapturedTable>& tables) {
  std::vector<std::string> differences;
  for (const auto& table : tables) {
    auto on_source = co_await ReadColumns(source, table.name);
    auto on_target = co_await ReadColumns(target, table.name);
    if (!on_target) {
      differences.push_back(fmt::format("table {} is missing on the target", table.name.Display()));
    } else if (on_source) {
      Compare(table.name.Display(), *on_source, *on_target, differences);
    }
  }
  co_return differences;
}

}  // namespace pgtandem
