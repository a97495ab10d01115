// Small coroutine helpers: sleeping, two coroutines at once, and running one to completion from plain code.
#pragma once

#include <chrono>
#include <exception>
#include <functional>
#include <optional>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace pgtandem {

inline boost::asio::awaitable<void> Sleep(std::chrono::milliseconds duration) {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, duration);
  co_await timer.async_wait(boost::asio::use_awaitable);
}

// Runs `a` and `b` at once on the caller's executor (single-threaded, or a
// strand) and returns both results. When either fails, the other is still
// awaited before the first failure is rethrown: both may use the caller's frame.
template <typename A, typename B>
boost::asio::awaitable<std::pair<A, B>> BothOf(boost::asio::awaitable<A> a, boost::asio::awaitable<B> b) {
  auto executor = co_await boost::asio::this_coro::executor;
  std::optional<A> first;
  std::optional<B> second;
  std::exception_ptr failure;
  int running = 2;
  boost::asio::steady_timer all_done(executor, std::chrono::steady_clock::time_point::max());
  auto finished = [&](std::exception_ptr e) {
    if (e && !failure) failure = e;
    if (--running == 0) all_done.cancel();
  };
  boost::asio::co_spawn(executor, std::move(a), [&](std::exception_ptr e, A value) {
    if (!e) first = std::move(value);
    finished(e);
  });
  boost::asio::co_spawn(executor, std::move(b), [&](std::exception_ptr e, B value) {
    if (!e) second = std::move(value);
    finished(e);
  });
  // Both may already have finished, and a cancel with no wait pending is lost.
  if (running > 0) {
    boost::system::error_code ec;
    co_await all_done.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
  }
  if (failure) std::rethrow_exception(failure);
  co_return std::make_pair(std::move(*first), std::move(*second));
}

// Runs `make(executor)` on a private io_context until it finishes; rethrows its exception.
// The CLI commands are coroutines too, so they share every line of the daemon's database code.
template <typename T, typename Make>
T RunBlocking(Make make) {
  boost::asio::io_context io;
  std::optional<T> value;
  std::exception_ptr failure;
  boost::asio::co_spawn(io, make(io.get_executor()), [&](std::exception_ptr e, T result) {
    failure = e;
    if (!e) value = std::move(result);
  });
  io.run();
  if (failure) std::rethrow_exception(failure);
  return std::move(*value);
}

}  // namespace pgtandem
