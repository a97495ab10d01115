// A lock held open by a plain libpq session.
#include "support/table_lock.hpp"

#include <stdexcept>

namespace pgtandem::test {

TableLock::TableLock(const PgCluster& cluster, std::string_view dbname, const std::string& table,
                     const std::string& rows_where)
    : conn_(PQconnectdb(cluster.Dsn(dbname).c_str())) {
  if (PQstatus(conn_) != CONNECTION_OK) {
    std::string reason = PQerrorMessage(conn_);
    PQfinish(conn_);
    throw std::runtime_error("TableLock: cannot connect: " + reason);
  }
  Exec("BEGIN");
  if (rows_where.empty()) {
    Exec("LOCK TABLE " + table + " IN ACCESS EXCLUSIVE MODE");
  } else {
    Exec("SELECT 1 FROM " + table + " WHERE " + rows_where + " FOR UPDATE", PGRES_TUPLES_OK);
  }
}

TableLock::~TableLock() { PQfinish(conn_); }

void TableLock::Release() { Exec("ROLLBACK"); }

void TableLock::Exec(const std::string& sql, ExecStatusType expected) {
  PGresult* result = PQexec(conn_, sql.c_str());
  bool ok = PQresultStatus(result) == expected;
  std::string error = PQresultErrorMessage(result);
  PQclear(result);
  if (!ok) throw std::runtime_error("TableLock: " + sql + ": " + error);
}

}  // namespace pgtandem::test
