// Throwaway PostgreSQL 15 clusters for the pg and scenario test tiers.
#include "support/pg_cluster.hpp"

#include <libpq-fe.h>
#include <pwd.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include "support/child_process.hpp"
#include "support/wait_until.hpp"

namespace pgtandem::test {

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const fs::path kPgBin = "/usr/lib/postgresql/15/bin";
constexpr const char* kOwner = "postgres";
// pg_ctl itself waits at most 60 s (-t 60); this only catches a hung tool.
constexpr auto kToolTimeout = 120s;

// PostgreSQL refuses to run as root, so a root test process runs the server
// tools as the postgres OS user.
bool RunningAsRoot() { return ::geteuid() == 0; }

std::vector<std::string> AsClusterOwner(std::vector<std::string> argv) {
  if (!RunningAsRoot()) return argv;
  // An absolute path: root's PATH under ctest or sudo may lack /usr/sbin.
  std::string runuser = ::access("/usr/sbin/runuser", X_OK) == 0 ? "/usr/sbin/runuser" : "runuser";
  argv.insert(argv.begin(), {runuser, "-u", kOwner, "--"});
  return argv;
}

// Files the server must own (its data and tablespace dirs, a TLS key) go to
// the postgres OS user when the tests run as root; false if that fails.
bool HandToClusterOwner(const fs::path& path) {
  if (!RunningAsRoot()) return true;
  const passwd* owner = ::getpwnam(kOwner);
  return owner != nullptr && ::chown(path.c_str(), owner->pw_uid, owner->pw_gid) == 0;
}

RunResult RunTool(const std::string& tool, std::vector<std::string> args) {
  args.insert(args.begin(), (kPgBin / tool).string());
  return Run(AsClusterOwner(std::move(args)), kToolTimeout);
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

// The postmaster's PID from postmaster.pid, or 0 if there is none.
pid_t PostmasterPid(const fs::path& data_dir) {
  std::ifstream pid_file(data_dir / "postmaster.pid");
  long pid = 0;
  return pid_file >> pid && pid > 0 ? static_cast<pid_t>(pid) : 0;
}

// The PID of the postmaster running on `data_dir`, or 0. A postmaster runs in
// its data dir; checking that matters because a stale postmaster.pid (after a
// crash) may name a PID the kernel has since given to an unrelated process,
// which we must never signal. Zombies have no cwd, so they count as gone.
pid_t LivePostmaster(const fs::path& data_dir) {
  const pid_t pid = PostmasterPid(data_dir);
  if (pid <= 0) return 0;
  std::error_code error;
  const fs::path cwd = fs::read_symlink("/proc/" + std::to_string(pid) + "/cwd", error);
  return !error && fs::equivalent(cwd, data_dir, error) ? pid : 0;
}

// Keeps the temp dir name short and shell-safe: the socket path under it
// must stay below the 107-byte unix socket limit.
std::string DirSafeLabel(const std::string& label) {
  std::string safe;
  for (char c : label.substr(0, 20)) {
    safe += std::isalnum(static_cast<unsigned char>(c)) || c == '-' ? c : '_';
  }
  return safe.empty() ? "cluster" : safe;
}

fs::path MakeBaseDir(const std::string& label) {
  const std::string name = "pgtandem-" + DirSafeLabel(label) + "-XXXXXX";
  std::string pattern = (fs::temp_directory_path() / name).string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::system_error(errno, std::generic_category(), "cannot create " + pattern);
  }
  if (!HandToClusterOwner(pattern)) {
    std::error_code ignored;
    fs::remove(pattern, ignored);
    throw std::runtime_error("cannot hand " + pattern + " to the OS user '" + kOwner +
                             "' that runs the test servers; is postgresql-15 installed "
                             "(scripts/ensure-deps)?");
  }
  return pattern;
}

// Cleans up after a test process that died (a crash, or ctest killing it at
// its timeout) before its destructors ran: the note names the temp dir.
bool ReclaimAbandonedCluster(const std::string& note) {
  if (note.empty()) return true;
  const fs::path base_dir = note;
  // Only ever touch what this harness creates.
  if (!base_dir.is_absolute() || !base_dir.filename().string().starts_with("pgtandem-")) {
    return false;
  }
  std::error_code error;
  if (!fs::exists(base_dir, error)) return true;
  const fs::path data_dir = base_dir / "data";
  if (LivePostmaster(data_dir) != 0) {
    std::cerr << "pgtandem test harness: stopping a cluster left running by a dead test process in "
              << data_dir << "\n";
    RunTool("pg_ctl", {"stop", "-D", data_dir, "-m", "immediate", "-w", "-t", "60", "-s"});
    if (LivePostmaster(data_dir) != 0) return false;
  }
  fs::remove_all(base_dir, error);
  return !error;
}

struct ConnectionCloser {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
struct ResultClearer {
  void operator()(PGresult* result) const { PQclear(result); }
};
using Connection = std::unique_ptr<PGconn, ConnectionCloser>;
using Result = std::unique_ptr<PGresult, ResultClearer>;

// NOTICEs ("table ... does not exist, skipping") would clutter test output.
void IgnoreNotice(void* /*arg*/, const char* /*message*/) {}

std::string TrimEnd(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

std::string Abbreviate(std::string_view sql) {
  constexpr std::size_t kMax = 2000;
  return sql.size() <= kMax ? std::string(sql) : std::string(sql.substr(0, kMax)) + " ...";
}

std::string ConninfoValue(std::string_view value) {
  if (!value.empty() && value.find_first_of(" \t\n'\\") == std::string_view::npos) {
    return std::string(value);
  }
  std::string quoted = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') quoted += '\\';
    quoted += c;
  }
  return quoted + "'";
}

std::string QuoteIdentifier(std::string_view name) {
  std::string quoted = "\"";
  for (char c : name) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

// Runs `sql` in a new connection and returns the last statement's result.
Result Execute(const std::string& dsn, std::string_view sql, const std::string& where) {
  Connection conn(PQconnectdb((dsn + " connect_timeout=10").c_str()));
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    throw std::runtime_error(where + "cannot connect: " + TrimEnd(PQerrorMessage(conn.get())));
  }
  PQsetNoticeProcessor(conn.get(), IgnoreNotice, nullptr);
  Result result(PQexec(conn.get(), std::string(sql).c_str()));
  const ExecStatusType status = PQresultStatus(result.get());
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY) {
    return result;
  }
  std::string message = result ? PQresultErrorMessage(result.get()) : PQerrorMessage(conn.get());
  if (message.empty()) message = std::string("unexpected result ") + PQresStatus(status);
  throw std::runtime_error(where + TrimEnd(message) + "\nSQL: " + Abbreviate(sql));
}

}  // namespace

PgCluster::PgCluster(std::string label, std::vector<std::string> extra_settings)
    : label_(std::move(label)), port_(ReclaimAbandonedCluster) {
  base_dir_ = MakeBaseDir(label_);
  data_dir_ = base_dir_ / "data";
  log_file_ = data_dir_ / "server.log";
  try {
    port_.WriteNote(base_dir_.string());
    InitDb();
    WriteSettings(extra_settings);
    Start();
  } catch (...) {
    Destroy();
    throw;
  }
}

PgCluster::~PgCluster() { Destroy(); }

PgCluster::PgCluster(NoServer, std::string label)
    : label_(std::move(label)), port_(ReclaimAbandonedCluster) {
  base_dir_ = MakeBaseDir(label_);
  data_dir_ = base_dir_ / "data";
  log_file_ = data_dir_ / "server.log";
  try {
    port_.WriteNote(base_dir_.string());
  } catch (...) {
    Destroy();
    throw;
  }
}

std::unique_ptr<PgCluster> PgCluster::FromBaseBackup(const PgCluster& source, std::string label,
                                                     std::vector<std::string> extra_settings) {
  // From here on the destructor stops and deletes whatever exists, also when
  // a step below throws.
  std::unique_ptr<PgCluster> copy(new PgCluster(NoServer{}, std::move(label)));
  copy->BaseBackup(source);
  copy->MakeIndependent(extra_settings);
  copy->Start();
  if (const std::string in_recovery = copy->Query1("SELECT pg_is_in_recovery()"); in_recovery != "f") {
    throw std::runtime_error(copy->Describe() + "the copy of PgCluster '" + source.label_ +
                             "' came up as a standby (pg_is_in_recovery() = '" + in_recovery + "')");
  }
  return copy;
}

void PgCluster::BaseBackup(const PgCluster& source) {
  // Run as the cluster owner: the data dir it writes must belong to the user
  // that runs the server. --no-sync as for initdb: nothing here must survive a
  // power loss. pg_basebackup creates DataDir() itself (it must not exist).
  const RunResult result =
      RunTool("pg_basebackup", {"-D", data_dir_, "-X", "stream", "--checkpoint=fast", "--no-sync",
                                "-d", source.Dsn()});
  if (result.exit_code != 0) {
    throw std::runtime_error(Describe() + "pg_basebackup of PgCluster '" + source.label_ + "' failed (exit " +
                             std::to_string(result.exit_code) + "):\n" + LastLines(result.output, 30));
  }
}

void PgCluster::MakeIndependent(const std::vector<std::string>& extra_settings) {
  // Either file would start the copy in recovery: as a standby, or to a
  // recovery target. Without them it runs crash recovery from the backup
  // label to the end of the streamed WAL, then accepts writes.
  for (const char* signal_file : {"standby.signal", "recovery.signal"}) {
    std::error_code ignored;
    fs::remove(data_dir_ / signal_file, ignored);
  }
  // The source's server log came along in the copy; this cluster's log
  // starts empty (pg_ctl -l creates it again, as the server's user).
  {
    std::error_code ignored;
    fs::remove(log_file_, ignored);
  }
  // postgresql.auto.conf is read after postgresql.conf, so a key set there
  // (by ALTER SYSTEM on the source, or pg_basebackup -R) would beat the lines
  // appended below: drop those keys from it. Rewritten in place, so the file
  // keeps its owner.
  const fs::path auto_conf = data_dir_ / "postgresql.auto.conf";
  if (fs::exists(auto_conf)) {
    std::istringstream lines(ReadFile(auto_conf));
    std::string kept;
    for (std::string line; std::getline(lines, line);) {
      std::size_t start = line.find_first_not_of(" \t");
      std::string key = start == std::string::npos ? "" : line.substr(start);
      key = key.substr(0, key.find_first_of(" \t="));
      for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (key == "port" || key == "listen_addresses" || key == "unix_socket_directories" ||
          key == "primary_conninfo" || key == "primary_slot_name") {
        continue;
      }
      kept += line + "\n";
    }
    std::ofstream out(auto_conf, std::ios::trunc);
    out << kept;
    out.close();
    if (!out) throw std::runtime_error(Describe() + "cannot rewrite " + auto_conf.string());
  }
  std::ofstream conf(data_dir_ / "postgresql.conf", std::ios::app);
  conf << "\n# ---- pgtandem test harness: this cluster is a physical copy, a server of its own ----\n"
       << "# The lines above are the source's; its port and socket dir are replaced here.\n"
       << "listen_addresses = '127.0.0.1'\n"
       << "port = " << Port() << "\n"
       << "unix_socket_directories = '" << base_dir_.string() << "'\n";
  if (!extra_settings.empty()) {
    conf << "# Requested by the test; last, so they override the lines above.\n";
    for (const auto& line : extra_settings) conf << line << "\n";
  }
  conf.close();
  if (!conf) throw std::runtime_error(Describe() + "cannot append to postgresql.conf");
}

std::string PgCluster::Dsn(std::string_view dbname, std::string_view user) const {
  return "host=127.0.0.1 port=" + std::to_string(Port()) + " dbname=" + ConninfoValue(dbname) +
         " user=" + ConninfoValue(user);
}

void PgCluster::InitDb() {
  // --no-sync: the data dir is deleted after the test, nothing needs to reach
  // the disk. C.UTF-8 sorts bytewise and is built into glibc, so every host
  // gets the same collation without generating locales.
  const RunResult result =
      RunTool("initdb", {"-D", data_dir_, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                         "--locale=C.UTF-8", "--no-sync", "--no-instructions"});
  if (result.exit_code != 0) {
    throw std::runtime_error(Describe() + "initdb failed (exit " +
                             std::to_string(result.exit_code) + "):\n" +
                             LastLines(result.output, 30));
  }
}

void PgCluster::WriteSettings(const std::vector<std::string>& extra_settings) {
  // Appending keeps postgresql.conf owned by the server's user, which must
  // read it again at every restart.
  std::ofstream conf(data_dir_ / "postgresql.conf", std::ios::app);
  conf << "\n# ---- pgtandem test harness (tests/support/pg_cluster.cpp) ----\n"
       << "# Loopback only: a test server must never be reachable from the network.\n"
       << "listen_addresses = '127.0.0.1'\n"
       << "# Reserved by this test process's lock file, so parallel tests never collide.\n"
       << "port = " << Port() << "\n"
       << "# Our own temp dir, never /var/run/postgresql, where the Debian cluster lives.\n"
       << "unix_socket_directories = '" << base_dir_.string() << "'\n"
       << "# Test clusters never survive a power loss, so durability buys nothing.\n"
       << "fsync = off\n"
       << "synchronous_commit = off\n"
       << "full_page_writes = off\n"
       << "# The daemon's connections plus test clients, yet small enough that many\n"
       << "# clusters fit side by side on a CI machine.\n"
       << "max_connections = 60\n"
       << "shared_buffers = 32MB\n"
       << "# stderr goes to pg_ctl's -l file, DataDir()/server.log; no collector, so\n"
       << "# a failed start-up is in that file too, where the harness quotes it from.\n"
       << "logging_collector = off\n"
       << "log_destination = 'stderr'\n"
       << "log_line_prefix = '%m [%p] %q%u@%d '\n"
       << "# Warnings and errors only: the log is read when something went wrong.\n"
       << "log_min_messages = warning\n"
       << "# English messages and UTC timestamps whatever the host, so tests can\n"
       << "# match error text and compare rendered values.\n"
       << "lc_messages = 'C'\n"
       << "timezone = 'UTC'\n";
  if (!extra_settings.empty()) {
    conf << "# Requested by the test; last, so they override the lines above.\n";
    for (const auto& line : extra_settings) conf << line << "\n";
  }
  conf.close();
  if (!conf) throw std::runtime_error(Describe() + "cannot append to postgresql.conf");
}

void PgCluster::AppendSettings(const std::vector<std::string>& lines, std::string_view why) {
  std::ofstream conf(data_dir_ / "postgresql.conf", std::ios::app);
  conf << "# " << why << "\n";
  for (const auto& line : lines) conf << line << "\n";
  conf.close();
  if (!conf) throw std::runtime_error(Describe() + "cannot append to postgresql.conf");
}

void PgCluster::Restart() {
  Stop("fast");
  Start();
}

void PgCluster::RequirePasswords() {
  // The first matching line wins, so these go before initdb's trust lines.
  const fs::path hba = data_dir_ / "pg_hba.conf";
  const std::string rest = ReadFile(hba);
  std::ofstream out(hba, std::ios::trunc);  // rewritten in place: it keeps its owner
  out << "# pgtandem test harness: the harness's superuser keeps trust, every other role needs its password.\n"
      << "host all postgres 127.0.0.1/32 trust\n"
      << "host all all 127.0.0.1/32 scram-sha-256\n"
      << rest;
  out.close();
  if (!out) throw std::runtime_error(Describe() + "cannot rewrite " + hba.string());
  Restart();
}

void PgCluster::EnableSsl(const fs::path& cert_file, const fs::path& key_file) {
  const fs::path cert = data_dir_ / "server.crt";
  const fs::path key = data_dir_ / "server.key";
  fs::copy_file(cert_file, cert, fs::copy_options::overwrite_existing);
  fs::copy_file(key_file, key, fs::copy_options::overwrite_existing);
  fs::permissions(key, fs::perms::owner_read | fs::perms::owner_write);
  if (!HandToClusterOwner(cert) || !HandToClusterOwner(key)) {
    throw std::runtime_error(Describe() + "cannot hand the server's certificate and key to '" + kOwner + "'");
  }
  AppendSettings({"ssl = on", "ssl_cert_file = 'server.crt'", "ssl_key_file = 'server.key'"},
                 "Requested by the test (EnableSsl): TLS with the test's own CA.");
  Restart();
}

void PgCluster::Start() {
  if (Running()) throw std::runtime_error(Describe() + "Start(): the server is already running");
  const RunResult result = RunTool(
      "pg_ctl", {"start", "-D", data_dir_, "-l", log_file_, "-w", "-t", "60", "-s"});
  if (result.exit_code != 0) {
    throw std::runtime_error(Describe() + "pg_ctl start failed (exit " +
                             std::to_string(result.exit_code) + "): " + TrimEnd(result.output) +
                             "\nlast lines of " + log_file_.string() + ":\n" +
                             LastLines(ServerLog(), 40));
  }
}

void PgCluster::Stop(std::string_view mode) {
  if (mode != "smart" && mode != "fast" && mode != "immediate") {
    throw std::invalid_argument(Describe() + "Stop(): unknown mode '" + std::string(mode) +
                                "'; use smart, fast or immediate");
  }
  if (!Running()) return;
  const RunResult result = RunTool(
      "pg_ctl", {"stop", "-D", data_dir_, "-m", std::string(mode), "-w", "-t", "60", "-s"});
  if (result.exit_code != 0) {
    throw std::runtime_error(Describe() + "pg_ctl stop -m " + std::string(mode) + " failed (exit " +
                             std::to_string(result.exit_code) + "): " + TrimEnd(result.output) +
                             "\nlast lines of " + log_file_.string() + ":\n" +
                             LastLines(ServerLog(), 40));
  }
}

bool PgCluster::Running() const { return LivePostmaster(data_dir_) != 0; }

std::string PgCluster::ServerLog() const { return ReadFile(log_file_); }

void PgCluster::CreateDatabase(std::string_view name) const {
  Exec("CREATE DATABASE " + QuoteIdentifier(name));
}

void PgCluster::CreateTablespace(std::string_view name) const {
  const fs::path location = base_dir_ / ("tablespace-" + std::string(name));
  fs::create_directory(location);
  if (!HandToClusterOwner(location)) {
    throw std::runtime_error(Describe() + "cannot hand " + location.string() + " to '" + kOwner + "'");
  }
  Exec("CREATE TABLESPACE " + QuoteIdentifier(name) + " LOCATION '" + location.string() + "'");
}

void PgCluster::Exec(std::string_view sql, std::string_view dbname) const {
  Execute(Dsn(dbname), sql, Where(dbname));
}

std::string PgCluster::Query1(std::string_view sql, std::string_view dbname) const {
  const Result result = Execute(Dsn(dbname), sql, Where(dbname));
  if (PQntuples(result.get()) == 0 || PQnfields(result.get()) == 0) return {};
  return PQgetvalue(result.get(), 0, 0);  // "" for NULL as well
}

std::vector<std::vector<std::string>> PgCluster::Query(std::string_view sql,
                                                       std::string_view dbname) const {
  const Result result = Execute(Dsn(dbname), sql, Where(dbname));
  std::vector<std::vector<std::string>> rows(static_cast<std::size_t>(PQntuples(result.get())));
  for (int row = 0; row < PQntuples(result.get()); ++row) {
    for (int column = 0; column < PQnfields(result.get()); ++column) {
      rows[row].emplace_back(PQgetvalue(result.get(), row, column));
    }
  }
  return rows;
}

void PgCluster::Destroy() noexcept {
  try {
    if (Running()) {
      RunTool("pg_ctl", {"stop", "-D", data_dir_, "-m", "immediate", "-w", "-t", "30", "-s"});
    }
    // Last resort if pg_ctl could not stop it: the postmaster we started, by PID.
    if (const pid_t pid = LivePostmaster(data_dir_); pid != 0) {
      ::kill(pid, SIGKILL);
      WaitUntil([this] { return !Running(); }, 10s, "the killed postmaster to exit");
    }
  } catch (const std::exception& e) {
    std::cerr << Describe() << "stopping the server failed: " << e.what() << "\n";
  }
  std::error_code error;
  fs::remove_all(base_dir_, error);
  if (error) {
    std::cerr << Describe() << "cannot remove " << base_dir_ << ": " << error.message() << "\n";
  }
}

std::string PgCluster::Describe() const {
  return "PgCluster '" + label_ + "' (port " + std::to_string(Port()) + "): ";
}

std::string PgCluster::Where(std::string_view dbname) const {
  return Describe() + "database " + std::string(dbname) + ": ";
}

}  // namespace pgtandem::test
