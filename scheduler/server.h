// The scheduler's network side: one TCP listener for protobuf frames (nodes, workers and admin
// clients), one HTTP listener (/healthz, /metrics, /sd/workers), the liveness sweep, the heartbeat
// flush and the run manager's tick.
//
// Everything runs on one io_context thread, so the registry and the sessions need no locks: a
// heartbeat is a map lookup and a queued reply, and 10,000 nodes at 1 Hz are a small fraction of
// one core (bench/RESULTS.md).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <unordered_map>

#include "common/asio.h"
#include "common/auth.h"
#include "common/connection.h"
#include "common/http_server.h"
#include "db/run_store.h"
#include "db/sqlite.h"
#include "scheduler/config.h"
#include "scheduler/registry.h"
#include "scheduler/rendezvous.h"
#include "scheduler/run_manager.h"
#include "scheduler/scheduler_metrics.h"

namespace breakeven::scheduler {

class Session;

// The benchmark side, owned by main: runs, their rendezvous store, and the database queries read.
struct RunServices {
  RunManager* runs = nullptr;
  RendezvousStore* rendezvous = nullptr;
  db::RunStore* store = nullptr;
  db::Database* db = nullptr;
};

class Server {
 public:
  Server(asio::io_context& io, SchedulerConfig config, TokenChecker tokens, NodeRegistry& registry,
         RunServices runs);
  ~Server();

  // Binds both listeners and starts the timers. Errors name the flag.
  Status Start();
  // Stops accepting, closes every connection and flushes heartbeat times.
  void Stop();

  const HostPort& bound_listen() const { return bound_listen_; }
  const HostPort& bound_http() const { return bound_http_; }

  // Used by sessions.
  const SchedulerConfig& config() const { return config_; }
  const TokenChecker& tokens() const { return tokens_; }
  NodeRegistry& registry() { return registry_; }
  const RunServices& runs() const { return runs_; }
  // Queues a frame on the node's current connection; false when it has none.
  bool SendToNode(uint64_t node_id, const v1::Envelope& frame);
  // The /metrics families; sessions count frames, refusals and heartbeat times here.
  SchedulerMetrics& metrics() { return metrics_; }
  const std::string& boot_id() const { return boot_id_; }
  void CloseSession(SessionId id);
  void SessionEnded(SessionId id);

 private:
  awaitable<void> Accept();
  awaitable<void> SweepLoop();
  awaitable<void> FlushLoop();
  awaitable<void> RunLoop();

  asio::io_context& io_;
  SchedulerConfig config_;
  TokenChecker tokens_;
  NodeRegistry& registry_;
  RunServices runs_;
  tcp::acceptor acceptor_;
  HttpServer http_;
  asio::steady_timer sweep_timer_;
  asio::steady_timer flush_timer_;
  asio::steady_timer run_timer_;
  HostPort bound_listen_;
  HostPort bound_http_;
  bool running_ = false;
  std::string boot_id_;

  SessionId next_session_id_ = 1;
  std::unordered_map<SessionId, std::weak_ptr<Session>> sessions_;
  SchedulerMetrics metrics_;
};

}  // namespace breakeven::scheduler
