// A plain HTTP/1.1 client on a raw socket: how tests scrape the daemon's /metrics.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace pgtandem::test {

struct HttpResponse {
  int status = 0;
  std::string headers;  // the status line and header lines, as received
  std::string body;
};

// GET (or another method) http://127.0.0.1:port/path with "Connection: close",
// read to the end. Throws std::runtime_error when nothing listens or the
// answer is not HTTP.
HttpResponse HttpRequest(int port, std::string_view method, std::string_view path,
                         std::chrono::milliseconds timeout = std::chrono::seconds(10));

// The value of the sample `name{labels}` (labels exactly as rendered, e.g.
// R"(sync="app",target="t0")"), or nullopt when the exposition lacks it.
std::optional<double> MetricValue(const std::string& exposition, std::string_view name, std::string_view labels);

}  // namespace pgtandem::test
