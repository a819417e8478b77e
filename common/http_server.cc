#include "common/http_server.h"

#include <spdlog/spdlog.h>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace breakeven {

namespace beast = boost::beast;
namespace http = beast::http;

namespace {
constexpr auto kHttpReadTimeout = std::chrono::seconds(10);
constexpr size_t kMaxHttpRequestBytes = 64 << 10;
}  // namespace

Result<tcp::acceptor> OpenAcceptor(asio::io_context& io, const HostPort& address,
                                   std::string_view what) {
  boost::system::error_code ec;
  tcp::resolver resolver(io);
  auto results =
      resolver.resolve(address.host, std::to_string(address.port), tcp::resolver::passive, ec);
  if (ec || results.empty()) {
    return InvalidArgument("{}: cannot resolve '{}': {}", what, address.host, ec.message());
  }
  tcp::endpoint endpoint = results.begin()->endpoint();
  tcp::acceptor acceptor(io);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Unavailable("{}: cannot listen on {}: {}", what, address.ToString(), ec.message());
  }
  return acceptor;
}

HttpServer::HttpServer(asio::io_context& io) : io_(io), acceptor_(io) {}

void HttpServer::Handle(std::string path, HttpHandler handler) {
  handlers_[std::move(path)] = std::move(handler);
}

Result<HostPort> HttpServer::Listen(const HostPort& address) {
  BE_ASSIGN_OR_RETURN(acceptor_, OpenAcceptor(io_, address, "--http"));
  auto local = acceptor_.local_endpoint();
  asio::co_spawn(io_, Accept(), asio::detached);
  return HostPort{local.address().to_string(), local.port()};
}

void HttpServer::Stop() {
  boost::system::error_code ec;
  acceptor_.close(ec);
}

awaitable<void> HttpServer::Accept() {
  while (acceptor_.is_open()) {
    boost::system::error_code ec;
    tcp::socket socket = co_await acceptor_.async_accept(asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted) break;
      spdlog::warn("http: accept failed: {}", ec.message());
      continue;
    }
    asio::co_spawn(io_, Serve(std::move(socket)), asio::detached);
  }
}

awaitable<void> HttpServer::Serve(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::empty_body> parser;
    parser.header_limit(kMaxHttpRequestBytes);
    parser.body_limit(0);
    stream.expires_after(kHttpReadTimeout);
    boost::system::error_code ec;
    co_await http::async_read(stream, buffer, parser, asio::redirect_error(use_awaitable, ec));
    if (ec) break;  // closed, timed out or malformed: drop this connection only
    const auto& req = parser.get();

    std::string target(req.target());
    std::string path = target.substr(0, target.find('?'));
    std::string query =
        target.find('?') == std::string::npos ? "" : target.substr(target.find('?') + 1);

    HttpResponse out;
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
      out = {405, "text/plain; charset=utf-8", "only GET is supported\n"};
    } else if (auto it = handlers_.find(path); it != handlers_.end()) {
      try {
        out = it->second(path, query);
      } catch (const std::exception& e) {
        spdlog::error("http: handler for {} failed: {}", path, e.what());
        out = {500, "text/plain; charset=utf-8", "internal error\n"};
      }
    } else {
      out = {404, "text/plain; charset=utf-8", fmt::format("no such path: {}\n", path)};
    }

    http::response<http::string_body> res{static_cast<http::status>(out.status), req.version()};
    res.set(http::field::server, "breakeven");
    res.set(http::field::content_type, out.content_type);
    res.keep_alive(req.keep_alive());
    if (req.method() != http::verb::head) res.body() = std::move(out.body);
    res.prepare_payload();
    stream.expires_after(kHttpReadTimeout);
    co_await http::async_write(stream, res, asio::redirect_error(use_awaitable, ec));
    if (ec || !res.keep_alive()) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

}  // namespace breakeven
