// SchedulerClient: a blocking request/reply client for tools (the admin CLI, tests).
//
// Connect() opens the connection and completes the Hello handshake; Call() sends one request and
// waits for the reply with the same request id. Every step has a deadline. Not thread-safe.
#pragma once

#include <memory>
#include <string>

#include "common/asio.h"
#include "common/clock.h"
#include "common/connection.h"
#include "common/endpoint.h"
#include "common/status.h"
#include "proto/breakeven.pb.h"

namespace breakeven {

struct ClientOptions {
  HostPort scheduler;
  std::string token;
  v1::Role role = v1::ROLE_ADMIN;
  Millis timeout{5000};  // per step: connect, handshake, each call
  // Replies can be large (every node of a big cluster); the scheduler is trusted more than an
  // anonymous peer, so the client's frame limit is higher than the scheduler's.
  ConnectionLimits limits{.max_frame_bytes = 256 << 20, .max_queued_bytes = 64 << 20};
};

class SchedulerClient {
 public:
  // Errors name the address: "cannot reach the scheduler at 10.0.0.5:7070: Connection refused".
  static Result<std::unique_ptr<SchedulerClient>> Connect(const ClientOptions& options);
  ~SchedulerClient();

  // Sends `request` with a fresh request id and returns the reply. An Error reply is returned as
  // a Status carrying its code and message.
  Result<v1::Envelope> Call(v1::Envelope request);

  // The deadline of each later Call (a call that waits server-side for something needs longer).
  void set_call_timeout(Millis timeout) { options_.timeout = timeout; }

  // Whether the token presented grants changes.
  bool admin() const { return hello_ack_.admin(); }
  const v1::HelloAck& hello_ack() const { return hello_ack_; }

 private:
  explicit SchedulerClient(const ClientOptions& options);

  // Runs the io_context until `op` completes or the deadline passes.
  template <typename T>
  Result<T> RunWithDeadline(awaitable<Result<T>> op);

  // Stops whatever is in flight: resolve, connect or a call.
  void Abort();

  ClientOptions options_;
  asio::io_context io_;
  tcp::resolver resolver_{io_};
  tcp::socket socket_{io_};  // until connected; then owned by conn_
  std::shared_ptr<FramedConnection> conn_;
  v1::HelloAck hello_ack_;
  uint64_t next_request_id_ = 1;
};

}  // namespace breakeven
