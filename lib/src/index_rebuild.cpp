#include "pgtandem/index_rebuild.hpp"

#include <fmt/format.h>

#include "pgtandem/error.hpp"

namespace pgtandem {
namespace {

// One row per statement: step 0 drops an index, the later steps build it
// again in order. The statements come from the server's own deparsing
// (pg_get_indexdef), so every index method, operator class, collation,
// expression, predicate, INCLUDE list and storage option survives.
// pg_get_indexdef leaves the tablespace out: default_tablespace carries it.
constexpr std::string_view kDroppableIndexesSql = R"(
WITH ix AS (
  SELECT i.indexrelid, ic.relname AS name, i.indexrelid::pg_catalog.regclass::text AS qualified,
         i.indrelid::pg_catalog.regclass::text AS tbl, i.indisclustered, i.indisreplident,
         c.oid AS con, c.conname, c.contype, c.condeferrable, c.condeferred, coalesce(ts.spcname, '') AS spc
    FROM pg_catalog.pg_index i
    JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_catalog.pg_class t ON t.oid = i.indrelid
    LEFT JOIN pg_catalog.pg_constraint c
           ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid AND c.contype IN ('p', 'u', 'x')
    LEFT JOIN pg_catalog.pg_tablespace ts ON ts.oid = ic.reltablespace
   WHERE i.indrelid = $1::pg_catalog.regclass AND t.relkind = 'r'
     AND pg_catalog.pg_has_role(t.relowner, 'USAGE') AND pg_catalog.has_schema_privilege(t.relnamespace, 'CREATE')
     AND (ic.reltablespace = 0 OR pg_catalog.has_tablespace_privilege(ic.reltablespace, 'CREATE'))
     AND i.indisvalid AND i.indisready AND i.indislive
     AND c.contype IS DISTINCT FROM 'x'
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                      WHERE d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid = i.indexrelid)
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                      WHERE d.refclassid = 'pg_catalog.pg_constraint'::pg_catalog.regclass AND d.refobjid = c.oid
                        AND d.deptype <> 'i')
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                      WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = i.indexrelid
                        AND d.deptype IN ('e', 'x', 'P', 'S'))
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_seclabel l
                      WHERE (l.classoid, l.objoid) IN (('pg_catalog.pg_class'::pg_catalog.regclass, i.indexrelid),
                                                       ('pg_catalog.pg_constraint'::pg_catalog.regclass, c.oid)))
), steps AS (
  SELECT ix.name, ix.indexrelid, s.step, 0 AS attnum, s.sql
    FROM ix CROSS JOIN LATERAL (VALUES
      (0, CASE WHEN ix.con IS NULL THEN pg_catalog.format('DROP INDEX %s', ix.qualified)
               ELSE pg_catalog.format('ALTER TABLE ONLY %s DROP CONSTRAINT %I', ix.tbl, ix.conname) END),
      (1, pg_catalog.format('SELECT pg_catalog.set_config(''default_tablespace'', %L, true)', ix.spc)),
      (2, pg_catalog.pg_get_indexdef(ix.indexrelid)),
      (3, pg_catalog.format('SELECT pg_catalog.set_config(''default_tablespace'', %L, true)',
                            pg_catalog.current_setting('default_tablespace'))),
      (4, CASE WHEN ix.contype IS NOT NULL
               THEN pg_catalog.format('ALTER TABLE ONLY %s ADD CONSTRAINT %I %s USING INDEX %I%s',
                      ix.tbl, ix.conname, CASE ix.contype WHEN 'p' THEN 'PRIMARY KEY' ELSE 'UNIQUE' END, ix.name,
                      CASE WHEN ix.condeferred THEN ' DEFERRABLE INITIALLY DEFERRED'
                           WHEN ix.condeferrable THEN ' DEFERRABLE' ELSE '' END) END),
      (5, CASE WHEN ix.indisclustered THEN pg_catalog.format('ALTER TABLE ONLY %s CLUSTER ON %I', ix.tbl, ix.name) END),
      (6, CASE WHEN ix.indisreplident
               THEN pg_catalog.format('ALTER TABLE ONLY %s REPLICA IDENTITY USING INDEX %I', ix.tbl, ix.name) END),
      (7, (SELECT pg_catalog.format('COMMENT ON INDEX %s IS %L', ix.qualified, d.description)
             FROM pg_catalog.pg_description d
            WHERE d.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objoid = ix.indexrelid
              AND d.objsubid = 0)),
      (8, (SELECT pg_catalog.format('COMMENT ON CONSTRAINT %I ON %s IS %L', ix.conname, ix.tbl, d.description)
             FROM pg_catalog.pg_description d
            WHERE d.classoid = 'pg_catalog.pg_constraint'::pg_catalog.regclass AND d.objoid = ix.con))
    ) AS s(step, sql)
  UNION ALL
  SELECT ix.name, ix.indexrelid, 9, a.attnum,
         pg_catalog.format('ALTER INDEX %s ALTER COLUMN %s SET STATISTICS %s', ix.qualified, a.attnum, a.attstattarget)
    FROM ix JOIN pg_catalog.pg_attribute a ON a.attrelid = ix.indexrelid AND a.attstattarget >= 0
)
SELECT name, step = 0, sql FROM steps WHERE sql IS NOT NULL ORDER BY indexrelid, step, attnum)";

}  // namespace

pg::Awaitable<DroppedIndexes> DropIndexesForCopy(pg::Connection& target, const CapturedTable& table,
                                                 const Logger& log) {
  DroppedIndexes dropped;
  if (table.partitioned) co_return dropped;
  pg::Result rows = co_await target.Exec(kDroppableIndexesSql, table.name.Quoted());
  std::vector<std::string> drops;
  for (int row = 0; row < rows.Rows(); ++row) {
    if (rows.GetBool(row, 1)) {
      dropped.names.emplace_back(rows.Get(row, 0));
      drops.emplace_back(rows.Get(row, 2));
    } else {
      dropped.rebuild.emplace_back(rows.Get(row, 2));
    }
  }
  if (drops.empty()) co_return dropped;
  co_await target.Exec("SAVEPOINT pgtandem_indexes");
  std::string refused;
  try {
    for (const auto& drop : drops) co_await target.Exec(drop);
  } catch (const Error& e) {
    refused = e.what();
  }
  if (!refused.empty()) {
    co_await target.Exec("ROLLBACK TO SAVEPOINT pgtandem_indexes");
    co_await target.Exec("RELEASE SAVEPOINT pgtandem_indexes");
    log.Info("table {}: copying it with its indexes in place, since one could not be dropped: {}",
             table.name.Display(), refused);
    co_return DroppedIndexes{};
  }
  co_await target.Exec("RELEASE SAVEPOINT pgtandem_indexes");
  co_return dropped;
}

pg::Awaitable<void> RebuildIndexes(pg::Connection& target, const CapturedTable& table, const DroppedIndexes& dropped) {
  for (const auto& sql : dropped.rebuild) {
    std::string failed;
    std::string sqlstate;
    try {
      co_await target.Exec(sql);
    } catch (const Error& e) {
      failed = e.what();
      sqlstate = e.SqlState();
    }
    if (!failed.empty()) {
      throw Error(ErrorKind::kTarget,
                  fmt::format("table {}: building its indexes again after copying it whole failed ({}): {}. The "
                              "copy's transaction was rolled back, so the table and its indexes are as they were",
                              table.name.Display(), sql, failed),
                  sqlstate);
    }
  }
}

}  // namespace pgtandem
