// A libpq connection string that cannot be printed with its password.
#pragma once

#include <string>

namespace pgtandem {

// Wraps a libpq connection string, keyword form (`host=h dbname=d`) or URI
// form (`postgresql://user:secret@h/d`). Deliberately has no operator<< and no
// implicit conversion to string: logs must go through Redacted() or
// Describe(), so a password cannot reach them by accident.
class Dsn {
 public:
  // Empty; libpq reads everything from PG* environment variables and defaults.
  Dsn();
  // Validates with PQconninfoParse. Throws Error(kConfig) saying why libpq
  // rejected it; the message never contains the password.
  explicit Dsn(std::string conninfo);

  // The string as given, for libpq only; never log it.
  const std::string& ConnInfo() const { return conninfo_; }
  // The string as given, with every password value replaced by `***`. Where
  // an unencoded '@', '/' or '&' in a password would make libpq misread it,
  // the whole ambiguous stretch is masked.
  std::string Redacted() const { return redacted_; }
  // Short form for log lines: `host=h port=p dbname=d user=u`, only the keys
  // that are set, never the password.
  std::string Describe() const { return description_; }

  // The same connection in keyword form without `password`, for a child
  // program (pg_dump) whose command line any local user can read with `ps`:
  // it gets Password() through its environment instead. Throws Error(kConfig)
  // when the string holds `sslpassword`, which libpq reads from nowhere else.
  std::string WithoutPassword() const;
  // The `password` the string holds (keyword or URI form); empty when none,
  // and libpq then looks in PGPASSWORD, PGPASSFILE or ~/.pgpass.
  std::string Password() const;

  // Same connection string, byte for byte (a reload uses it to see change).
  bool operator==(const Dsn& other) const { return conninfo_ == other.conninfo_; }

 private:
  std::string conninfo_;
  std::string redacted_;
  std::string description_;
};

}  // namespace pgtandem
