// Throwaway PostgreSQL 15 clusters for the pg and scenario test tiers.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "support/port_lock.hpp"

namespace pgtandem::test {

// A PostgreSQL 15 cluster of its own: initdb into a fresh temp dir, a reserved
// loopback port, its unix socket in that temp dir, trust authentication,
// superuser `postgres`. Runs from construction until Stop() or destruction;
// the destructor stops it (`-m immediate`) and deletes the temp dir, also when
// a test fails. When the test runs as root the server tools run as the
// `postgres` OS user (PostgreSQL refuses root), and the temp dir belongs to it.
class PgCluster {
 public:
  // `label` names the temp dir and error messages ("source", "target-2").
  // `extra_settings` are postgresql.conf lines ("wal_level = logical") written
  // after the harness's own, so they override them. Starts the server; throws
  // std::runtime_error (with the end of the server log) if it does not come up.
  explicit PgCluster(std::string label, std::vector<std::string> extra_settings = {});
  ~PgCluster();
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  // A physical copy of `source`, started as a server of its own: what a DBA
  // gets from pg_basebackup (or a disk snapshot) restored on a new host.
  // Takes `pg_basebackup -X stream --checkpoint=fast` of the running source
  // (writes may go on meanwhile) into a fresh temp dir, then, since the copy's
  // postgresql.conf carries the source's port and socket dir, points it at its
  // own reserved port and its own temp dir (also overriding those keys in
  // postgresql.auto.conf), removes standby.signal and recovery.signal, and
  // starts it: it runs crash recovery up to the end of the backup and comes up
  // read-write, never as a standby (checked). The source's other settings,
  // including its `extra_settings`, carry over; `extra_settings` here are
  // appended last. Same guarantees as the constructor: loopback only, stopped
  // and deleted on destruction or when this throws.
  static std::unique_ptr<PgCluster> FromBaseBackup(const PgCluster& source, std::string label,
                                                   std::vector<std::string> extra_settings = {});

  int Port() const { return port_.Port(); }

  // "host=127.0.0.1 port=N dbname=D user=U", values quoted where libpq needs it.
  std::string Dsn(std::string_view dbname = "postgres", std::string_view user = "postgres") const;

  // Starts a stopped server (pg_ctl start -w); throws if it is already running
  // or does not come up, quoting the end of the server log.
  void Start();
  // Stops the server with pg_ctl's `mode`: "smart", "fast" or "immediate" (a
  // crash; recovery runs at the next Start). Does nothing if it is not running.
  void Stop(std::string_view mode = "fast");
  // Whether a postmaster is running on DataDir().
  bool Running() const;

  // Password authentication (scram-sha-256) over TCP for every role but the
  // harness's superuser `postgres`, which keeps trust so that Exec() and
  // Query() need no password. Restarts the server.
  void RequirePasswords();
  // Serves TLS with this certificate and key, copied into DataDir() (the key
  // 0600 and owned by the server's OS user, as PostgreSQL demands); clients
  // may still connect without TLS. Restarts the server.
  void EnableSsl(const std::filesystem::path& cert_file, const std::filesystem::path& key_file);

  const std::filesystem::path& DataDir() const { return data_dir_; }
  // The whole server log (DataDir()/server.log), across restarts.
  std::string ServerLog() const;

  void CreateDatabase(std::string_view name) const;
  // CREATE TABLESPACE in a directory of this cluster's temp dir, removed with it.
  void CreateTablespace(std::string_view name) const;
  // Runs one or more ';'-separated statements in one PQexec (an implicit
  // transaction unless they say otherwise). Throws std::runtime_error with the
  // server's message and the SQL.
  void Exec(std::string_view sql, std::string_view dbname = "postgres") const;
  // The first column of the first row of the last statement's result; an
  // empty string for NULL or no rows.
  std::string Query1(std::string_view sql, std::string_view dbname = "postgres") const;
  // All rows of the last statement's result as text; NULL becomes "".
  std::vector<std::vector<std::string>> Query(std::string_view sql,
                                              std::string_view dbname = "postgres") const;

 private:
  struct NoServer {};
  // Reserves the port and the temp dir only; FromBaseBackup fills DataDir().
  PgCluster(NoServer, std::string label);
  void BaseBackup(const PgCluster& source);
  // Rewrites the copy's settings so that it runs as its own server.
  void MakeIndependent(const std::vector<std::string>& extra_settings);
  void InitDb();
  void WriteSettings(const std::vector<std::string>& extra_settings);
  // Writes `lines` to the end of postgresql.conf.
  void AppendSettings(const std::vector<std::string>& lines, std::string_view why);
  void Restart();
  // Stops (immediately) and deletes everything; never throws.
  void Destroy() noexcept;
  // Message prefixes naming the cluster (and database).
  std::string Describe() const;
  std::string Where(std::string_view dbname) const;

  std::string label_;
  PortLock port_;
  std::filesystem::path base_dir_;  // temp dir: socket and data dir
  std::filesystem::path data_dir_;
  std::filesystem::path log_file_;
};

}  // namespace pgtandem::test
