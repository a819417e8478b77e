#include "node/agent.h"

#include <spdlog/spdlog.h>

#include "common/names.h"
#include "common/system.h"
#include "common/version.h"
#include "node/backoff.h"

namespace breakeven::node {

NodeAgent::NodeAgent(AgentConfig config, std::vector<v1::Device> devices)
    : config_(std::move(config)), devices_(std::move(devices)), boot_id_(NewBootId()) {
  if (!config_.supervisor.worker_binary.empty()) {
    SupervisorOptions so = config_.supervisor;
    if (so.scheduler.empty()) so.scheduler = config_.scheduler.ToString();
    if (so.token.empty()) so.token = config_.token;
    supervisor_ =
        std::make_unique<RunSupervisor>(so, [this](v1::RunEvent e) { Enqueue(std::move(e)); });
  }
}

NodeAgent::~NodeAgent() { Stop(); }

size_t NodeAgent::unacknowledged_events() const {
  std::lock_guard lock(outbox_mu_);
  return outbox_.size();
}

void NodeAgent::Enqueue(v1::RunEvent event) {
  {
    std::lock_guard lock(outbox_mu_);
    outbox_.push_back({next_event_id_++, std::move(event), false});
  }
  asio::post(control_io_, [this] { FlushOutbox(); });
}

void NodeAgent::FlushOutbox() {
  if (!current_ || !registered_ || !current_->is_open()) return;
  std::lock_guard lock(outbox_mu_);
  for (Outgoing& o : outbox_) {
    if (o.sent) continue;
    v1::Envelope frame;
    frame.set_request_id(o.request_id);
    *frame.mutable_run_event() = o.event;
    if (!current_->Send(frame)) return;
    o.sent = true;
  }
}

void NodeAgent::Acknowledge(uint64_t request_id) {
  std::lock_guard lock(outbox_mu_);
  for (auto it = outbox_.begin(); it != outbox_.end(); ++it) {
    if (it->request_id == request_id) {
      outbox_.erase(it);
      return;
    }
  }
}

std::vector<v1::RunRef> NodeAgent::RunningRefs() const {
  std::vector<v1::RunRef> refs;
  if (supervisor_) refs = supervisor_->Running();
  std::lock_guard lock(outbox_mu_);
  for (const Outgoing& o : outbox_) {
    bool seen = false;
    for (const v1::RunRef& r : refs) {
      seen |= r.run_id() == o.event.run().run_id() && r.attempt() == o.event.run().attempt();
    }
    if (!seen) refs.push_back(o.event.run());
  }
  return refs;
}

void NodeAgent::HandleRunFrame(const v1::Envelope& frame) {
  if (frame.has_run_assignment()) {
    const v1::RunAssignment& a = frame.run_assignment();
    if (!supervisor_) {
      v1::RunEvent e;
      e.mutable_run()->set_run_id(a.run_id());
      e.mutable_run()->set_attempt(a.attempt());
      e.set_failed("this node agent was started without a worker binary");
      Enqueue(std::move(e));
      return;
    }
    std::string host = config_.worker_host.empty() ? local_address_ : config_.worker_host;
    if (host.empty()) host = "127.0.0.1";
    spdlog::info("assigned run {} attempt {}: {} tp{} ranks {}", a.run_id(), a.attempt(), a.model(),
                 a.tp(), a.ranks_size());
    // Starting processes may take a moment (and stopping them on a failure, seconds): not on
    // the heartbeat's thread.
    asio::post(work_io_, [this, a, host] { supervisor_->Assign(a, host); });
  } else if (frame.has_kill_run()) {
    const v1::KillRun k = frame.kill_run();
    spdlog::info("scheduler stops run {} attempt {}: {}", k.run_id(), k.attempt(), k.reason());
    if (supervisor_) {
      asio::post(work_io_, [this, k] { supervisor_->Kill(k.run_id(), k.attempt(), k.reason()); });
    }
  }
}

void NodeAgent::Start() {
  retry_timer_ = std::make_unique<asio::steady_timer>(control_io_);
  asio::co_spawn(control_io_, ControlLoop(), [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::critical("control loop failed: {}", ex.what());
    }
  });
  control_thread_ = std::thread([this] { control_io_.run(); });
  work_thread_ = std::thread([this] {
    auto guard = asio::make_work_guard(work_io_);
    work_io_.run();
  });
}

void NodeAgent::Stop() {
  if (stopping_.exchange(true)) return;
  asio::post(control_io_, [this] {
    if (current_) current_->Close();
    if (retry_timer_) retry_timer_->cancel();
  });
  if (control_thread_.joinable()) control_thread_.join();
  work_io_.stop();
  if (work_thread_.joinable()) work_thread_.join();
  supervisor_.reset();  // stops the workers of any run still here
}

awaitable<void> NodeAgent::ControlLoop() {
  Backoff backoff(config_.reconnect_initial, config_.reconnect_max,
                  std::hash<std::string>{}(boot_id_));
  while (!stopping_) {
    uint64_t before = registrations_.load();
    Status ended = co_await Connection();
    if (current_) current_->Close();  // whatever ended the connection, release the socket
    current_.reset();
    registered_ = false;
    if (stopping_) break;
    if (registrations_.load() != before) backoff.Reset();  // it worked for a while
    Millis delay = backoff.Next();
    auto level = backoff.attempts() <= 1 ? spdlog::level::warn : spdlog::level::info;
    if (ended.code() == StatusCode::kUnauthenticated ||
        ended.code() == StatusCode::kAlreadyExists ||
        ended.code() == StatusCode::kFailedPrecondition) {
      level = spdlog::level::err;  // an operator must act
    }
    spdlog::log(level, "scheduler {}: {}; retrying in {} ms", config_.scheduler.ToString(),
                ended.message(), delay.count());
    retry_timer_->expires_after(delay);
    boost::system::error_code ec;
    co_await retry_timer_->async_wait(asio::redirect_error(use_awaitable, ec));
  }
}

awaitable<Result<std::shared_ptr<FramedConnection>>> NodeAgent::Connect() {
  auto executor = co_await asio::this_coro::executor;
  tcp::resolver resolver(executor);
  boost::system::error_code ec;
  auto endpoints = co_await resolver.async_resolve(config_.scheduler.host,
                                                   std::to_string(config_.scheduler.port),
                                                   asio::redirect_error(use_awaitable, ec));
  if (ec) co_return Unavailable("cannot resolve: {}", ec.message());

  auto socket = std::make_shared<tcp::socket>(executor);
  asio::steady_timer deadline(executor);
  deadline.expires_after(config_.connect_timeout);
  deadline.async_wait([socket](boost::system::error_code e) {
    if (!e) socket->close();  // abort a connect that takes too long
  });
  co_await asio::async_connect(*socket, endpoints, asio::redirect_error(use_awaitable, ec));
  deadline.cancel();
  if (ec) co_return Unavailable("cannot connect: {}", ec.message());
  boost::system::error_code local_ec;
  auto local = socket->local_endpoint(local_ec);
  local_address_ = local_ec ? "" : local.address().to_string();
  auto conn = std::make_shared<FramedConnection>(std::move(*socket), config_.limits);
  conn->Start();
  co_return conn;
}

awaitable<Status> NodeAgent::Connection() {
  Result<std::shared_ptr<FramedConnection>> connected = co_await Connect();
  if (!connected.ok()) co_return connected.status();
  std::shared_ptr<FramedConnection> conn = *connected;
  current_ = conn;
  if (stopping_) co_return Status::Ok();

  // Replies to the handshake must come within the connect timeout.
  auto expect = [&](v1::Envelope::BodyCase want) -> awaitable<Result<v1::Envelope>> {
    Result<v1::Envelope> reply = co_await conn->Read(config_.connect_timeout);
    if (!reply.ok()) co_return reply.status();
    if (reply->has_error()) {
      co_return Status(FromWireCode(reply->error().code()),
                       fmt::format("refused: {}", reply->error().message()));
    }
    if (reply->body_case() != want) co_return Internal("unexpected reply during registration");
    co_return std::move(reply).value();
  };

  v1::Envelope hello;
  hello.set_request_id(1);
  hello.mutable_hello()->set_role(v1::ROLE_NODE);
  hello.mutable_hello()->set_token(config_.token);
  hello.mutable_hello()->set_protocol_version(kProtocolVersion);
  hello.mutable_hello()->set_version(kVersion);
  hello.mutable_hello()->set_boot_id(boot_id_);
  conn->Send(hello);
  Result<v1::Envelope> hello_ack = co_await expect(v1::Envelope::kHelloAck);
  if (!hello_ack.ok()) co_return hello_ack.status();

  v1::Envelope reg;
  reg.set_request_id(2);
  reg.mutable_register_node()->set_name(config_.name);
  reg.mutable_register_node()->set_hostname(config_.hostname);
  for (const v1::Device& d : devices_) *reg.mutable_register_node()->add_devices() = d;
  conn->Send(reg);
  Result<v1::Envelope> reg_ack = co_await expect(v1::Envelope::kRegisterAck);
  if (!reg_ack.ok()) co_return reg_ack.status();
  const v1::RegisterAck& ack = reg_ack->register_ack();
  node_id_ = ack.node_id();
  registrations_.fetch_add(1);
  spdlog::info("registered with scheduler {} as '{}' (node id {}, state {}{})",
               config_.scheduler.ToString(), config_.name, ack.node_id(),
               NodeStateName(ack.state()),
               ack.restarted() ? ", the scheduler saw this as a restart" : "");

  Millis interval(std::max<uint32_t>(ack.heartbeat_interval_ms(), 10));
  Millis silent_limit(std::max<uint32_t>(ack.scheduler_silent_ms(), 2 * interval.count()));
  // Whatever the previous connection did not get acknowledged goes again, before any heartbeat.
  {
    std::lock_guard lock(outbox_mu_);
    for (Outgoing& o : outbox_) o.sent = false;
  }
  registered_ = true;
  FlushOutbox();
  asio::co_spawn(control_io_, HeartbeatLoop(conn, ack.node_id(), interval), asio::detached);

  for (;;) {
    Result<v1::Envelope> frame = co_await conn->Read(silent_limit);
    if (!frame.ok()) {
      conn->Close();
      registered_ = false;
      if (frame.status().code() == StatusCode::kDeadlineExceeded) {
        co_return Unavailable("scheduler silent for {} ms", silent_limit.count());
      }
      co_return frame.status();
    }
    if (frame->has_heartbeat_ack()) {
      heartbeats_acked_.fetch_add(1);
    } else if (frame->has_ack()) {
      Acknowledge(frame->request_id());
    } else if (frame->has_run_assignment() || frame->has_kill_run()) {
      HandleRunFrame(*frame);
    } else if (frame->has_error() && frame->request_id() >= 1000) {
      // The scheduler could not use a run event; it will not be accepted on a resend either.
      spdlog::warn("scheduler refused a run report: {}", frame->error().message());
      Acknowledge(frame->request_id());
    } else if (frame->has_error()) {
      registered_ = false;
      conn->Close();
      co_return Status(
          FromWireCode(frame->error().code()),
          fmt::format("scheduler closed the connection: {}", frame->error().message()));
    }
  }
}

awaitable<void> NodeAgent::HeartbeatLoop(std::shared_ptr<FramedConnection> conn, uint64_t node_id,
                                         Millis interval) {
  asio::steady_timer timer(control_io_);
  uint64_t seq = 0;
  // A fixed-rate schedule: the next beat is due one interval after the previous one was due,
  // not after it was sent, so the rate does not drift.
  auto next = std::chrono::steady_clock::now() + interval;
  while (conn->is_open() && !stopping_) {
    timer.expires_at(next);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
    if (!conn->is_open() || stopping_) break;
    v1::Envelope beat;
    beat.mutable_heartbeat()->set_node_id(node_id);
    beat.mutable_heartbeat()->set_seq(++seq);
    for (v1::RunRef& r : RunningRefs()) *beat.mutable_heartbeat()->add_running() = std::move(r);
    if (!conn->Send(beat)) break;
    heartbeats_sent_.fetch_add(1);
    next += interval;
    auto now = std::chrono::steady_clock::now();
    if (next < now) next = now + interval;  // skip beats missed while suspended, don't burst
  }
}

}  // namespace breakeven::node
