// Row hashes for compare; see row_hash.hpp.
#include "pgtandem/row_hash.hpp"

#include <fmt/format.h>

namespace pgtandem {
namespace {

constexpr std::string_view kColumnTypesSql = R"(
SELECT c.name, a.atttypid::int8, a.attnotnull
  FROM pg_catalog.unnest($2::text[]) WITH ORDINALITY AS c(name, ord)
  JOIN pg_catalog.pg_attribute a ON a.attrelid = $1::oid AND a.attname = c.name
 ORDER BY c.ord)";

// A built-in type (its OID is the same on every server) hashed with its own
// hash function: equality of these types holds exactly the values whose text
// output is the same.
struct TypeHash {
  int64_t oid;
  std::string_view function;
  std::string_view cast;
  bool bytes;
};

constexpr TypeHash kTypeHashes[] = {
    {16, "hashint4extended", "int4", false},  // bool: false 0, true 1
    {19, "hashnameextended", "", true},
    {20, "hashint8extended", "", false},
    {21, "hashint2extended", "", false},
    {23, "hashint4extended", "", false},
    {25, "hashtextextended", "", true},
    {26, "hashoidextended", "", false},
    // character: trailing blanks, which its equality ignores, are ignored here too.
    {1042, "hashbpcharextended", "", true},
    {1043, "hashtextextended", "", true},    // varchar: binary-compatible with text
    {1083, "time_hash_extended", "", false},
    {1114, "timestamp_hash_extended", "", false},
    // timestamptz as timestamp in the compare session's time zone, UTC: the same instant, the same microseconds.
    {1184, "timestamp_hash_extended", "timestamp", false},
    {2950, "uuid_hash_extended", "", false},
};

HashedColumn HashOf(std::string name, int64_t type, bool not_null) {
  for (const TypeHash& known : kTypeHashes) {
    if (known.oid != type) continue;
    return {std::move(name), std::string(known.function), std::string(known.cast), known.bytes, not_null};
  }
  return {std::move(name), "hashtextextended", "text", true, not_null};
}

}  // namespace

// JIT would compile the range tree (thousands of nodes) once in every
// parallel worker: seconds each, more than it saves on the scan.
pg::Awaitable<void> PrepareCompareSession(pg::Connection& node) {
  co_await node.Exec(
      "SET search_path = pg_catalog, pg_temp; SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; "
      "SET IntervalStyle = 'postgres'; SET extra_float_digits = 1; SET bytea_output = 'hex'; "
      "SET lc_monetary = 'C'; SET standard_conforming_strings = on; SET jit = off");
}

std::string RowHash::Expr(std::string_view alias) const {
  std::vector<std::string> parts;
  for (size_t i = 0; i < columns_.size(); ++i) {
    const HashedColumn& column = columns_[i];
    std::string value = fmt::format("{}.{}", alias, QuoteIdent(column.name));
    if (!column.cast.empty()) value += "::pg_catalog." + column.cast;
    if (column.bytes) value += " COLLATE \"C\"";
    std::string hash = fmt::format("pg_catalog.{}({}, {})", column.function, value, i + 1);
    parts.push_back(column.not_null ? hash : fmt::format("COALESCE({}, 0)", hash));
  }
  return fmt::format("({})", fmt::join(parts, " # "));
}

pg::Awaitable<RowHash> LoadRowHash(pg::Connection& source, const CapturedTable& table) {
  pg::Result rows = co_await source.Exec(kColumnTypesSql, table.relid, TextArrayLiteral(table.columns));
  std::vector<HashedColumn> columns;
  for (int row = 0; row < rows.Rows(); ++row) {
    columns.push_back(HashOf(std::string(rows.Get(row, 0)), rows.GetInt(row, 1), rows.GetBool(row, 2)));
  }
  if (columns.size() != table.columns.size()) {
    throw source.Failure(fmt::format("table {}: the columns captured ({}) are no longer all in the table; run "
                                     "\"pgtandem install\" again", table.name.Display(), QuotedList(table.columns)));
  }
  co_return RowHash(std::move(columns));
}

}  // namespace pgtandem
