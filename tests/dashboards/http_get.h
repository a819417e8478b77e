// A blocking HTTP/1.0 GET on loopback, enough to talk to a test's own Prometheus server: HTTP/1.0
// keeps the server from answering in chunks, so the body is the bytes after the header.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/status.h"

namespace breakeven::testing {

struct LoopbackReply {
  int status = 0;
  std::string body;
};

// GET http://127.0.0.1:PORT/TARGET; the whole exchange within `timeout`.
Result<LoopbackReply> LoopbackGet(int port, const std::string& target,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Percent-encoding of a query-string value (RFC 3986 unreserved characters kept).
std::string UrlEncode(std::string_view value);

}  // namespace breakeven::testing
