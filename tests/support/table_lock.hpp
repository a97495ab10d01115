// A table locked from a session of the test's own, as a stuck application or DBA would hold it.
#pragma once

#include <string>

#include <libpq-fe.h>

#include "support/pg_cluster.hpp"

namespace pgtandem::test {

// Holds ACCESS EXCLUSIVE on `table` (quoted as SQL wants it) in an open
// transaction until Release() or destruction: every other session touching
// the table waits, a daemon's batch included.
class TableLock {
 public:
  TableLock(const PgCluster& cluster, std::string_view dbname, const std::string& table);
  ~TableLock();
  TableLock(const TableLock&) = delete;
  TableLock& operator=(const TableLock&) = delete;

  void Release();  // rolls the transaction back; the lock goes with it

 private:
  void Exec(const std::string& sql);
  PGconn* conn_;
};

}  // namespace pgtandem::test
