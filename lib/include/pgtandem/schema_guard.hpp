// Keeps a sync from applying a batch with a stale or mismatched column list
// when the application's DDL changes a replicated table under it.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "pgtandem/catalog.hpp"
#include "pgtandem/log.hpp"
#include "pgtandem/pg/connection.hpp"

namespace pgtandem {

class SchemaGuard {
 public:
  explicit SchemaGuard(const Logger& log) : log_(log) {}

  // Before each batch, inside the batch's source transaction: locks the
  // batch's tables on the source against DDL until the batch is read, and
  // compares their definitions on both nodes. When both changed alike (a
  // column added with the same DDL on each), the new column list is adopted
  // in `batch_tables`; when they differ, throws an Error naming each table,
  // column and both definitions, and the fix. The sync then retries, and
  // resumes by itself once the DBA has made the definitions match.
  pg::Awaitable<void> Check(pg::Connection& source, pg::Connection& target,
                            const std::vector<CapturedTable*>& batch_tables);

 private:
  pg::Awaitable<void> Adopt(pg::Connection& source, CapturedTable& table);

  const Logger& log_;
  // Per table id, the definition both nodes last agreed on (a digest).
  std::map<int, std::string> agreed_;
};

}  // namespace pgtandem
