#include "common/client.h"

#include <optional>

#include "common/system.h"
#include "common/version.h"

namespace breakeven {

SchedulerClient::SchedulerClient(const ClientOptions& options) : options_(options) {}

void SchedulerClient::Abort() {
  resolver_.cancel();
  boost::system::error_code ignored;
  socket_.close(ignored);
  if (conn_) conn_->Close();
}

SchedulerClient::~SchedulerClient() {
  Abort();
  io_.restart();
  io_.run();  // lets the writer and watchdog coroutines finish
}

namespace {

template <typename T>
awaitable<void> StoreResult(awaitable<Result<T>> op, std::optional<Result<T>>* out) {
  out->emplace(co_await std::move(op));
}

}  // namespace

template <typename T>
Result<T> SchedulerClient::RunWithDeadline(awaitable<Result<T>> op) {
  std::optional<Result<T>> out;
  asio::co_spawn(io_, StoreResult(std::move(op), &out), [&out](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      out.emplace(Internal("{}", ex.what()));
    }
  });
  auto deadline = std::chrono::steady_clock::now() + options_.timeout;
  io_.restart();
  while (!out && std::chrono::steady_clock::now() < deadline) {
    io_.run_one_until(deadline);
  }
  if (!out) {
    Abort();
    while (!out) io_.run_one();
    return DeadlineExceeded("no answer from the scheduler at {} within {} ms",
                            options_.scheduler.ToString(), options_.timeout.count());
  }
  return std::move(*out);
}

Result<std::unique_ptr<SchedulerClient>> SchedulerClient::Connect(const ClientOptions& options) {
  std::unique_ptr<SchedulerClient> client(new SchedulerClient(options));
  SchedulerClient* c = client.get();
  std::string where = options.scheduler.ToString();

  auto connect = [c, where]() -> awaitable<Result<bool>> {
    boost::system::error_code ec;
    auto endpoints = co_await c->resolver_.async_resolve(c->options_.scheduler.host,
                                                         std::to_string(c->options_.scheduler.port),
                                                         asio::redirect_error(use_awaitable, ec));
    if (ec)
      co_return Unavailable("cannot resolve the scheduler address {}: {}", where, ec.message());
    co_await asio::async_connect(c->socket_, endpoints, asio::redirect_error(use_awaitable, ec));
    if (ec) co_return Unavailable("cannot reach the scheduler at {}: {}", where, ec.message());
    c->conn_ = std::make_shared<FramedConnection>(std::move(c->socket_), c->options_.limits);
    c->conn_->Start();
    co_return true;
  };
  Result<bool> connected = c->RunWithDeadline<bool>(connect());
  if (!connected.ok()) {
    if (connected.status().code() == StatusCode::kDeadlineExceeded) {
      return Unavailable("cannot reach the scheduler at {}: no answer within {} ms", where,
                         options.timeout.count());
    }
    return connected.status();
  }

  v1::Envelope hello;
  auto* h = hello.mutable_hello();
  h->set_role(options.role);
  h->set_token(options.token);
  h->set_protocol_version(kProtocolVersion);
  h->set_version(kVersion);
  h->set_boot_id(NewBootId());
  BE_ASSIGN_OR_RETURN(v1::Envelope ack, client->Call(std::move(hello)));
  if (!ack.has_hello_ack()) {
    return Internal("scheduler at {} answered Hello with an unexpected message", where);
  }
  client->hello_ack_ = ack.hello_ack();
  return client;
}

Result<v1::Envelope> SchedulerClient::Call(v1::Envelope request) {
  if (!conn_ || !conn_->is_open()) {
    return Unavailable("connection to the scheduler at {} is closed",
                       options_.scheduler.ToString());
  }
  uint64_t id = next_request_id_++;
  request.set_request_id(id);
  auto call = [this, id, request = std::move(request)]() -> awaitable<Result<v1::Envelope>> {
    if (!conn_->Send(request)) co_return Unavailable("connection closed before sending");
    for (;;) {
      Result<v1::Envelope> reply = co_await conn_->Read(options_.timeout);
      if (!reply.ok()) co_return reply.status();
      if (reply->has_error() && (reply->request_id() == id || reply->request_id() == 0)) {
        co_return Status(FromWireCode(reply->error().code()), reply->error().message());
      }
      if (reply->request_id() == id) co_return std::move(reply).value();
      // Anything else (a push the client did not ask for) is skipped.
    }
  };
  Result<v1::Envelope> out = RunWithDeadline<v1::Envelope>(call());
  if (!out.ok() && out.status().code() == StatusCode::kUnavailable) {
    return Unavailable("scheduler at {}: {}", options_.scheduler.ToString(),
                       out.status().message());
  }
  return out;
}

}  // namespace breakeven
