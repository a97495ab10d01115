// SQL that runs on the servers, embedded at build time from sql/*.sql.
#pragma once

#include <string_view>

namespace pgtandem::sql {

extern const std::string_view k_source_schema;  // sql/source_schema.sql
extern const std::string_view k_target_schema;  // sql/target_schema.sql

}  // namespace pgtandem::sql
