#include "support/proc_status.hpp"

#include <fstream>
#include <string>

namespace pgtandem::test {

long ProcStatusKib(pid_t pid, std::string_view field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  const std::string wanted = std::string(field) + ":";
  std::string key;
  while (status >> key) {
    if (key == wanted) {
      long value = -1;
      status >> value;
      return value;
    }
    status.ignore(4096, '\n');
  }
  return -1;
}

}  // namespace pgtandem::test
