// Sequences and the columns they feed, read from pg_sequence, pg_depend and pg_attrdef.
#include "pgtandem/sequence_catalog.hpp"

#include <algorithm>
#include <map>

#include <fmt/format.h>

namespace pgtandem {
namespace {

// Schemas that never hold a sync's sequences or tables (pgtandem.delta_seq included).
constexpr std::string_view kUserSchemas = R"(
n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgtandem')
AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%')";

constexpr std::string_view kDefinitionColumns =
    "pg_catalog.format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, "
    "s.seqcycle";

constexpr std::string_view kSourceSequencesSql = R"(
SELECT c.oid::text, n.nspname, c.relname, {},
       pg_catalog.has_sequence_privilege(c.oid, 'SELECT')
  FROM pg_catalog.pg_sequence s
  JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE {}
 ORDER BY n.nspname, c.relname)";

// Is the column an integer (through a domain too), does a btree index lead
// with it, and may this role read it.
constexpr std::string_view kColumnTraits = R"(
       (SELECT CASE WHEN ty.typtype = 'd' THEN ty.typbasetype ELSE ty.oid END
          FROM pg_catalog.pg_type ty WHERE ty.oid = a.atttypid)
         IN ('pg_catalog.int2'::pg_catalog.regtype, 'pg_catalog.int4'::pg_catalog.regtype,
             'pg_catalog.int8'::pg_catalog.regtype),
       EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                 JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
                 JOIN pg_catalog.pg_am am ON am.oid = ic.relam
                WHERE i.indrelid = t.oid AND i.indkey[0] = a.attnum AND am.amname = 'btree'
                  AND i.indpred IS NULL),
       pg_catalog.has_column_privilege(t.oid, a.attnum, 'SELECT'))";

// Columns fed by sequences: the sequence depends on the column ('a' for serial
// and OWNED BY, 'i' for identity), or the column's default depends on the
// sequence ('n': DEFAULT nextval('seq'), which is how tables share one).
// Partitions are left out: their parent's column covers their rows.
constexpr std::string_view kFedColumnsSql = R"(
WITH links AS (
    SELECT d.objid AS seq, d.refobjid AS rel, d.refobjsubid AS attnum
      FROM pg_catalog.pg_depend d
     WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0
    UNION
    SELECT d.refobjid, ad.adrelid, ad.adnum
      FROM pg_catalog.pg_depend d
      JOIN pg_catalog.pg_attrdef ad ON ad.oid = d.objid
     WHERE d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass
       AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype = 'n')
SELECT l.seq::text, n.nspname, t.relname, a.attname, {}
  FROM links l
  JOIN pg_catalog.pg_class sq ON sq.oid = l.seq AND sq.relkind = 'S'
  JOIN pg_catalog.pg_class t ON t.oid = l.rel
  JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
  JOIN pg_catalog.pg_attribute a ON a.attrelid = l.rel AND a.attnum = l.attnum AND NOT a.attisdropped
 WHERE t.relkind IN ('r', 'p') AND NOT t.relispartition AND {}
   AND ($1::oid[] IS NULL OR l.seq = ANY ($1::oid[]))
 ORDER BY 1, 2, 3, 4)";

// The owner column of each sequence ('a' or 'i' link).
constexpr std::string_view kOwnersSql = R"(
SELECT d.objid::text, n.nspname, t.relname, a.attname
  FROM pg_catalog.pg_depend d
  JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
  JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
  JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
 WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
   AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
   AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0)";

// Each source sequence on the target: by name first, else the sequence that
// feeds the source's owner column there.
constexpr std::string_view kTargetSequencesSql = R"(
SELECT u.i, m.rank, c.oid::text, n.nspname, c.relname, {},
       pg_catalog.has_sequence_privilege(c.oid, 'SELECT'), pg_catalog.has_sequence_privilege(c.oid, 'UPDATE'),
       pg_catalog.pg_has_role(c.relowner, 'USAGE'),
       sn.oid IS NOT NULL, sn.oid IS NOT NULL AND pg_catalog.has_schema_privilege(sn.oid, 'CREATE'),
       (SELECT pg_catalog.pg_get_userbyid(t.relowner)
          FROM pg_catalog.pg_class t
          JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
          JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND NOT a.attisdropped AND a.attnum > 0
         WHERE tn.nspname = u.ts AND t.relname = u.tn AND a.attname = u.tc)
  FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[]), pg_catalog.unnest($3::text[]),
                  pg_catalog.unnest($4::text[]), pg_catalog.unnest($5::text[]))
       WITH ORDINALITY AS u(s, n, ts, tn, tc, i)
  LEFT JOIN pg_catalog.pg_namespace sn ON sn.nspname = u.s
  LEFT JOIN LATERAL (
       SELECT c.oid, 1 AS rank
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace
        WHERE cn.nspname = u.s AND c.relname = u.n AND c.relkind = 'S'
       UNION ALL
       SELECT d.objid, 2
         FROM pg_catalog.pg_depend d
         JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
         JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
         JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
         JOIN pg_catalog.pg_class sc ON sc.oid = d.objid AND sc.relkind = 'S'
        WHERE u.tc IS NOT NULL AND tn.nspname = u.ts AND t.relname = u.tn AND a.attname = u.tc
          AND d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
          AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype IN ('a', 'i')
        ORDER BY 2 LIMIT 1) m ON true
  LEFT JOIN pg_catalog.pg_class c ON c.oid = m.oid
  LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_catalog.pg_sequence s ON s.seqrelid = c.oid
 ORDER BY u.i)";

// Which of the source's fed columns the target has, with their traits there.
constexpr std::string_view kColumnsByNameSql = R"(
SELECT u.i, n.nspname, t.relname, a.attname, {}
  FROM ROWS FROM (pg_catalog.unnest($1::int[]), pg_catalog.unnest($2::text[]), pg_catalog.unnest($3::text[]),
                  pg_catalog.unnest($4::text[])) AS u(i, s, r, c)
  JOIN pg_catalog.pg_namespace n ON n.nspname = u.s
  JOIN pg_catalog.pg_class t ON t.relnamespace = n.oid AND t.relname = u.r AND t.relkind IN ('r', 'p')
  JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attname = u.c AND a.attnum > 0 AND NOT a.attisdropped)";

// Statements read this many sequences or columns at once: few round trips,
// and statements of a sane length.
constexpr size_t kChunk = 100;


SequenceDefinition ReadDefinition(const pg::Result& result, int row, int first) {
  SequenceDefinition d;
  d.type = std::string(result.Get(row, first));
  d.start = result.GetInt(row, first + 1);
  d.increment = result.GetInt(row, first + 2);
  d.min = result.GetInt(row, first + 3);
  d.max = result.GetInt(row, first + 4);
  d.cache = result.GetInt(row, first + 5);
  d.cycle = result.GetBool(row, first + 6);
  return d;
}

FedColumn ReadColumn(const pg::Result& result, int row, int first) {
  FedColumn c;
  c.table = {std::string(result.Get(row, first)), std::string(result.Get(row, first + 1))};
  c.column = std::string(result.Get(row, first + 2));
  c.integer = result.GetBool(row, first + 3);
  c.indexed = result.GetBool(row, first + 4);
  c.readable = result.GetBool(row, first + 5);
  return c;
}

void AddColumn(std::vector<FedColumn>& columns, FedColumn column) {
  auto same = [&](const FedColumn& c) { return c.SameColumn(column); };
  if (std::none_of(columns.begin(), columns.end(), same)) columns.push_back(std::move(column));
}

// Columns fed per sequence oid; `oids` limits the query (all sequences when empty).
pg::Awaitable<std::map<std::string, std::vector<FedColumn>>> LoadFedColumns(pg::Connection& node,
                                                                            std::optional<std::string> oids) {
  std::string sql = fmt::format(kFedColumnsSql, kColumnTraits, kUserSchemas);
  pg::Result rows = co_await node.Exec(sql, oids);
  std::map<std::string, std::vector<FedColumn>> fed;
  for (int row = 0; row < rows.Rows(); ++row) AddColumn(fed[std::string(rows.Get(row, 0))], ReadColumn(rows, row, 1));
  co_return fed;
}

// `SELECT last_value, is_called` of every sequence named, in chunks.
pg::Awaitable<std::vector<SequenceValue>> ReadValues(pg::Connection& node, const std::vector<TableName>& names) {
  std::vector<SequenceValue> values(names.size());
  for (size_t first = 0; first < names.size(); first += kChunk) {
    std::string sql;
    for (size_t i = first; i < std::min(names.size(), first + kChunk); ++i) {
      sql += fmt::format("{}SELECT {}, last_value, is_called FROM {}", sql.empty() ? "" : " UNION ALL ", i,
                         names[i].Quoted());
    }
    pg::Result rows = co_await node.Exec(sql);
    for (int row = 0; row < rows.Rows(); ++row) {
      auto& value = values[static_cast<size_t>(rows.GetInt(row, 0))];
      value.last_value = rows.GetInt(row, 1);
      value.is_called = rows.GetBool(row, 2);
    }
  }
  co_return values;
}

// Matches each source sequence on the target (see kTargetSequencesSql).
pg::Awaitable<std::vector<TargetSide>> FindOnTarget(pg::Connection& target,
                                                    const std::vector<SourceSequence>& sequences) {
  std::vector<std::optional<std::string>> schemas, names, owner_schemas, owner_tables, owner_columns;
  for (const SourceSequence& s : sequences) {
    schemas.push_back(s.name.schema);
    names.push_back(s.name.name);
    owner_schemas.push_back(s.owner ? std::optional(s.owner->table.schema) : std::nullopt);
    owner_tables.push_back(s.owner ? std::optional(s.owner->table.name) : std::nullopt);
    owner_columns.push_back(s.owner ? std::optional(s.owner->column) : std::nullopt);
  }
  std::string sql = fmt::format(kTargetSequencesSql, kDefinitionColumns);
  pg::Result found = co_await target.Exec(sql, TextArrayLiteral(schemas), TextArrayLiteral(names), TextArrayLiteral(owner_schemas),
                                          TextArrayLiteral(owner_tables), TextArrayLiteral(owner_columns));
  // A target sequence matched by name is never also another source sequence's through its column.
  std::map<std::string, int64_t> best_rank;
  for (int row = 0; row < found.Rows(); ++row) {
    if (found.IsNull(row, 2)) continue;
    auto [it, inserted] = best_rank.emplace(std::string(found.Get(row, 2)), found.GetInt(row, 1));
    if (!inserted) it->second = std::min(it->second, found.GetInt(row, 1));
  }
  std::vector<TargetSide> sides(sequences.size());
  for (int row = 0; row < found.Rows(); ++row) {
    TargetSide& side = sides[static_cast<size_t>(found.GetInt(row, 0) - 1)];
    side.schema_exists = found.GetBool(row, 15);
    side.can_create = found.GetBool(row, 16);
    side.owner_table_owner = found.GetOptional(row, 17);
    if (found.IsNull(row, 2) || best_rank[std::string(found.Get(row, 2))] < found.GetInt(row, 1)) continue;
    TargetSequence& t = side.sequence.emplace();
    t.oid = std::string(found.Get(row, 2));
    t.name = {std::string(found.Get(row, 3)), std::string(found.Get(row, 4))};
    t.definition = ReadDefinition(found, row, 5);
    t.can_read = found.GetBool(row, 12);
    t.can_update = found.GetBool(row, 13);
    t.owned = found.GetBool(row, 14);
  }
  co_return sides;
}

// The values of the target sequences the role may read.
pg::Awaitable<void> ReadTargetValues(pg::Connection& target, std::vector<TargetSide>& sides) {
  std::vector<TableName> names;
  std::vector<TargetSequence*> readable;
  for (auto& side : sides) {
    if (!side.sequence || !side.sequence->can_read) continue;
    names.push_back(side.sequence->name);
    readable.push_back(&*side.sequence);
  }
  std::vector<SequenceValue> values = co_await ReadValues(target, names);
  for (size_t i = 0; i < values.size(); ++i) readable[i]->value = values[i];
}

// The columns the source's catalog links to each sequence, where the target has them.
pg::Awaitable<void> AddSourceColumns(pg::Connection& target, const std::vector<SourceSequence>& sequences,
                                     std::vector<TargetSide>& sides) {
  std::vector<std::optional<std::string>> index, schemas, tables, columns;
  for (size_t i = 0; i < sequences.size(); ++i) {
    for (const auto& column : sequences[i].feeds) {
      index.push_back(std::to_string(i));
      schemas.push_back(column.table.schema);
      tables.push_back(column.table.name);
      columns.push_back(column.column);
    }
  }
  pg::Result rows = co_await target.Exec(fmt::format(kColumnsByNameSql, kColumnTraits), TextArrayLiteral(index),
                                         TextArrayLiteral(schemas), TextArrayLiteral(tables), TextArrayLiteral(columns));
  for (int row = 0; row < rows.Rows(); ++row) {
    AddColumn(sides[static_cast<size_t>(rows.GetInt(row, 0))].feeds, ReadColumn(rows, row, 1));
  }
}

// The columns the target's own catalog links to its sequences.
pg::Awaitable<void> AddTargetColumns(pg::Connection& target, std::vector<TargetSide>& sides) {
  std::vector<std::optional<std::string>> oids;
  for (const auto& side : sides) {
    if (side.sequence) oids.push_back(side.sequence->oid);
  }
  if (oids.empty()) co_return;
  auto fed = co_await LoadFedColumns(target, TextArrayLiteral(oids));
  for (auto& side : sides) {
    if (!side.sequence) continue;
    for (auto& column : fed[side.sequence->oid]) AddColumn(side.feeds, std::move(column));
  }
}

bool Selected(const SyncConfig& sync, const TableName& table) {
  auto matches = [&](const TablePattern& p) { return p.Matches(table); };
  return std::any_of(sync.tables.begin(), sync.tables.end(), matches) &&
         std::none_of(sync.exclude.begin(), sync.exclude.end(), matches);
}

// Why the sync has this sequence, or empty when it does not.
std::string Reason(const SyncConfig& sync, const TableName& name, const std::vector<FedColumn>& feeds,
                   std::vector<bool>& pattern_used) {
  std::string reason;
  for (size_t i = 0; i < sync.sequences.size(); ++i) {
    if (!sync.sequences[i].Matches(name)) continue;
    pattern_used[i] = true;
    if (reason.empty()) reason = fmt::format("pattern \"{}\"", sync.sequences[i].Text());
  }
  for (const auto& column : feeds) {
    if (reason.empty() && Selected(sync, column.table)) reason = "feeds " + column.Display();
  }
  return reason;
}

}  // namespace

std::string FedColumn::Display() const {
  // TableName::Display quotes each part only where a reader would misread it; borrow it for the column.
  std::string part = TableName{"x", column}.Display();
  return table.Display() + part.substr(1);
}

pg::Awaitable<std::string> CurrentRole(pg::Connection& node) {
  pg::Result role = co_await node.Exec("SELECT current_user");
  co_return std::string(role.Get(0, 0));
}

pg::Awaitable<SyncSequenceSet> LoadSyncSequences(pg::Connection& source, const SyncConfig& sync) {
  pg::Result all = co_await source.Exec(fmt::format(kSourceSequencesSql, kDefinitionColumns, kUserSchemas));
  auto fed = co_await LoadFedColumns(source, std::nullopt);
  pg::Result owners = co_await source.Exec(kOwnersSql);
  std::map<std::string, FedColumn> owner_of;
  for (int row = 0; row < owners.Rows(); ++row) {
    FedColumn& owner = owner_of[std::string(owners.Get(row, 0))];
    owner.table = {std::string(owners.Get(row, 1)), std::string(owners.Get(row, 2))};
    owner.column = std::string(owners.Get(row, 3));
  }
  SyncSequenceSet set;
  std::vector<bool> pattern_used(sync.sequences.size(), false);
  std::vector<std::string> unreadable, unreadable_quoted;
  for (int row = 0; row < all.Rows(); ++row) {
    std::string oid(all.Get(row, 0));
    SourceSequence sequence;
    sequence.name = {std::string(all.Get(row, 1)), std::string(all.Get(row, 2))};
    sequence.definition = ReadDefinition(all, row, 3);
    sequence.feeds = fed[oid];
    sequence.reason = Reason(sync, sequence.name, sequence.feeds, pattern_used);
    if (sequence.reason.empty()) continue;
    if (auto owner = owner_of.find(oid); owner != owner_of.end()) sequence.owner = owner->second;
    if (!all.GetBool(row, 10)) {
      unreadable.push_back(sequence.name.Display());
      unreadable_quoted.push_back(sequence.name.Quoted());
    }
    set.sequences.push_back(std::move(sequence));
  }
  for (size_t i = 0; i < sync.sequences.size(); ++i) {
    if (!pattern_used[i]) set.unmatched.push_back(sync.sequences[i].Text());
  }
  if (!unreadable.empty()) {
    std::string role = co_await CurrentRole(source);
    throw source.Failure(
        fmt::format("role {} lacks SELECT on sequence(s) {} of sync '{}', needed to read where "
                    "they stand: GRANT SELECT ON SEQUENCE {} TO {}",
                    QuoteIdent(role), fmt::join(unreadable, ", "), sync.name, fmt::join(unreadable_quoted, ", "),
                    QuoteIdent(role)));
  }
  std::vector<TableName> names;
  for (const auto& s : set.sequences) names.push_back(s.name);
  std::vector<SequenceValue> values = co_await ReadValues(source, names);
  for (size_t i = 0; i < values.size(); ++i) set.sequences[i].value = values[i];
  co_return set;
}

pg::Awaitable<std::vector<TargetSide>> LoadTargetSides(pg::Connection& target,
                                                       const std::vector<SourceSequence>& sequences) {
  std::vector<TargetSide> sides = co_await FindOnTarget(target, sequences);
  co_await ReadTargetValues(target, sides);
  co_await AddSourceColumns(target, sequences, sides);
  co_await AddTargetColumns(target, sides);
  co_return sides;
}

}  // namespace pgtandem
