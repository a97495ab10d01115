// What the catalogs say about a sync's sequences: on the source, which ones and
// where they stand; on a target, the same sequences and the columns they feed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pgtandem/config.hpp"
#include "pgtandem/identifier.hpp"
#include "pgtandem/pg/connection.hpp"

namespace pgtandem {

// The properties pgtandem compares and copies (pg_sequence).
struct SequenceDefinition {
  std::string type = "bigint";  // bigint, integer or smallint
  int64_t start = 1;
  int64_t increment = 1;
  int64_t min = 1;
  int64_t max = INT64_MAX;
  int64_t cache = 1;
  bool cycle = false;

  bool Ascending() const { return increment > 0; }
  // "increment 1 on the source, 2 on the target", one entry per differing
  // property among type, increment, min, max and cycle; empty when they agree.
  std::vector<std::string> Differences(const SequenceDefinition& target) const;
};

// Where nextval() stands: `SELECT last_value, is_called FROM seq`.
struct SequenceValue {
  int64_t last_value = 1;
  bool is_called = false;
};

// A column whose values come from a sequence: serial and identity columns, and
// columns whose DEFAULT calls nextval() on it (a sequence shared by tables).
struct FedColumn {
  TableName table;
  std::string column;
  bool integer = true;   // smallint, integer or bigint: its largest value can be compared
  bool indexed = false;  // a btree index leads with it, so max() and min() are cheap
  bool readable = true;  // the connected role may SELECT it

  // schema.table.column, for messages.
  std::string Display() const;
  bool SameColumn(const FedColumn& other) const { return table == other.table && column == other.column; }
};

// A sequence of a sync, as the source has it.
struct SourceSequence {
  TableName name;
  SequenceDefinition definition;
  SequenceValue value;
  std::optional<FedColumn> owner;  // OWNED BY column (serial), or the identity column
  std::vector<FedColumn> feeds;    // every column it feeds, the owner included
  std::string reason;              // why the sync has it: `pattern "public.*"` or `feeds public.orders.id`
};

struct SyncSequenceSet {
  std::vector<SourceSequence> sequences;  // ordered by schema and name
  std::vector<std::string> unmatched;     // `sequences` patterns that select no sequence
};

// The sync's sequences: those its `sequences` patterns select, and every
// sequence that feeds a column of a table its `tables` (minus `exclude`)
// select, with their definitions and current values. Throws an Error naming
// every sequence the connected role may not read, with the GRANT that fixes it.
pg::Awaitable<SyncSequenceSet> LoadSyncSequences(pg::Connection& source, const SyncConfig& sync);

// A source sequence found on a target: by name, else as the sequence that
// feeds the source's owner column there (an identity sequence named otherwise).
struct TargetSequence {
  TableName name;
  std::string oid;
  SequenceDefinition definition;
  std::optional<SequenceValue> value;  // nullopt when the role may not read it
  bool can_read = false;               // SELECT on the sequence
  bool can_update = false;             // UPDATE on the sequence (setval)
  bool owned = false;                  // the role owns it (ALTER SEQUENCE)
};

// One source sequence as a target sees it.
struct TargetSide {
  std::optional<TargetSequence> sequence;  // nullopt: missing on the target
  // Columns the sequence feeds on the target: the source's, where the target
  // has them, and those the target's own catalog links to its sequence.
  std::vector<FedColumn> feeds;
  bool schema_exists = false;                    // the source sequence's schema exists on the target
  bool can_create = false;                       // CREATE on that schema
  std::optional<std::string> owner_table_owner;  // role owning the owner column's table, if it exists
};

// Reads the target's side of every source sequence (same order). Values of
// sequences the role may not read are left empty; callers name the grant.
pg::Awaitable<std::vector<TargetSide>> LoadTargetSides(pg::Connection& target,
                                                       const std::vector<SourceSequence>& sequences);

// The role a connection runs as (current_user, unquoted), for the GRANTs messages name.
pg::Awaitable<std::string> CurrentRole(pg::Connection& node);

}  // namespace pgtandem
