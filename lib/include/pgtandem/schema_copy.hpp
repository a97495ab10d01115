// "bootstrap --copy --schema": the sync's tables created on the target from the source's DDL.
#pragma once

#include <string>
#include <vector>

#include "pgtandem/catalog.hpp"
#include "pgtandem/dsn.hpp"
#include "pgtandem/pg/connection.hpp"

namespace pgtandem {

// Applies on the target one section of `pg_dump --schema-only` for the sync's
// tables: "pre-data" (tables, owned sequences) before the copy and
// "post-data" (indexes, constraints, triggers) after it, so indexes are built
// once rather than row by row. pgtandem's own capture triggers are left out.
pg::Awaitable<void> CopySchemaSection(pg::Connection& target, const Dsn& source, const std::vector<CapturedTable>& tables,
                                      const std::string& section);

// The dump text without psql meta-commands (\restrict ...) and without
// pgtandem's triggers; exposed for tests.
std::string FilterSchemaDump(const std::string& dump);

}  // namespace pgtandem
