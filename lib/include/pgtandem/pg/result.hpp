// A query result from libpq, owned and read by row and column.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <libpq-fe.h>

namespace pgtandem::pg {

class Result {
 public:
  Result() = default;
  explicit Result(PGresult* result) : result_(result, &PQclear) {}

  int Rows() const { return result_ ? PQntuples(result_.get()) : 0; }
  int Columns() const { return result_ ? PQnfields(result_.get()) : 0; }
  bool IsNull(int row, int column) const { return PQgetisnull(result_.get(), row, column) != 0; }
  // The value as text; empty for NULL.
  std::string_view Get(int row, int column) const;
  std::optional<std::string> GetOptional(int row, int column) const;
  int64_t GetInt(int row, int column) const;
  bool GetBool(int row, int column) const { return Get(row, column) == "t"; }
  // Number of rows a command affected (UPDATE, DELETE, COPY ...).
  int64_t AffectedRows() const;
  const PGresult* Raw() const { return result_.get(); }
  ExecStatusType Status() const { return result_ ? PQresultStatus(result_.get()) : PGRES_EMPTY_QUERY; }

 private:
  std::shared_ptr<PGresult> result_;
};

}  // namespace pgtandem::pg
