// The one error type pgtandem throws, and the exit codes DBAs' runbooks test.
#pragma once

#include <stdexcept>
#include <string>

namespace pgtandem {

// Documented in README.md ("Exit codes"); scripts depend on the numbers.
enum class ExitCode : int {
  kOk = 0,
  kFailure = 1,          // the command ran and found a problem (e.g. not equal)
  kBadArguments = 2,     // command line
  kBadConfig = 3,        // configuration file
  kSourceUnreachable = 4,
  kTargetUnreachable = 5,
  kBadState = 6,         // the databases are not in a state the command accepts
  kTimeout = 7,          // a wait did not reach its goal in time
  kInternal = 70,        // our bug
};

// Each kind answers the question the caller acts on: fix the config, fix the
// command line, wait for a node, fix the database, or report a bug.
enum class ErrorKind {
  kUsage,
  kConfig,
  kSource,
  kTarget,
  kState,
  kTimeout,
  kInternal,
};

// A message for the DBA: names the object, the value and the fix.
class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message, std::string sqlstate = {})
      : std::runtime_error(message), kind_(kind), sqlstate_(std::move(sqlstate)) {}

  ErrorKind Kind() const { return kind_; }
  // SQLSTATE of the server error behind this one, empty when there is none.
  const std::string& SqlState() const { return sqlstate_; }
  ExitCode Code() const;

 private:
  ErrorKind kind_;
  std::string sqlstate_;
};

}  // namespace pgtandem
