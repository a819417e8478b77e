#include "scheduler/session.h"

#include <spdlog/spdlog.h>

#include "common/names.h"
#include "common/version.h"
#include "scheduler/admin.h"
#include "scheduler/server.h"

namespace breakeven::scheduler {

namespace {

// A short label for a frame's body, for logs.
std::string BodyName(const v1::Envelope& e) {
  const auto* field = v1::Envelope::descriptor()->FindFieldByNumber(e.body_case());
  return field ? field->name() : "nothing";
}

}  // namespace

Session::Session(Server& server, std::shared_ptr<FramedConnection> conn, SessionId id)
    : server_(server), conn_(std::move(conn)), id_(id) {}

std::string Session::Describe() const {
  std::string who = fmt::format("peer={}", conn_->peer());
  if (role_ != v1::ROLE_UNSPECIFIED) who += fmt::format(" role={}", RoleName(role_));
  if (!node_name_.empty()) who += fmt::format(" node={}", node_name_);
  return who;
}

void Session::Refuse(const std::string& reason, v1::ErrorCode code, const std::string& message,
                     uint64_t request_id) {
  server_.refusals().Add(reason);
  spdlog::warn("refused {} reason={}: {}", Describe(), reason, message);
  conn_->SendErrorAndClose(code, message, request_id);
}

void Session::RefuseFrame(const Status& framing_error) {
  bool oversized = framing_error.code() == StatusCode::kResourceExhausted;
  Refuse(oversized ? "oversized_frame" : "malformed_frame",
         oversized ? v1::ERROR_CODE_RESOURCE_EXHAUSTED : v1::ERROR_CODE_PROTOCOL,
         framing_error.message());
}

awaitable<void> Session::Run() {
  const SchedulerConfig& cfg = server_.config();
  {
    Result<v1::Envelope> first = co_await conn_->Read(cfg.hello_timeout);
    if (!first.ok()) {
      const Status& s = first.status();
      if (s.code() == StatusCode::kDeadlineExceeded) {
        Refuse("hello_timeout", v1::ERROR_CODE_PROTOCOL,
               fmt::format("no Hello within {} ms", cfg.hello_timeout.count()));
      } else if (s.code() == StatusCode::kUnavailable) {
        spdlog::debug("connection closed before Hello: {}", Describe());
      } else {
        RefuseFrame(s);
      }
      co_return;
    }
    if (!Handshake(*first)) co_return;
  }

  Millis read_timeout = role_ == v1::ROLE_NODE ? cfg.NodeReadTimeout() : cfg.admin_idle_timeout;
  while (conn_->is_open()) {
    Result<v1::Envelope> frame = co_await conn_->Read(read_timeout);
    if (!frame.ok()) {
      const Status& s = frame.status();
      if (s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kResourceExhausted) {
        RefuseFrame(s);
      } else if (s.code() == StatusCode::kDeadlineExceeded) {
        Refuse("idle_timeout", v1::ERROR_CODE_UNAVAILABLE,
               fmt::format("connection idle for {} ms", read_timeout.count()));
      } else {
        spdlog::debug("connection ended {}: {}", Describe(), s.message());
      }
      break;
    }
    bool keep = role_ == v1::ROLE_NODE ? HandleNodeFrame(*frame) : HandleAdminFrame(*frame);
    if (!keep) break;
  }
  if (node_id_ != 0) server_.registry().Disconnected(node_id_, id_);
  // A refusal is still flushing its Error frame; anything else ends here.
  if (!conn_->closing()) conn_->Close();
}

bool Session::Handshake(const v1::Envelope& first) {
  if (!first.has_hello()) {
    Refuse("before_hello", v1::ERROR_CODE_PROTOCOL,
           fmt::format("the first frame must be Hello, got {}", BodyName(first)));
    return false;
  }
  const v1::Hello& hello = first.hello();
  role_ = hello.role();
  if (hello.protocol_version() != kProtocolVersion) {
    Refuse(
        "protocol_version", v1::ERROR_CODE_FAILED_PRECONDITION,
        fmt::format("protocol version {} is not supported (this scheduler speaks {}; version {})",
                    hello.protocol_version(), kProtocolVersion, kVersion));
    return false;
  }
  access_ = server_.tokens().Check(hello.token());
  if (access_ == Access::kNone) {
    Refuse("bad_token", v1::ERROR_CODE_UNAUTHENTICATED, "token rejected");
    return false;
  }
  if (role_ != v1::ROLE_NODE && role_ != v1::ROLE_ADMIN) {
    Refuse("bad_role", v1::ERROR_CODE_FAILED_PRECONDITION,
           fmt::format("role {} is not served by this scheduler", RoleName(role_)));
    return false;
  }
  hello_ = {hello.boot_id(), hello.version(), conn_->peer()};
  v1::Envelope ack;
  ack.set_request_id(first.request_id());
  ack.mutable_hello_ack()->set_scheduler_version(kVersion);
  ack.mutable_hello_ack()->set_scheduler_boot_id(server_.boot_id());
  ack.mutable_hello_ack()->set_admin(access_ == Access::kAdmin);
  conn_->Send(ack);
  spdlog::debug("hello {} admin={}", Describe(), access_ == Access::kAdmin);
  return true;
}

bool Session::HandleNodeFrame(const v1::Envelope& frame) {
  NodeRegistry& registry = server_.registry();
  switch (frame.body_case()) {
    case v1::Envelope::kRegisterNode: {
      if (node_id_ != 0) {
        Refuse("protocol", v1::ERROR_CODE_PROTOCOL, "this connection has already registered");
        return false;
      }
      Result<Registration> reg = registry.Register(frame.register_node(), hello_, id_);
      if (!reg.ok()) {
        Refuse("register_refused", ToWireCode(reg.status().code()), reg.status().message(),
               frame.request_id());
        return false;
      }
      if (reg->superseded != 0) server_.CloseSession(reg->superseded);
      node_id_ = reg->node_id;
      node_name_ = frame.register_node().name();
      v1::Envelope ack;
      ack.set_request_id(frame.request_id());
      auto* a = ack.mutable_register_ack();
      a->set_node_id(reg->node_id);
      a->set_heartbeat_interval_ms(
          static_cast<uint32_t>(registry.config().heartbeat_interval.count()));
      a->set_scheduler_silent_ms(static_cast<uint32_t>(registry.config().down_after.count()));
      a->set_restarted(reg->restarted);
      a->set_state(reg->state);
      conn_->Send(ack);
      return true;
    }
    case v1::Envelope::kHeartbeat: {
      const v1::Heartbeat& hb = frame.heartbeat();
      if (node_id_ == 0) {
        Refuse("unregistered_heartbeat", v1::ERROR_CODE_PROTOCOL,
               "heartbeat before RegisterNode on this connection");
        return false;
      }
      Result<v1::NodeState> state = registry.Heartbeat(hb.node_id(), id_);
      if (!state.ok()) {
        StatusCode code = state.status().code();
        bool unknown = code == StatusCode::kNotFound || code == StatusCode::kPermissionDenied;
        Refuse(unknown ? "unknown_node" : "internal", ToWireCode(code), state.status().message(),
               frame.request_id());
        return false;
      }
      v1::Envelope ack;
      ack.set_request_id(frame.request_id());
      ack.mutable_heartbeat_ack()->set_seq(hb.seq());
      ack.mutable_heartbeat_ack()->set_state(*state);
      conn_->Send(ack);
      return true;
    }
    default:
      Refuse("protocol", v1::ERROR_CODE_PROTOCOL,
             fmt::format("a node connection cannot send {}", BodyName(frame)));
      return false;
  }
}

bool Session::HandleAdminFrame(const v1::Envelope& frame) {
  if (!IsAdminRequest(frame)) {
    Refuse("protocol", v1::ERROR_CODE_PROTOCOL,
           fmt::format("an admin connection cannot send {}", BodyName(frame)));
    return false;
  }
  v1::Envelope reply =
      HandleAdminRequest(server_.registry(), frame, access_, server_.config().default_event_limit);
  if (reply.has_error()) {
    spdlog::info("admin request {} from {} refused: {}", BodyName(frame), Describe(),
                 reply.error().message());
  }
  conn_->Send(reply);
  return true;
}

}  // namespace breakeven::scheduler
