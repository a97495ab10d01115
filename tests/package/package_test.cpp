// The systemd unit and the Debian package: systemd-analyze accepts the unit, the package holds what
// README "Installing the package" says, and as root "dpkg -i" then "dpkg -r" leaves the machine as it was.
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/child_process.hpp"

namespace pgtandem::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const fs::path kSourceDir = PGTANDEM_SOURCE_DIR;
const fs::path kBuildDir = PGTANDEM_BUILD_DIR;
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

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<std::string> Words(const std::string& line) {
  std::vector<std::string> words;
  std::istringstream in(line);
  for (std::string word; in >> word;) words.push_back(word);
  return words;
}

// Runs a command that must succeed and returns what it printed (stdout and stderr).
std::string MustRun(std::vector<std::string> argv, std::map<std::string, std::string> env = {}) {
  std::string command;
  for (const auto& arg : argv) command += (command.empty() ? "" : " ") + arg;
  RunResult result = Run(std::move(argv), 300s, std::move(env));
  INFO("`" << command << "` printed:\n" << result.output);
  REQUIRE(result.exit_code == 0);
  return result.output;
}

// The command names `pgtandem --help` lists ("sequences sync" is one name of two words).
std::vector<std::string> CommandNames(const std::string& main_help) {
  std::vector<std::string> names;
  bool in_commands = false;
  for (const auto& line : Lines(main_help)) {
    if (line == "Commands:") {
      in_commands = true;
    } else if (in_commands && line.empty()) {
      break;
    } else if (in_commands) {
      names.push_back(line.substr(2, line.find("  ", 2) - 2));
    }
  }
  return names;
}

// Builds the package from this build tree into `dir` with CPack and returns the .deb's path. ctest runs
// after the build, and CPack builds nothing (CMAKE_SKIP_INSTALL_ALL_DEPENDENCY), so it only packs.
fs::path BuildPackage(const fs::path& dir) {
  MustRun({"cpack", "-G", "DEB", "--config", (kBuildDir / "CPackConfig.cmake").string(), "-B", dir.string()});
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".deb") return entry.path();
  }
  FAIL("cpack made no .deb in " << dir);
  return {};
}

// Path ("./usr/bin/pgtandem") -> "mode owner" of every entry `dpkg-deb -c` lists; directories end in '/'.
std::map<std::string, std::string> Contents(const fs::path& deb) {
  std::map<std::string, std::string> entries;
  for (const auto& line : Lines(MustRun({"dpkg-deb", "-c", deb.string()}))) {
    auto words = Words(line);
    REQUIRE(words.size() == 6);  // mode owner size date time path; no symlinks expected
    entries[words[5]] = words[0] + " " + words[1];
  }
  return entries;
}

// The Debian package of each shared library `binary` itself needs (ELF NEEDED, not the libraries' own),
// found where ldd resolves it: {"libpq5", "libc6", ...}.
std::set<std::string> LibraryPackages(const std::string& binary) {
  std::set<std::string> needed;
  for (const auto& line : Lines(MustRun({"readelf", "-d", binary}))) {
    // " 0x0000000000000001 (NEEDED)             Shared library: [libpq.so.5]"
    if (line.find("(NEEDED)") == std::string::npos) continue;
    needed.insert(line.substr(line.find('[') + 1, line.find(']') - line.find('[') - 1));
  }
  std::set<std::string> packages;
  for (const auto& line : Lines(MustRun({"ldd", binary}))) {
    const auto words = Words(line);  // "libpq.so.5 => /lib/x86_64-linux-gnu/libpq.so.5 (0x...)"
    if (words.size() < 3 || words[1] != "=>" || needed.count(words[0]) == 0) continue;
    // With /lib a link to /usr/lib, dpkg knows each file by the one name its package used.
    const std::string path = words[2];
    const std::string other = path.rfind("/usr/", 0) == 0 ? path.substr(4) : "/usr" + path;
    RunResult owner = Run({"dpkg", "-S", path}, 30s);
    if (owner.exit_code != 0) owner = Run({"dpkg", "-S", other}, 30s);
    INFO("no package holds " << path << " (nor " << other << "): " << owner.output);
    REQUIRE(owner.exit_code == 0);
    packages.insert(owner.output.substr(0, owner.output.find_first_of(":,")));
  }
  return packages;
}

// Whether a path exists, and under the directories a package can change, every path below it: what
// "dpkg -r" must restore.
std::set<std::string> MachineState(const std::map<std::string, std::string>& package_entries) {
  std::set<std::string> state;
  for (const auto& [entry, mode] : package_entries) {
    fs::path path = fs::path(entry.substr(1)).lexically_normal();
    std::error_code error;
    const bool exists = fs::exists(fs::symlink_status(path, error));
    state.insert(path.string() + (exists ? " exists" : " absent"));
  }
  for (const char* dir : {"/etc/pgtandem", "/etc/systemd/system", "/usr/share/doc/pgtandem"}) {
    std::error_code error;
    if (!fs::is_directory(dir, error)) continue;
    for (const auto& entry : fs::recursive_directory_iterator(dir)) state.insert(entry.path().string());
  }
  return state;
}

// passwd (or group) entry fields of `name`, or none if there is no such entry.
std::vector<std::string> GetEnt(const std::string& database, const std::string& name) {
  RunResult result = Run({"getent", database, name}, 30s);
  std::vector<std::string> fields;
  if (result.exit_code != 0) return fields;
  std::istringstream in(Lines(result.output).at(0));
  for (std::string field; std::getline(in, field, ':');) fields.push_back(field);
  return fields;
}

// Everything the install test did, undone however it ends: the package purged (which also stops and
// disables the service), and the user and group removed if this test's install created them.
struct InstallUndo {
  bool user_existed = true;
  bool group_existed = true;
  ~InstallUndo() {
    Run({"dpkg", "--purge", "pgtandem"}, 300s);
    if (!user_existed) Run({"userdel", "pgtandem"}, 30s);
    if (!group_existed && !GetEnt("group", "pgtandem").empty()) Run({"groupdel", "pgtandem"}, 30s);
  }
};

// A dpkg status other than "not-installed" (or none): the DBA's own pgtandem package, not ours to touch.
bool PackageKnownToDpkg() {
  RunResult result = Run({"dpkg-query", "-W", "-f=${db:Status-Status}", "pgtandem"}, 30s);
  return result.exit_code == 0 && !result.output.empty() && result.output != "not-installed";
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

TEST_CASE("The Debian package holds the binary, unit, example configs, man page, capture module and maintainer scripts") {
  TempDir dir("deb");
  const fs::path deb = BuildPackage(dir.Path());

  // Exactly these files, all root's: nothing missing, nothing stray, no conffile.
  const std::map<std::string, std::string> expected = {
      {"./usr/bin/pgtandem", "-rwxr-xr-x root/root"},
      {"./usr/lib/postgresql/15/lib/pgtandem_capture.so", "-rw-r--r-- root/root"},
      {"./lib/systemd/system/pgtandem.service", "-rw-r--r-- root/root"},
      {"./etc/pgtandem/pgtandem.example.json", "-rw-r--r-- root/root"},
      {"./etc/pgtandem/pgtandem.minimal.json", "-rw-r--r-- root/root"},
      {"./usr/share/man/man1/pgtandem.1.gz", "-rw-r--r-- root/root"},
      {"./usr/share/doc/pgtandem/README.md", "-rw-r--r-- root/root"},
      {"./usr/share/doc/pgtandem/LICENSE", "-rw-r--r-- root/root"},
      {"./usr/share/doc/pgtandem/copyright", "-rw-r--r-- root/root"}};
  std::map<std::string, std::string> files;
  for (const auto& [path, mode] : Contents(deb)) {
    if (path.back() == '/') {
      CHECK(mode == "drwxr-xr-x root/root");
    } else {
      files[path] = mode;
    }
  }
  CHECK(files == expected);

  // Control fields. Depends: a package for every shared library the binary needs (dpkg-shlibdeps), and
  // adduser for postinst.
  const std::string control = MustRun({"dpkg-deb", "-f", deb.string()});
  INFO(control);
  CHECK(control.find("Package: pgtandem\n") != std::string::npos);
  CHECK(control.find("Section: database\n") != std::string::npos);
  const std::string depends = MustRun({"dpkg-deb", "-f", deb.string(), "Depends"});
  std::set<std::string> depended;
  for (auto word : Words(depends)) depended.insert(word.substr(0, word.find_first_of(",(")));
  CHECK(depended.count("adduser") == 1);
  const std::set<std::string> needed_packages = LibraryPackages(PGTANDEM_BINARY);
  CHECK(needed_packages.count("libpq5") == 1);
  for (const auto& package : needed_packages) {
    INFO("the binary needs a library from " << package << "; Depends: " << depends);
    CHECK(depended.count(package) == 1);
  }

  // Maintainer scripts: present, executable, valid sh; no conffiles.
  const fs::path control_dir = dir.Path() / "control";
  MustRun({"dpkg-deb", "-e", deb.string(), control_dir.string()});
  for (const char* script : {"postinst", "prerm", "postrm"}) {
    INFO(script);
    CHECK((fs::status(control_dir / script).permissions() & fs::perms::owner_exec) != fs::perms::none);
    MustRun({"sh", "-n", (control_dir / script).string()});
  }
  CHECK_FALSE(fs::exists(control_dir / "conffiles"));

  // The packaged files: a stripped binary that runs, the unit and configs as in the tree, and a man page
  // with a section for every command the binary has.
  const fs::path root = dir.Path() / "root";
  MustRun({"dpkg-deb", "-x", deb.string(), root.string()});
  CHECK(MustRun({(root / "usr/bin/pgtandem").string(), "--version"}) ==
        MustRun({PGTANDEM_BINARY, "--version"}));
  CHECK(MustRun({"readelf", "-S", (root / "usr/bin/pgtandem").string()}).find(".debug_info") == std::string::npos);
  CHECK(ReadFile(root / "lib/systemd/system/pgtandem.service") ==
        ReadFile(kSourceDir / "packaging" / "pgtandem.service"));
  CHECK(ReadFile(root / "etc/pgtandem/pgtandem.example.json") ==
        ReadFile(kSourceDir / "config" / "pgtandem.example.json"));
  const std::string page = MustRun({"zcat", (root / "usr/share/man/man1/pgtandem.1.gz").string()});
  CHECK(page.find(".TH PGTANDEM 1") != std::string::npos);
  const auto names = CommandNames(MustRun({PGTANDEM_BINARY, "--help"}));
  CHECK(names.size() >= 10);
  for (const auto& name : names) {
    std::string title = ".SS \"pgtandem " + name + "\"";
    INFO(title);
    CHECK(page.find(title) != std::string::npos);
  }
}

TEST_CASE("As root, dpkg -i installs the package and dpkg -r removes it, leaving the pgtandem user") {
  if (::geteuid() != 0) {
    WARN("not root: dpkg -i and dpkg -r are not tried");
    return;
  }
  if (fs::exists("/usr/bin/pgtandem") || PackageKnownToDpkg()) {
    WARN("a pgtandem is already installed on this machine (/usr/bin/pgtandem or a pgtandem package): "
         "it is not ours to replace or remove, so dpkg -i and dpkg -r are not tried");
    return;
  }
  TempDir dir("dpkg");
  const fs::path deb = BuildPackage(dir.Path());
  const auto entries = Contents(deb);
  const std::set<std::string> before = MachineState(entries);

  InstallUndo undo;
  undo.user_existed = !GetEnt("passwd", "pgtandem").empty();
  undo.group_existed = !GetEnt("group", "pgtandem").empty();
  MustRun({"dpkg", "-i", deb.string()});

  // postinst made the system user, or kept the one that was there.
  const auto user = GetEnt("passwd", "pgtandem");
  REQUIRE(user.size() == 7);
  const auto group = GetEnt("group", "pgtandem");
  REQUIRE(group.size() >= 3);  // name:password:gid[:members]
  if (!undo.user_existed) {
    CHECK(std::stol(user[2]) < 1000);  // a system uid
    CHECK(user[3] == group[2]);
    CHECK(user[5] == "/nonexistent");
    CHECK(user[6] == "/usr/sbin/nologin");
  }

  // The command, for root and for the service's user, its man page by name, and the installed unit as it
  // is, now that /usr/bin/pgtandem and the page exist.
  CHECK(MustRun({"/usr/bin/pgtandem", "--help"}).find("Usage: pgtandem") != std::string::npos);
  CHECK(MustRun({"runuser", "-u", "pgtandem", "--", "pgtandem", "status", "--help"}).find("Usage:") !=
        std::string::npos);
  CHECK(MustRun({"man", "-w", "pgtandem"}) == "/usr/share/man/man1/pgtandem.1.gz\n");
  CHECK(MustRun({"man", "pgtandem"}, {{"MANPAGER", "cat"}, {"MANWIDTH", "100"}}).find("pgtandem sequences sync") !=
        std::string::npos);
  CHECK(MustRun({"systemd-analyze", "verify", "/lib/systemd/system/pgtandem.service"}).empty());

  // Installing again (an upgrade's path through postinst) keeps the user as it is.
  MustRun({"dpkg", "-i", deb.string()});
  CHECK(GetEnt("passwd", "pgtandem") == user);

  // Enabled (systemctl needs no running systemd for that), so that removal must also undo the symlink.
  MustRun({"systemctl", "enable", "pgtandem.service"});
  CHECK(fs::is_symlink("/etc/systemd/system/multi-user.target.wants/pgtandem.service"));

  MustRun({"dpkg", "-r", "pgtandem"});
  const std::set<std::string> after = MachineState(entries);
  std::vector<std::string> changed;
  std::set_symmetric_difference(before.begin(), before.end(), after.begin(), after.end(),
                                std::back_inserter(changed));
  std::string changed_text;
  for (const auto& line : changed) changed_text += "  " + line + "\n";
  INFO("differs from before the install:\n" << changed_text);
  CHECK(changed.empty());
  CHECK(GetEnt("passwd", "pgtandem") == user);
  CHECK(GetEnt("group", "pgtandem") == group);

  // dpkg keeps the removed package's postrm until a purge, which removes nothing else and keeps the user.
  MustRun({"dpkg", "--purge", "pgtandem"});
  CHECK_FALSE(PackageKnownToDpkg());
  CHECK(MachineState(entries) == before);
  CHECK(GetEnt("passwd", "pgtandem") == user);
}

}  // namespace pgtandem::test
