// Row hashes for compare; see row_hash.hpp.
#include "pgtandem/row_hash.hpp"

#include <fmt/format.h>

namespace pgtandem {

// JIT would compile the range tree (thousands of nodes) once in every
// parallel worker: seconds each, more than it saves on the scan.
pg::Awaitable<void> PrepareCompareSession(pg::Connection& node) {
  co_await node.Exec(
      "SET search_path = pg_catalog, pg_temp; SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; "
      "SET IntervalStyle = 'postgres'; SET extra_float_digits = 1; SET bytea_output = 'hex'; "
      "SET lc_monetary = 'C'; SET standard_conforming_strings = on; SET jit = off");
}

std::string RowHash(const CapturedTable& table, std::string_view alias) {
  return fmt::format("pg_catalog.hashtextextended((ROW({})::text COLLATE \"C\"), 0)",
                     QuotedList(table.columns, std::string(alias) + "."));
}

}  // namespace pgtandem
