// A small HTTP/1.1 server (Boost.Beast, C++20 coroutines) for /healthz, /metrics and read-only
// JSON. Every connection has a read timeout and a request-size limit; a bad request closes only
// that connection. Runs on the caller's single-threaded io_context.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "common/asio.h"
#include "common/endpoint.h"
#include "common/status.h"

namespace breakeven {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// Called with the request target's path (query removed) and the raw query string.
using HttpHandler = std::function<HttpResponse(const std::string& path, const std::string& query)>;

class HttpServer {
 public:
  explicit HttpServer(asio::io_context& io);

  // Registers a GET handler for an exact path. Unknown paths answer 404.
  void Handle(std::string path, HttpHandler handler);

  // Binds and starts accepting. Returns the bound address (port 0 picks a free one).
  Result<HostPort> Listen(const HostPort& address);

  void Stop();

 private:
  awaitable<void> Accept();
  awaitable<void> Serve(tcp::socket socket);

  asio::io_context& io_;
  tcp::acceptor acceptor_;
  std::map<std::string, HttpHandler> handlers_;
};

// Opens a listening socket on `address` (resolving names), with SO_REUSEADDR. `what` names the
// flag in errors ("--http: cannot listen on 0.0.0.0:80: Permission denied").
Result<tcp::acceptor> OpenAcceptor(asio::io_context& io, const HostPort& address,
                                   std::string_view what);

}  // namespace breakeven
