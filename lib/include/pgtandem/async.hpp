// Small coroutine helpers: sleeping, and running a coroutine to completion from plain code.
#pragma once

#include <chrono>
#include <exception>
#include <functional>
#include <optional>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace pgtandem {

inline boost::asio::awaitable<void> Sleep(std::chrono::milliseconds duration) {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, duration);
  co_await timer.async_wait(boost::asio::use_awaitable);
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
