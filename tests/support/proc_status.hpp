// A process's memory figures as the kernel reports them in /proc/<pid>/status.
#pragma once

#include <string_view>

#include <sys/types.h>

namespace pgtandem::test {

// The value in kB of a field such as "VmHWM" (peak resident set) or "VmPeak"
// (most address space ever mapped); -1 when the process or field is gone.
long ProcStatusKib(pid_t pid, std::string_view field);

}  // namespace pgtandem::test
