// One libpq connection driven by Boost.Asio: queries, COPY and notifications as coroutines.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <libpq-fe.h>

#include "pgtandem/dsn.hpp"
#include "pgtandem/error.hpp"
#include "pgtandem/pg/result.hpp"

namespace pgtandem::pg {

template <typename T>
using Awaitable = boost::asio::awaitable<T>;

// Which role the node plays for this connection; decides the error kind (and exit code).
enum class Side { kSource, kTarget };

using Params = std::vector<std::optional<std::string>>;

struct Notification {
  std::string channel;
  std::string payload;
};

class Connection {
 public:
  // `io_timeout` (0: none) bounds how long a wait may pass with no byte moving
  // before the connection is checked from a second one (see CheckAlive), and
  // sets libpq's TCP keepalives and tcp_user_timeout (a DSN may override them).
  Connection(boost::asio::any_io_executor executor, std::string node, Side side, Dsn dsn,
             std::chrono::seconds connect_timeout, std::chrono::seconds io_timeout = std::chrono::seconds(0));
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Connects (or reconnects), non-blocking; throws Error naming the node and the reason.
  Awaitable<void> Connect();
  bool Connected() const;
  void Close();

  // Runs SQL (several statements allowed without params); returns the last result.
  Awaitable<Result> Exec(std::string_view sql);
  Awaitable<Result> ExecParams(std::string_view sql, Params params);
  // Exec(sql, a, b): $1 = a, $2 = b; each a std::string or std::optional<std::string> (NULL).
  // The parameter list is built here, outside the coroutine: g++ 12 miscompiles
  // braced lists inside co_await expressions.
  template <typename... Args>
  Awaitable<Result> Exec(std::string_view sql, Args&&... args) {
    return ExecParams(sql, Params{std::optional<std::string>(std::forward<Args>(args))...});
  }

  // Streams `copy_out_sql` (COPY ... TO STDOUT) run here into `copy_in_sql`
  // (COPY ... FROM STDIN) run on `to`, row by row, with bounded buffers.
  struct CopyStats {
    int64_t rows = 0;
    int64_t bytes = 0;
  };
  // `live`, when given, is updated as rows stream (for progress displays).
  Awaitable<CopyStats> CopyTo(std::string_view copy_out_sql, Connection& to, std::string_view copy_in_sql,
                              CopyStats* live = nullptr);
  // CopyTo, with `to_first_sql` run on `to` before its COPY starts. The COPY
  // here starts at once, and its rows wait in memory (a bounded amount) while
  // `to` runs that statement: the two nodes work at the same time, not in turn.
  Awaitable<CopyStats> CopyToAfter(std::string_view to_first_sql, std::string_view copy_out_sql, Connection& to,
                                   std::string_view copy_in_sql);

  // Waits up to `timeout` for a NOTIFY (after LISTEN); nullopt on timeout.
  Awaitable<std::optional<Notification>> WaitNotification(std::chrono::milliseconds timeout);

  const std::string& Node() const { return node_; }
  Side GetSide() const { return side_; }
  // "source node 'old' (host=... dbname=...)": for messages, never with the password.
  std::string Describe() const;
  // The server's major version times 10000 (150004 → 15).
  int ServerVersion() const { return PQserverVersion(conn_); }

  // An Error of this connection's kind: "<side> node '<node>': <what>".
  Error Failure(std::string_view what, std::string sqlstate = {}) const;
  // The last Exec("COMMIT") ended without the server's answer (connection
  // lost): the transaction may or may not have committed. Cleared by Connect().
  bool CommitInDoubt() const { return commit_in_doubt_; }
  // The server process serving this connection (pg_stat_activity.pid); 0 when closed.
  int BackendPid() const { return conn_ ? PQbackendPID(conn_) : 0; }

 private:
  enum class Wait { kRead, kWrite };
  Awaitable<void> WaitSocket(Wait wait);
  // After io_timeout_ of silence: throws unless the server is still working on our request.
  Awaitable<void> CheckAlive(std::chrono::steady_clock::duration silent);
  Awaitable<void> Flush();
  Awaitable<void> ConsumeUntilReady();
  Awaitable<Result> CollectResults(std::string_view sql);
  Awaitable<Result> StartCopy(std::string_view sql, ExecStatusType expected);
  void SendQuery(std::string_view sql);
  // Reads what has arrived, without waiting; true while the query sent runs.
  bool Busy();
  // This COPY's rows into `held` while `to` is Busy; true when the COPY ended.
  Awaitable<bool> HoldCopyRows(Connection& to, std::string& held, CopyStats& stats);
  Awaitable<void> StreamCopy(Connection& to, CopyStats& stats, CopyStats* live);
  Awaitable<void> PutCopyData(const char* data, int length);
  Awaitable<void> EndCopyIn(const char* error_message);
  Error ResultFailure(const Result& result, std::string_view sql) const;
  void AttachSocket();

  boost::asio::any_io_executor executor_;
  std::string node_;
  Side side_;
  Dsn dsn_;
  std::chrono::seconds connect_timeout_;
  std::chrono::seconds io_timeout_;
  bool is_probe_ = false;
  bool commit_in_doubt_ = false;  // a CheckAlive connection: silence fails it at once
  PGconn* conn_ = nullptr;
  boost::asio::posix::stream_descriptor socket_;
};

}  // namespace pgtandem::pg
