// What compare compares of a row: a 64-bit hash of its text, computed by the node that holds it.
#pragma once

#include <string>
#include <string_view>

#include "pgtandem/catalog.hpp"
#include "pgtandem/pg/connection.hpp"

namespace pgtandem {

// Makes every type's text output the same on both nodes whatever their
// defaults (time zone, date and interval styles, float digits, bytea and
// money formats), qualifies type names as format_type() prints them, and
// turns JIT off.
pg::Awaitable<void> PrepareCompareSession(pg::Connection& node);

// hashtextextended() of ROW(t."a", t."b", ...)::text over the columns the
// applier copies, in the source's order: the text the applier itself
// carries, in which NULL and '' differ. Named columns, not t.*, so a target
// whose columns lie in another physical order still compares equal. One
// hash, referenced once per row: the row's text is most of compare's cost,
// and a second hash of it would mean printing every row twice.
std::string RowHash(const CapturedTable& table, std::string_view alias);

}  // namespace pgtandem
