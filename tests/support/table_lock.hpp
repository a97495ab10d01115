// A table locked from a session of the test's own, as a stuck application or DBA would hold it.
#pragma once

#include <string>

#include <libpq-fe.h>

#include "support/pg_cluster.hpp"

namespace pgtandem::test {

// Holds ACCESS EXCLUSIVE on `table` (quoted as SQL wants it) in an open
// transaction until Release() or destruction: every other session touching
// the table waits, a daemon's batch included. With `rows_where`, holds only
// the row locks of the rows it selects (FOR UPDATE): their update or delete
// waits, and the rest of the table is free.
class TableLock {
 public:
  TableLock(const PgCluster& cluster, std::string_view dbname, const std::string& table,
            const std::string& rows_where = "");
  ~TableLock();
  TableLock(const TableLock&) = delete;
  TableLock& operator=(const TableLock&) = delete;

  void Release();  // rolls the transaction back; the lock goes with it

 private:
  void Exec(const std::string& sql, ExecStatusType expected = PGRES_COMMAND_OK);
  PGconn* conn_;
};

}  // namespace pgtandem::test
