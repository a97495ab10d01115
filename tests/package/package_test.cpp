// The systemd unit: systemd-analyze accepts it, and it keeps the settings README and the daemon rely on.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "support/child_process.hpp"

namespace pgtandem::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const fs::path kSourceDir = PGTANDEM_SOURCE_DIR;
const fs::path kManPage = PGTANDEM_MANPAGE;

// A fresh directory under $TMPDIR, removed with its contents when the test ends, pass or fail.
class TempDir {
 public:
  explicit TempDir(const std::string& label) {
    std::string pattern = (fs::temp_directory_path() / ("pgtandem-" + label + "-XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + pattern);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& Path() const { return path_; }

 private:
  fs::path path_;
};

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

TEST_CASE("systemd-analyze verify accepts the unit, with its binary and man page in place") {
  // verify checks that ExecStart's program exists and that man:pgtandem(1) resolves. Outside an installed
  // package, a copy of the unit runs the built binary, and MANPATH points man at the generated page.
  TempDir dir("unit");
  const std::string unit = ReadFile(kSourceDir / "packaging" / "pgtandem.service");
  const std::string exec_start = "ExecStart=/usr/bin/pgtandem ";
  REQUIRE(unit.find(exec_start) != std::string::npos);
  std::string copy = unit;
  copy.replace(copy.find(exec_start), exec_start.size(), "ExecStart=" + std::string(PGTANDEM_BINARY) + " ");
  std::ofstream(dir.Path() / "pgtandem.service") << copy;
  fs::create_directories(dir.Path() / "man" / "man1");
  fs::copy_file(kManPage, dir.Path() / "man" / "man1" / "pgtandem.1.gz");

  RunResult verify = Run({"systemd-analyze", "verify", (dir.Path() / "pgtandem.service").string()}, 60s,
                         {{"MANPATH", (dir.Path() / "man").string()}});
  INFO(verify.output);
  CHECK(verify.exit_code == 0);
  CHECK(verify.output.empty());  // warnings too: an unknown or misspelt directive is only a warning

  // The hardening, scored 0 (tight) to 10 (none), at most 2 (README gives the score). --threshold counts
  // in tenths.
  RunResult security = Run({"systemd-analyze", "security", "--offline=yes", "--threshold=20", "--no-pager",
                            (dir.Path() / "pgtandem.service").string()},
                           60s);
  INFO(security.output);
  CHECK(security.exit_code == 0);

  // What verify cannot judge: the settings README and the daemon rely on.
  for (const char* line : {"Type=notify\n", "NotifyAccess=main\n", "WatchdogSec=30s\n",
                           "ExecReload=/bin/kill -HUP $MAINPID\n", "Restart=on-failure\n", "User=pgtandem\n",
                           "Group=pgtandem\n", "ConditionPathExists=/etc/pgtandem/pgtandem.json\n",
                           "ProtectSystem=strict\n", "CapabilityBoundingSet=\n", "NoNewPrivileges=yes\n"}) {
    INFO(line);
    CHECK(unit.find(line) != std::string::npos);
  }
}

}  // namespace pgtandem::test
