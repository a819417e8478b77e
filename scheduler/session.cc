#include "scheduler/session.h"

#include <spdlog/spdlog.h>

#include "common/names.h"
#include "common/version.h"
#include "scheduler/admin.h"
#include "scheduler/run_admin.h"
#include "scheduler/server.h"

namespace breakeven::scheduler {

namespace {

// A worker waits on the store during rendezvous without sending anything.
constexpr Millis kWorkerIdleTimeout{600000};
constexpr Millis kMaxStoreWait{600000};

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
  server_.metrics().frames_refused.WithLabels({RefusalReason(reason)}).Inc();
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
    if (first.ok()) server_.metrics().FrameCounter(*first, role_).Inc();
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

  Millis read_timeout = role_ == v1::ROLE_NODE     ? cfg.NodeReadTimeout()
                        : role_ == v1::ROLE_WORKER ? kWorkerIdleTimeout
                                                   : cfg.admin_idle_timeout;
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
    server_.metrics().FrameCounter(*frame, role_).Inc();
    bool keep = role_ == v1::ROLE_NODE     ? HandleNodeFrame(*frame)
                : role_ == v1::ROLE_WORKER ? HandleWorkerFrame(*frame)
                                           : HandleAdminFrame(*frame);
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
  if (role_ != v1::ROLE_NODE && role_ != v1::ROLE_ADMIN && role_ != v1::ROLE_WORKER) {
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
        Refuse("already_registered", v1::ERROR_CODE_PROTOCOL,
               "this connection has already registered");
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
      const auto start = std::chrono::steady_clock::now();
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
      if (server_.runs().runs) server_.runs().runs->OnHeartbeat(node_id_, hb);
      server_.metrics().heartbeat_duration_seconds.Observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      return true;
    }
    case v1::Envelope::kRunEvent: {
      if (node_id_ == 0) {
        Refuse("before_register", v1::ERROR_CODE_PROTOCOL, "run event before RegisterNode");
        return false;
      }
      if (!server_.runs().runs) {
        conn_->Send(MakeError(v1::ERROR_CODE_FAILED_PRECONDITION,
                              "this scheduler runs no benchmarks", frame.request_id()));
        return true;
      }
      // A report the scheduler cannot use is answered with an error; the node and its other
      // runs go on.
      Status s = server_.runs().runs->OnRunEvent(node_id_, frame.run_event());
      if (!s.ok()) {
        spdlog::warn("run event from {} refused: {}", Describe(), s.message());
        conn_->Send(MakeError(ToWireCode(s.code()), s.message(), frame.request_id()));
        return true;
      }
      v1::Envelope ack;
      ack.set_request_id(frame.request_id());
      ack.mutable_ack();
      conn_->Send(ack);
      return true;
    }
    default:
      Refuse("protocol", v1::ERROR_CODE_PROTOCOL,
             fmt::format("a node connection cannot send {}", BodyName(frame)));
      return false;
  }
}

bool Session::HandleWorkerFrame(const v1::Envelope& frame) {
  RendezvousStore* store = server_.runs().rendezvous;
  if (!store || (!frame.has_store_set() && !frame.has_store_get())) {
    Refuse("protocol", v1::ERROR_CODE_PROTOCOL,
           fmt::format("a worker connection cannot send {}", BodyName(frame)));
    return false;
  }
  const uint64_t request_id = frame.request_id();
  if (frame.has_store_set()) {
    Status s = store->Set(frame.store_set().key(), frame.store_set().value());
    if (!s.ok()) {
      conn_->Send(MakeError(ToWireCode(s.code()), s.message(), request_id));
    } else {
      v1::Envelope ack;
      ack.set_request_id(request_id);
      ack.mutable_store_ack();
      conn_->Send(ack);
    }
    return true;
  }
  Millis wait(std::min<int64_t>(frame.store_get().timeout_ms(), kMaxStoreWait.count()));
  std::weak_ptr<FramedConnection> weak = conn_;
  store->Get(frame.store_get().key(), wait, [weak, request_id](Result<std::string> value) {
    auto conn = weak.lock();
    if (!conn || !conn->is_open()) return;
    if (!value.ok()) {
      conn->Send(
          MakeError(ToWireCode(value.status().code()), value.status().message(), request_id));
      return;
    }
    v1::Envelope reply;
    reply.set_request_id(request_id);
    reply.mutable_store_value()->set_value(std::move(*value));
    conn->Send(reply);
  });
  return true;
}

bool Session::HandleAdminFrame(const v1::Envelope& frame) {
  const RunServices& runs = server_.runs();
  if (IsRunAdminRequest(frame) && runs.runs) {
    v1::Envelope reply = HandleRunAdminRequest(*runs.runs, *runs.store, *runs.db, frame, access_);
    if (reply.has_error()) {
      spdlog::info("admin request {} from {} refused: {}", BodyName(frame), Describe(),
                   reply.error().message());
    }
    conn_->Send(reply);
    return true;
  }
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
