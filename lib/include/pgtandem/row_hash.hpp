// What compare compares of a row: a 64-bit hash of its columns, computed by the node that holds it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "pgtandem/catalog.hpp"
#include "pgtandem/pg/connection.hpp"

namespace pgtandem {

// Makes every type's text output the same on both nodes whatever their
// defaults (time zone, date and interval styles, float digits, bytea and
// money formats), qualifies type names as format_type() prints them, and
// turns JIT off.
pg::Awaitable<void> PrepareCompareSession(pg::Connection& node);

// One column of a row hash: function(column[::cast] [COLLATE "C"], seed).
struct HashedColumn {
  std::string name;
  std::string function;  // a seeded 64-bit hash function in pg_catalog
  std::string cast;      // the column's value converted first to this type, or nothing
  bool bytes = false;    // a string compared byte-wise: COLLATE "C"
  bool not_null = false;
};

// The hash of a row over the columns the applier copies: each column hashed
// on its own, seeded with its position in the source's column order, and the
// column hashes XOR-ed (a NULL adds 0). Named columns, not t.*, so a target
// whose columns lie in another physical order still compares equal.
//
// A column whose type's equality means "the same value, written the same
// way" is hashed with the type's own 64-bit hash function (integers, oid,
// bool, text, varchar, name, uuid, time, timestamp, timestamptz, and
// character, whose trailing blanks its equality ignores): no text output,
// which is most of what printing a row costs. Every other
// type hashes its text output, so that values its equality holds equal but
// that read differently differ: numeric 1.0 and 1.00, float 0 and -0,
// interval '1 day' and '24 hours', jsonb {"a": 1.0} and {"a": 1}; and so do
// enums, domains, arrays, ranges and extension types (citext), whose hashes
// depend on OIDs or on a case-folding equality. Text is hashed byte-wise
// (COLLATE "C"), so a nondeterministic collation makes no two strings equal.
//
// The type hashes are the ones hash partitioning routes rows with, and the
// text hash is hashtextextended(): PostgreSQL keeps them the same across
// major versions (pg_upgrade keeps hash partitions as they are), and all of
// them exist from PostgreSQL 11 on, so two servers of different versions
// hash equal rows alike (those hashed as text, as long as both print them
// alike).
class RowHash {
 public:
  explicit RowHash(std::vector<HashedColumn> columns) : columns_(std::move(columns)) {}

  const std::vector<HashedColumn>& Columns() const { return columns_; }
  // The row hash of row `alias`, a bigint.
  std::string Expr(std::string_view alias) const;

 private:
  std::vector<HashedColumn> columns_;
};

// How each column of `table` is hashed, from its type on the source (the
// targets' column types were compared with the source's before).
pg::Awaitable<RowHash> LoadRowHash(pg::Connection& source, const CapturedTable& table);

}  // namespace pgtandem
