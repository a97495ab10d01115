// Runs pg_dump (the DBA's client tools) and replays its DDL on the target.
#include "pgtandem/schema_copy.hpp"

#include <cstdio>
#include <memory>
#include <set>
#include <sstream>
#include <string_view>

#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace pgtandem {
namespace {

// Our environment for pg_dump, with the dsn's password as PGPASSWORD: a
// command line is readable by every local user (ps, /proc/PID/cmdline), a
// process's environment only by its owner and root.
std::vector<std::string> PgDumpEnvironment(const std::string& password) {
  std::vector<std::string> env;
  for (char** var = environ; *var != nullptr; ++var) {
    if (password.empty() || !std::string_view(*var).starts_with("PGPASSWORD=")) env.emplace_back(*var);
  }
  if (!password.empty()) env.push_back("PGPASSWORD=" + password);
  return env;
}

std::vector<char*> NullTerminated(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (const auto& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

// Runs pg_dump and returns its standard output; its standard error stays on ours.
std::string RunPgDump(const std::vector<std::string>& args, const std::string& password) {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) throw Error(ErrorKind::kInternal, "cannot create a pipe for pg_dump");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
  std::vector<char*> argv = NullTerminated(args);
  const std::vector<std::string> env_strings = PgDumpEnvironment(password);
  std::vector<char*> env = NullTerminated(env_strings);
  pid_t pid = 0;
  int spawned = posix_spawnp(&pid, "pg_dump", &actions, nullptr, argv.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  if (spawned != 0) {
    close(pipe_fds[0]);
    throw Error(ErrorKind::kUsage, "cannot run pg_dump: install the PostgreSQL client tools (postgresql-client) "
                                   "matching the source's major version");
  }
  std::string out;
  char buffer[65536];
  for (ssize_t n; (n = read(pipe_fds[0], buffer, sizeof buffer)) > 0;) out.append(buffer, static_cast<size_t>(n));
  close(pipe_fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw Error(ErrorKind::kSource, "pg_dump --schema-only failed on the source (its message is above)");
  }
  return out;
}

}  // namespace

std::string FilterSchemaDump(const std::string& dump) {
  std::istringstream in(dump);
  std::string out;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("\\", 0) == 0 || line.rfind("CREATE TRIGGER pgtandem_", 0) == 0) continue;
    out += line;
    out += '\n';
  }
  return out;
}

pg::Awaitable<void> CopySchemaSection(pg::Connection& target, const Dsn& source, const std::vector<CapturedTable>& tables,
                                      const std::string& section) {
  std::vector<std::string> args = {"pg_dump", "--schema-only", "--no-owner", "--no-privileges",
                                   "--section=" + section};
  std::set<std::string> schemas;
  for (const auto& table : tables) {
    args.push_back("--table=" + table.name.Quoted());
    schemas.insert(table.name.schema);
  }
  args.push_back("--dbname=" + source.WithoutPassword());
  std::string ddl = FilterSchemaDump(RunPgDump(args, source.Password()));
  if (section == "pre-data") {
    for (const auto& schema : schemas) co_await target.Exec("CREATE SCHEMA IF NOT EXISTS " + QuoteIdent(schema));
  }
  co_await target.Exec(ddl);
}

}  // namespace pgtandem
