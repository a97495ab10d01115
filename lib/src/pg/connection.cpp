// libpq in non-blocking mode on an Asio descriptor: every wait yields the thread.
#include "pgtandem/pg/connection.hpp"

#include <algorithm>
#include <memory>

#include <poll.h>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "pgtandem/log.hpp"
#include "pgtandem/sync_lock.hpp"

namespace pgtandem::pg {
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

// Above this many bytes queued in libpq, a COPY stream waits for the target to
// drain; it bounds memory whatever the speed difference between the nodes.
constexpr int kCopyFlushBytes = 256 * 1024;
// CopyToAfter holds at most this many bytes of rows while the target is busy:
// about what the source reads of pgbench_accounts while the target deletes
// 100,000 keys. Past it the source waits, so memory stays bounded.
constexpr size_t kCopyHoldBytes = 8 * 1024 * 1024;
// How often CopyToAfter looks at the target while the source sends nothing.
constexpr auto kHoldPoll = std::chrono::milliseconds(5);
// While a write is blocked, look at the input this often: the server may have
// sent an error and stopped reading, and only reading it unblocks us.
constexpr auto kWriteStallCheck = std::chrono::milliseconds(200);

// Rows are counted as COPY's data messages. A binary COPY's last message
// holds its trailer, alone or, when no row came, after its header (which
// otherwise travels in front of the first row): it is not a row.
void UncountBinaryTrailer(const Result& copy_out, Connection::CopyStats& stats, Connection::CopyStats* live) {
  if (!PQbinaryTuples(copy_out.Raw())) return;
  --stats.rows;
  if (live) --live->rows;
}

std::string TrimmedMessage(const char* text) {
  std::string message = text ? text : "";
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  return message;
}

}  // namespace

Connection::Connection(asio::any_io_executor executor, std::string node, Side side, Dsn dsn,
                       std::chrono::seconds connect_timeout, std::chrono::seconds io_timeout)
    : executor_(executor),
      node_(std::move(node)),
      side_(side),
      dsn_(std::move(dsn)),
      connect_timeout_(connect_timeout),
      io_timeout_(io_timeout),
      socket_(executor) {}

Connection::~Connection() { Close(); }

static const char* SideName(Side side) { return side == Side::kSource ? "source" : "target"; }

std::string Connection::Describe() const {
  return fmt::format("{} node '{}' ({})", SideName(side_), node_, dsn_.Describe());
}

Error Connection::Failure(std::string_view what, std::string sqlstate) const {
  return Error(side_ == Side::kSource ? ErrorKind::kSource : ErrorKind::kTarget,
               fmt::format("{} node '{}': {}", SideName(side_), node_, what),
               std::move(sqlstate));
}

bool Connection::Connected() const { return conn_ && PQstatus(conn_) == CONNECTION_OK; }

void Connection::Close() {
  if (socket_.is_open()) socket_.release();
  if (conn_) PQfinish(conn_);
  conn_ = nullptr;
}

void Connection::AttachSocket() {
  int fd = PQsocket(conn_);
  if (socket_.is_open() && socket_.native_handle() == fd) return;
  if (socket_.is_open()) socket_.release();
  if (fd >= 0) socket_.assign(fd);
}

// Asio's epoll reactor is edge-triggered: bytes that arrived while no wait
// was pending, and that libpq left in the kernel buffer, raise no new edge,
// and a wait for them would never end. So look first, and wait only when the
// socket is not ready now; anything arriving after this look is a new edge.
static bool ReadyNow(int fd, asio::posix::descriptor_base::wait_type type) {
  pollfd p{fd, static_cast<short>(type == asio::posix::descriptor_base::wait_read ? POLLIN : POLLOUT), 0};
  return ::poll(&p, 1, 0) > 0;
}

// Waits until the socket is ready or `deadline` passes; false on timeout.
// The timer's handler can already be queued when the socket wait ends first,
// and timer.cancel() no longer stops it: `pending` keeps that late handler
// from cancelling the caller's next wait on this socket. Without it a drain
// loop of zero timeouts can feed itself on one thread forever.
static Awaitable<bool> WaitUntil(asio::posix::stream_descriptor& socket, asio::posix::descriptor_base::wait_type type,
                                 Clock::time_point deadline) {
  if (ReadyNow(socket.native_handle(), type)) co_return true;
  if (Clock::now() >= deadline) co_return false;
  struct WaitState {
    bool pending = true;
    bool timed_out = false;
  };
  auto state = std::make_shared<WaitState>();
  asio::steady_timer timer(socket.get_executor(), deadline);
  timer.async_wait([state, &socket](boost::system::error_code ec) {
    if (ec || !state->pending) return;
    state->timed_out = true;
    socket.cancel();
  });
  boost::system::error_code ec;
  co_await socket.async_wait(type, asio::redirect_error(asio::use_awaitable, ec));
  state->pending = false;
  timer.cancel();
  co_return !state->timed_out;
}

Awaitable<void> Connection::Connect() {
  Close();
  commit_in_doubt_ = false;
  // Keepalives find a peer that vanished (host down, connection reset by a
  // firewall) while the link is idle, and tcp_user_timeout one that stops
  // acknowledging what we send. Neither sees a stall behind a proxy or a NAT
  // whose kernel still answers: CheckAlive covers that. Listed before
  // "dbname", so that a DSN setting any of them wins.
  std::string user_timeout_ms = std::to_string(io_timeout_.count() * 1000);
  const char* keys[] = {"keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count",
                        "tcp_user_timeout", "dbname", "fallback_application_name", nullptr};
  const char* values[] = {"1", "10", "5", "3", user_timeout_ms.c_str(), dsn_.ConnInfo().c_str(), "pgtandem", nullptr};
  conn_ = PQconnectStartParams(keys, values, 1);
  if (!conn_) throw Failure("cannot allocate a connection");
  auto deadline = Clock::now() + connect_timeout_;
  PostgresPollingStatusType poll = PGRES_POLLING_WRITING;
  while (poll != PGRES_POLLING_OK) {
    if (poll == PGRES_POLLING_FAILED || PQstatus(conn_) == CONNECTION_BAD) {
      std::string reason = TrimmedMessage(PQerrorMessage(conn_));
      Close();
      throw Failure(fmt::format("cannot connect: {}", reason));
    }
    AttachSocket();
    auto type = poll == PGRES_POLLING_READING ? asio::posix::descriptor_base::wait_read
                                              : asio::posix::descriptor_base::wait_write;
    bool ready = co_await WaitUntil(socket_, type, deadline);
    if (!ready) {
      Close();
      throw Failure(fmt::format("cannot connect: no answer within {} s (daemon.connect_timeout_s)",
                                connect_timeout_.count()));
    }
    poll = PQconnectPoll(conn_);
  }
  AttachSocket();
  // Server NOTICEs ("already exists, skipping") are for debugging, not for the DBA's terminal.
  PQsetNoticeProcessor(
      conn_, [](void* arg, const char* message) {
        const auto* self = static_cast<const Connection*>(arg);
        if (!LogEnabled(LogLevel::kDebug)) return;
        LogContext context{"", self->node_, SideName(self->side_), ""};
        WriteLogLine(LogLevel::kDebug, context, TrimmedMessage(message));
      },
      this);
  if (PQsetnonblocking(conn_, 1) != 0) throw Failure("cannot switch the connection to non-blocking mode");
  if (side_ == Side::kSource && !is_probe_) co_await Exec(SourceSessionSetupSql());
}

Awaitable<void> Connection::WaitSocket(Wait wait) {
  if (!conn_) throw Failure("connection closed");
  auto type = wait == Wait::kRead ? asio::posix::descriptor_base::wait_read : asio::posix::descriptor_base::wait_write;
  if (io_timeout_.count() == 0) {
    if (ReadyNow(socket_.native_handle(), type)) co_return;
    boost::system::error_code ec;
    co_await socket_.async_wait(type, asio::redirect_error(asio::use_awaitable, ec));
    if (ec && ec != asio::error::operation_aborted) throw Failure(fmt::format("socket error: {}", ec.message()));
    co_return;
  }
  auto started = Clock::now();
  for (;;) {
    bool ready = co_await WaitUntil(socket_, type, Clock::now() + io_timeout_);
    if (ready) co_return;
    co_await CheckAlive(Clock::now() - started);
  }
}

// Silence alone proves nothing: a long DELETE, a lock wait or a commit
// waiting for a synchronous standby send no byte for minutes. So ask the
// server from a second connection what our server process is doing. The
// link is dead when that connection cannot be made (the node or the network
// is gone), or when our process is not working on a request (it never got
// ours, or it waits to read from or write to us: the bytes are stuck between).
Awaitable<void> Connection::CheckAlive(Clock::duration silent) {
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(silent).count();
  if (is_probe_) throw Failure(fmt::format("no answer within {} s", seconds));
  std::string pid = std::to_string(BackendPid());
  Connection probe(executor_, node_, side_, dsn_, connect_timeout_, connect_timeout_);
  probe.is_probe_ = true;
  std::string probe_failure;
  Result row;
  try {
    co_await probe.Connect();
    row = co_await probe.Exec(
        "SELECT state, coalesce(wait_event, '') FROM pg_catalog.pg_stat_activity WHERE pid = $1", pid);
  } catch (const Error& e) {
    probe_failure = e.what();
  }
  if (!probe_failure.empty()) {
    throw Failure(fmt::format("connection lost: nothing moved for {} s (daemon.io_timeout_s), and a second connection "
                              "to check on it failed: {}", seconds, probe_failure));
  }
  std::string state = row.Rows() > 0 ? std::string(row.Get(0, 0)) : "gone";
  std::string event = row.Rows() > 0 ? std::string(row.Get(0, 1)) : "";
  if (state != "active" || event == "ClientRead" || event == "ClientWrite") {
    throw Failure(fmt::format("connection lost: nothing moved for {} s (daemon.io_timeout_s) while its server process "
                              "{} is {}{}: the network between holds our bytes; reconnecting", seconds, pid, state,
                              event.empty() ? "" : " (" + event + ")"));
  }
  if (LogEnabled(LogLevel::kDebug)) {
    LogContext context{"", node_, SideName(side_), ""};
    WriteLogLine(LogLevel::kDebug, context,
                 fmt::format("no byte for {} s, but server process {} is still working on our request ({}); waiting on",
                             seconds, pid, event.empty() ? "running" : event));
  }
}

Awaitable<void> Connection::Flush() {
  auto silent_since = Clock::now();
  for (;;) {
    int status = PQflush(conn_);
    if (status == 0) co_return;
    if (status < 0) throw Failure(fmt::format("connection lost: {}", TrimmedMessage(PQerrorMessage(conn_))));
    bool writable = co_await WaitUntil(socket_, asio::posix::descriptor_base::wait_write, Clock::now() + kWriteStallCheck);
    if (writable) {
      silent_since = Clock::now();
      continue;
    }
    if (!PQconsumeInput(conn_)) throw Failure(fmt::format("connection lost: {}", TrimmedMessage(PQerrorMessage(conn_))));
    auto silent = Clock::now() - silent_since;
    if (io_timeout_.count() > 0 && silent >= io_timeout_) {
      co_await CheckAlive(silent);
      silent_since = Clock::now();
    }
  }
}

Awaitable<void> Connection::ConsumeUntilReady() {
  while (PQisBusy(conn_)) {
    co_await WaitSocket(Wait::kRead);
    if (!PQconsumeInput(conn_)) {
      throw Failure(fmt::format("connection lost: {}", TrimmedMessage(PQerrorMessage(conn_))));
    }
  }
}

Error Connection::ResultFailure(const Result& result, std::string_view sql) const {
  const PGresult* raw = result.Raw();
  auto field = [raw](int code) {
    const char* value = PQresultErrorField(raw, code);
    return std::string(value ? value : "");
  };
  std::string message = field(PG_DIAG_MESSAGE_PRIMARY);
  if (message.empty()) message = TrimmedMessage(PQresultErrorMessage(raw));
  std::string sqlstate = field(PG_DIAG_SQLSTATE);
  if (!sqlstate.empty()) message += fmt::format(" (SQLSTATE {})", sqlstate);
  if (auto detail = field(PG_DIAG_MESSAGE_DETAIL); !detail.empty()) message += "; " + detail;
  if (auto hint = field(PG_DIAG_MESSAGE_HINT); !hint.empty()) message += "; hint: " + hint;
  if (auto where = field(PG_DIAG_CONTEXT); !where.empty() && LogEnabled(LogLevel::kDebug)) message += "; context: " + where;
  if (LogEnabled(LogLevel::kDebug)) message += fmt::format("; statement: {}", sql.substr(0, 300));
  return Failure(message, sqlstate);
}

Awaitable<Result> Connection::CollectResults(std::string_view sql) {
  Result last;
  std::optional<Error> failure;
  for (;;) {
    co_await ConsumeUntilReady();
    PGresult* raw = PQgetResult(conn_);
    if (!raw) break;
    Result result(raw);
    ExecStatusType status = result.Status();
    if (status == PGRES_COPY_IN || status == PGRES_COPY_OUT) co_return result;
    if (status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE || status == PGRES_NONFATAL_ERROR) {
      if (!failure) failure = ResultFailure(result, sql);
      continue;
    }
    last = std::move(result);
  }
  if (failure) throw *failure;
  co_return last;
}

void Connection::SendQuery(std::string_view sql) {
  if (!conn_) throw Failure("not connected");
  std::string text(sql);
  if (!PQsendQuery(conn_, text.c_str())) {
    throw Failure(fmt::format("cannot send a query: {}", TrimmedMessage(PQerrorMessage(conn_))));
  }
}

bool Connection::Busy() {
  if (!PQconsumeInput(conn_)) throw Failure(fmt::format("connection lost: {}", TrimmedMessage(PQerrorMessage(conn_))));
  return PQisBusy(conn_);
}

Awaitable<Result> Connection::Exec(std::string_view sql) {
  SendQuery(sql);
  if (sql != "COMMIT") {
    co_await Flush();
    co_return co_await CollectResults(sql);
  }
  commit_in_doubt_ = false;
  Result result;
  std::optional<Error> failure;
  try {
    co_await Flush();
    result = co_await CollectResults(sql);
  } catch (const Error& e) {
    failure = e;
  }
  if (!failure) co_return result;
  // The server may have made the commit durable and died (or the network
  // dropped) before its answer reached us: only the node itself can tell.
  const std::string& state = failure->SqlState();
  commit_in_doubt_ = state.empty() || state.starts_with("08") || state.starts_with("57P") ||
                     PQstatus(conn_) == CONNECTION_BAD;
  if (!commit_in_doubt_) throw *failure;
  throw Failure(fmt::format("commit in doubt: the connection ended during COMMIT ({}); whether the transaction "
                            "committed is known only to the node, and is read from it on reconnect", failure->what()),
                state);
}

Awaitable<Result> Connection::ExecParams(std::string_view sql, Params params) {
  if (!conn_) throw Failure("not connected");
  std::string text(sql);
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  if (!PQsendQueryParams(conn_, text.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr,
                         nullptr, 0)) {
    throw Failure(fmt::format("cannot send a query: {}", TrimmedMessage(PQerrorMessage(conn_))));
  }
  co_await Flush();
  co_return co_await CollectResults(sql);
}

Awaitable<Result> Connection::StartCopy(std::string_view sql, ExecStatusType expected) {
  Result result = co_await Exec(sql);
  if (result.Status() != expected) throw Failure(fmt::format("expected COPY to start for: {}", sql.substr(0, 120)));
  co_return result;
}

Awaitable<void> Connection::PutCopyData(const char* data, int length) {
  for (;;) {
    int status = PQputCopyData(conn_, data, length);
    if (status == 1) co_return;
    if (status < 0) throw Failure(fmt::format("COPY failed: {}", TrimmedMessage(PQerrorMessage(conn_))));
    co_await Flush();
  }
}

Awaitable<void> Connection::EndCopyIn(const char* error_message) {
  for (;;) {
    int status = PQputCopyEnd(conn_, error_message);
    if (status == 1) break;
    if (status < 0) throw Failure(fmt::format("COPY failed: {}", TrimmedMessage(PQerrorMessage(conn_))));
    co_await Flush();
  }
  co_await Flush();
  co_await CollectResults("COPY ... FROM STDIN");
}

Awaitable<Connection::CopyStats> Connection::CopyTo(std::string_view copy_out_sql, Connection& to,
                                                    std::string_view copy_in_sql, CopyStats* live) {
  co_await to.StartCopy(copy_in_sql, PGRES_COPY_IN);
  Result copy_out = co_await StartCopy(copy_out_sql, PGRES_COPY_OUT);
  CopyStats stats;
  co_await StreamCopy(to, stats, live);
  UncountBinaryTrailer(copy_out, stats, live);
  co_await CollectResults(copy_out_sql);
  co_await to.EndCopyIn(nullptr);
  co_return stats;
}

Awaitable<Connection::CopyStats> Connection::CopyToAfter(std::string_view to_first_sql, std::string_view copy_out_sql,
                                                         Connection& to, std::string_view copy_in_sql) {
  to.SendQuery(to_first_sql);
  co_await to.Flush();
  Result copy_out = co_await StartCopy(copy_out_sql, PGRES_COPY_OUT);
  CopyStats stats;
  std::string held;
  bool ended = co_await HoldCopyRows(to, held, stats);
  co_await to.CollectResults(to_first_sql);
  co_await to.StartCopy(copy_in_sql, PGRES_COPY_IN);
  for (size_t at = 0; at < held.size(); at += kCopyFlushBytes) {
    int length = static_cast<int>(std::min(held.size() - at, static_cast<size_t>(kCopyFlushBytes)));
    co_await to.PutCopyData(held.data() + at, length);
    co_await to.Flush();
  }
  std::string().swap(held);
  if (!ended) co_await StreamCopy(to, stats, nullptr);
  UncountBinaryTrailer(copy_out, stats, nullptr);
  co_await CollectResults(copy_out_sql);
  co_await to.EndCopyIn(nullptr);
  co_return stats;
}

Awaitable<bool> Connection::HoldCopyRows(Connection& to, std::string& held, CopyStats& stats) {
  auto silent_since = Clock::now();
  // Asking `to` costs a system call: ask once per flush's worth of rows, and whenever the source pauses.
  size_t ask_at = 0;
  for (;;) {
    if (held.size() >= ask_at) {
      if (held.size() >= kCopyHoldBytes || !to.Busy()) co_return false;
      ask_at = held.size() + kCopyFlushBytes;
    }
    char* buffer = nullptr;
    int length = PQgetCopyData(conn_, &buffer, 1);
    if (length > 0) {
      std::unique_ptr<char, decltype(&PQfreemem)> row(buffer, &PQfreemem);
      held.append(buffer, length);
      ++stats.rows;
      stats.bytes += length;
      silent_since = Clock::now();
      continue;
    }
    if (length == -1) co_return true;
    if (length < -1) throw Failure(fmt::format("COPY failed: {}", TrimmedMessage(PQerrorMessage(conn_))));
    if (!to.Busy()) co_return false;
    // A silent source is StreamCopy's to judge, with its liveness checks.
    if (io_timeout_.count() > 0 && Clock::now() - silent_since >= io_timeout_) co_return false;
    bool readable = co_await WaitUntil(socket_, asio::posix::descriptor_base::wait_read, Clock::now() + kHoldPoll);
    if (readable && !PQconsumeInput(conn_)) {
      throw Failure(fmt::format("connection lost: {}", TrimmedMessage(PQerrorMessage(conn_))));
    }
  }
}

Awaitable<void> Connection::StreamCopy(Connection& to, CopyStats& stats, CopyStats* live) {
  int unflushed = 0;
  for (;;) {
    char* buffer = nullptr;
    int length = PQgetCopyData(conn_, &buffer, 1);
    if (length > 0) {
      std::unique_ptr<char, decltype(&PQfreemem)> hold(buffer, &PQfreemem);
      co_await to.PutCopyData(buffer, length);
      ++stats.rows;
      stats.bytes += length;
      if (live) {
        ++live->rows;
        live->bytes += length;
      }
      if ((unflushed += length) >= kCopyFlushBytes) {
        co_await to.Flush();
        unflushed = 0;
      }
    } else if (length == 0) {
      co_await to.Flush();
      unflushed = 0;
      co_await WaitSocket(Wait::kRead);
      if (!PQconsumeInput(conn_)) throw Failure(fmt::format("connection lost: {}", TrimmedMessage(PQerrorMessage(conn_))));
    } else if (length == -1) {
      co_return;
    } else {
      throw Failure(fmt::format("COPY failed: {}", TrimmedMessage(PQerrorMessage(conn_))));
    }
  }
}

Awaitable<std::optional<Notification>> Connection::WaitNotification(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (!PQconsumeInput(conn_)) throw Failure(fmt::format("connection lost: {}", TrimmedMessage(PQerrorMessage(conn_))));
    if (PGnotify* notify = PQnotifies(conn_)) {
      Notification result{notify->relname, notify->extra ? notify->extra : ""};
      PQfreemem(notify);
      co_return result;
    }
    bool readable = co_await WaitUntil(socket_, asio::posix::descriptor_base::wait_read, deadline);
    if (!readable) co_return std::nullopt;
  }
}

}  // namespace pgtandem::pg
