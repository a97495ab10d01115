// "pgtandem run": every (sync, target) worker, the listeners and purgers, and the signals.
#pragma once

#include <optional>
#include <string>

#include "pgtandem/config.hpp"

namespace pgtandem {

// Runs until SIGTERM or SIGINT (finish the batches in flight, exit 0); a second
// signal rolls them back and exits at once. Returns the process exit code.
int RunDaemon(const Config& config, const std::optional<std::string>& only_sync);

}  // namespace pgtandem
