// A lock held open by a plain libpq session.
#include "support/table_lock.hpp"

#include <stdexcept>

namespace pgtandem::test {

TableLock::TableLock(const PgCluster& cluster, std::string_view dbname, const std::string& table)
    : conn_(PQconnectdb(cluster.Dsn(dbname).c_str())) {
  if (PQstatus(conn_) != CONNECTION_OK) {
    std::string reason = PQerrorMessage(conn_);
    PQfinish(conn_);
    throw std::runtime_error("TableLock: cannot connect: " + reason);
  }
  Exec("BEGIN");
  Exec("LOCK TABLE " + table + " IN ACCESS EXCLUSIVE MODE");
}

TableLock::~TableLock() { PQfinish(conn_); }

void TableLock::Release() { Exec("ROLLBACK"); }

void TableLock::Exec(const std::string& sql) {
  PGresult* result = PQexec(conn_, sql.c_str());
  bool ok = PQresultStatus(result) == PGRES_COMMAND_OK;
  std::string error = PQresultErrorMessage(result);
  PQclear(result);
  if (!ok) throw std::runtime_error("TableLock: " + sql + ": " + error);
}

}  // namespace pgtandem::test
