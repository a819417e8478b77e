#include "scheduler/server.h"

#include <spdlog/spdlog.h>

#include "common/names.h"
#include "common/system.h"
#include "db/run_store.h"
#include "scheduler/session.h"
#include "scheduler/worker_discovery.h"

namespace breakeven::scheduler {

Server::Server(asio::io_context& io, SchedulerConfig config, TokenChecker tokens,
               NodeRegistry& registry, RunServices runs)
    : io_(io),
      config_(std::move(config)),
      tokens_(std::move(tokens)),
      registry_(registry),
      runs_(runs),
      acceptor_(io),
      http_(io),
      sweep_timer_(io),
      flush_timer_(io),
      run_timer_(io),
      boot_id_(NewBootId()) {
  DbWriteTimer db_writes(&metrics_.db_write_seconds);
  registry_.set_db_writes(db_writes);
  if (runs_.runs) {
    runs_.runs->set_metrics(db_writes, &metrics_.placements.WithLabels({"placed"}),
                            &metrics_.placements.WithLabels({"waiting"}));
  }
  // The scrape runs on the event loop (the HTTP server shares it), so reading the registry and
  // the run manager needs no lock; each is a pass over what is in memory.
  metrics_.registry.OnScrape([this] {
    std::map<v1::NodeState, int> nodes = registry_.CountByState();
    for (v1::NodeState s : {v1::NODE_STATE_UP, v1::NODE_STATE_SUSPECT, v1::NODE_STATE_DOWN,
                            v1::NODE_STATE_DRAINING, v1::NODE_STATE_DRAINED}) {
      metrics_.nodes.WithLabels({std::string(NodeStateName(s))}).Set(nodes[s]);
    }
    if (!runs_.runs) return;
    std::map<v1::RunState, int64_t> runs = runs_.runs->CountByState();
    for (v1::RunState s :
         {v1::RUN_STATE_PENDING, v1::RUN_STATE_STARTING, v1::RUN_STATE_RUNNING,
          v1::RUN_STATE_SUCCEEDED, v1::RUN_STATE_FAILED, v1::RUN_STATE_CANCELLED}) {
      metrics_.runs.WithLabels({db::RunStateText(s)}).Set(static_cast<double>(runs[s]));
    }
    RunManager::QueueStats queue = runs_.runs->Queue();
    metrics_.queue_depth.Set(static_cast<double>(queue.depth));
    metrics_.queue_oldest_age_seconds.Set(queue.oldest_age_seconds);
  });
}

Server::~Server() {
  // The registry and the run manager outlive the server; they must not time into its metrics.
  registry_.set_db_writes(DbWriteTimer());
  if (runs_.runs) runs_.runs->set_metrics(DbWriteTimer(), nullptr, nullptr);
}

Status Server::Start() {
  BE_ASSIGN_OR_RETURN(acceptor_, OpenAcceptor(io_, config_.listen, "--listen"));
  auto local = acceptor_.local_endpoint();
  bound_listen_ = {local.address().to_string(), local.port()};

  http_.Handle("/healthz", [](const std::string&, const std::string&) {
    return HttpResponse{200, "text/plain; charset=utf-8", "ok\n"};
  });
  http_.Handle("/metrics", [this](const std::string&, const std::string&) {
    return HttpResponse{200, std::string(metrics::kContentType), metrics_.registry.Serialize()};
  });
  http_.Handle("/sd/workers", [this](const std::string&, const std::string&) {
    std::vector<WorkerTarget> targets;
    if (runs_.runs) targets = runs_.runs->WorkerTargets();
    return HttpResponse{200, "application/json", WorkerTargetsJson(targets)};
  });
  BE_ASSIGN_OR_RETURN(bound_http_, http_.Listen(config_.http));

  running_ = true;
  asio::co_spawn(io_, Accept(), asio::detached);
  asio::co_spawn(io_, SweepLoop(), asio::detached);
  asio::co_spawn(io_, FlushLoop(), asio::detached);
  if (runs_.runs) asio::co_spawn(io_, RunLoop(), asio::detached);
  spdlog::info("listening: frames on {}, http on {}", bound_listen_.ToString(),
               bound_http_.ToString());
  return Status::Ok();
}

void Server::Stop() {
  if (!running_) return;
  running_ = false;
  boost::system::error_code ec;
  acceptor_.close(ec);
  http_.Stop();
  sweep_timer_.cancel();
  flush_timer_.cancel();
  run_timer_.cancel();
  for (auto& [id, weak] : sessions_) {
    if (auto s = weak.lock()) s->Close();
  }
  Status flushed = registry_.FlushHeartbeats();
  if (!flushed.ok()) spdlog::error("flushing heartbeat times: {}", flushed.ToString());
}

void Server::CloseSession(SessionId id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  if (auto s = it->second.lock()) {
    spdlog::info("closing superseded connection (session {})", id);
    s->Close();
  }
}

void Server::SessionEnded(SessionId id) { sessions_.erase(id); }

bool Server::SendToNode(uint64_t node_id, const v1::Envelope& frame) {
  SessionId id = registry_.SessionOf(node_id);
  auto it = sessions_.find(id);
  if (id == 0 || it == sessions_.end()) return false;
  auto session = it->second.lock();
  return session && session->Send(frame);
}

awaitable<void> Server::Accept() {
  ConnectionLimits limits;
  limits.max_frame_bytes = config_.max_frame_bytes;
  while (running_) {
    boost::system::error_code ec;
    tcp::socket socket = co_await acceptor_.async_accept(asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !running_) break;
      // EMFILE and friends: log, pause briefly so a full fd table does not spin the loop.
      spdlog::error("accept failed: {}", ec.message());
      asio::steady_timer pause(io_, std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::redirect_error(use_awaitable, ec));
      continue;
    }
    auto conn = std::make_shared<FramedConnection>(std::move(socket), limits);
    conn->Start();
    SessionId id = next_session_id_++;
    auto session = std::make_shared<Session>(*this, conn, id);
    sessions_[id] = session;
    asio::co_spawn(io_, session->Run(), [this, id, session](std::exception_ptr e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          spdlog::error("session {} failed: {}", id, ex.what());
        }
        session->Close();
      }
      SessionEnded(id);
    });
  }
}

awaitable<void> Server::SweepLoop() {
  while (running_) {
    sweep_timer_.expires_after(config_.SweepInterval());
    boost::system::error_code ec;
    co_await sweep_timer_.async_wait(asio::redirect_error(use_awaitable, ec));
    if (!running_) break;
    Result<int> swept = registry_.Sweep();
    if (!swept.ok()) spdlog::error("liveness sweep: {}", swept.status().ToString());
  }
}

awaitable<void> Server::FlushLoop() {
  while (running_) {
    flush_timer_.expires_after(config_.heartbeat_flush_interval);
    boost::system::error_code ec;
    co_await flush_timer_.async_wait(asio::redirect_error(use_awaitable, ec));
    if (!running_) break;
    Status s = registry_.FlushHeartbeats(config_.heartbeat_flush_rows);
    if (!s.ok()) spdlog::error("flushing heartbeat times: {}", s.ToString());
  }
}

awaitable<void> Server::RunLoop() {
  while (running_) {
    run_timer_.expires_after(config_.run_tick_interval);
    boost::system::error_code ec;
    co_await run_timer_.async_wait(asio::redirect_error(use_awaitable, ec));
    if (!running_) break;
    runs_.runs->Tick();
  }
}

}  // namespace breakeven::scheduler
