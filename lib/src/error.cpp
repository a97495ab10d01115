// Maps error kinds to the documented exit codes.
#include "pgtandem/error.hpp"

namespace pgtandem {

ExitCode Error::Code() const {
  switch (kind_) {
    case ErrorKind::kUsage: return ExitCode::kBadArguments;
    case ErrorKind::kConfig: return ExitCode::kBadConfig;
    case ErrorKind::kSource: return ExitCode::kSourceUnreachable;
    case ErrorKind::kTarget: return ExitCode::kTargetUnreachable;
    case ErrorKind::kState: return ExitCode::kBadState;
    case ErrorKind::kTimeout: return ExitCode::kTimeout;
    case ErrorKind::kInternal: return ExitCode::kInternal;
  }
  return ExitCode::kInternal;
}

}  // namespace pgtandem
