// Row text and hashes for compare; see row_digest.hpp.
#include "pgtandem/row_digest.hpp"

#include <fmt/format.h>

namespace pgtandem {

pg::Awaitable<void> PrepareCompareSession(pg::Connection& node) {
  co_await node.Exec(
      "SET search_path = pg_catalog, pg_temp; SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; "
      "SET IntervalStyle = 'postgres'; SET extra_float_digits = 1; SET bytea_output = 'hex'; "
      "SET lc_monetary = 'C'; SET standard_conforming_strings = on");
}

std::string RowText(const CapturedTable& table, std::string_view alias) {
  return fmt::format("(ROW({})::text COLLATE \"C\")", QuotedList(table.columns, std::string(alias) + "."));
}

std::string DigestColumns(std::string_view text) {
  return fmt::format("pg_catalog.hashtextextended({0}, 0), pg_catalog.hashtextextended({0}, 1)", text);
}

std::string DigestSums(std::string_view text) {
  return fmt::format("pg_catalog.sum(pg_catalog.hashtextextended({0}, 0))::text, "
                     "pg_catalog.sum(pg_catalog.hashtextextended({0}, 1))::text",
                     text);
}

RowDigest ReadDigest(const pg::Result& result, int row, int first_column) {
  return {result.GetInt(row, first_column), result.GetInt(row, first_column + 1)};
}

}  // namespace pgtandem
