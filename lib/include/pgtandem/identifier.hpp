// Identifiers and qualified names that are always quoted when they reach SQL.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgtandem {

// "name" with embedded double quotes doubled: safe for any name PostgreSQL allows.
std::string QuoteIdent(std::string_view name);
// 'text' with embedded single quotes doubled (standard_conforming_strings = on).
std::string QuoteLiteral(std::string_view text);
// A text[] value, e.g. {"a","b \"c\"",NULL}, to pass as a query parameter; nullopt items are NULL.
std::string TextArrayLiteral(const std::vector<std::optional<std::string>>& items);
std::string TextArrayLiteral(const std::vector<std::string>& items);
// The items of a one-dimensional text[] of identifiers as PostgreSQL prints it.
std::vector<std::string> ParseTextArray(std::string_view text);

// schema.table as stored in the catalog (unquoted, case-sensitive).
struct TableName {
  std::string schema;
  std::string name;

  // "schema"."name", for SQL.
  std::string Quoted() const;
  // schema.name, for messages; quoted only where a reader would misread it.
  std::string Display() const;

  auto operator<=>(const TableName&) const = default;
};

}  // namespace pgtandem
