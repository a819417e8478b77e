// Session: one connection to the scheduler, from Hello to close.
//
// The protocol per connection: the first frame must be Hello within hello_timeout; the token
// decides access (none: refused; cluster token: join and read; admin token: also change). Then
// a node agent sends RegisterNode once, then Heartbeats and RunEvents (each RunEvent is
// acknowledged); a worker uses the rendezvous store; an admin client sends requests. Anything
// else, or a frame that breaks the framing rules, is answered with an Error and the connection
// is closed. Nothing a session does can stop another one.
#pragma once

#include <memory>
#include <string>

#include "common/auth.h"
#include "common/connection.h"
#include "scheduler/registry.h"

namespace breakeven::scheduler {

class Server;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Server& server, std::shared_ptr<FramedConnection> conn, SessionId id);

  awaitable<void> Run();
  void Close() { conn_->Close(); }
  bool Send(const v1::Envelope& frame) { return conn_->Send(frame); }

 private:
  // Each returns false when the connection must close.
  bool Handshake(const v1::Envelope& first);
  bool HandleNodeFrame(const v1::Envelope& frame);
  bool HandleAdminFrame(const v1::Envelope& frame);
  bool HandleWorkerFrame(const v1::Envelope& frame);

  // Logs, counts, sends an Error frame and closes.
  void Refuse(const std::string& reason, v1::ErrorCode code, const std::string& message,
              uint64_t request_id = 0);
  // Refuses a frame that broke the framing rules (too large, or not a valid frame).
  void RefuseFrame(const Status& framing_error);
  std::string Describe() const;

  Server& server_;
  std::shared_ptr<FramedConnection> conn_;
  SessionId id_;
  v1::Role role_ = v1::ROLE_UNSPECIFIED;
  Access access_ = Access::kNone;
  AgentHello hello_;
  uint64_t node_id_ = 0;  // set once a node registers
  std::string node_name_;
};

}  // namespace breakeven::scheduler
