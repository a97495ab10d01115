// What compare compares of a row: two independent 64-bit hashes of its text, computed by the node that holds it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "pgtandem/catalog.hpp"
#include "pgtandem/pg/connection.hpp"

namespace pgtandem {

// Equal rows have equal digests; a differing row has the same digest by
// chance with probability 2^-128.
struct RowDigest {
  int64_t a = 0;
  int64_t b = 0;

  bool operator==(const RowDigest&) const = default;
};

// Makes every type's text output the same on both nodes whatever their
// defaults (time zone, date and interval styles, float digits, bytea and
// money formats), and qualifies type names as format_type() prints them.
pg::Awaitable<void> PrepareCompareSession(pg::Connection& node);

// ROW(t."a", t."b", ...)::text over the columns the applier copies, in the
// source's order: the text the applier itself carries, in which NULL and ''
// differ. Named columns, not t.*, so a target whose columns lie in another
// physical order still compares equal.
std::string RowText(const CapturedTable& table, std::string_view alias);

// The two hashes of a text expression, as two result columns.
std::string DigestColumns(std::string_view text);
// Their sums over a group of rows, as two numeric columns printed as text:
// exact (no overflow) and independent of the order rows are read in.
std::string DigestSums(std::string_view text);
RowDigest ReadDigest(const pg::Result& result, int row, int first_column);

}  // namespace pgtandem
