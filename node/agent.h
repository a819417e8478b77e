// NodeAgent: keeps one node registered with the scheduler.
//
// Two threads, on purpose. The control thread runs only the connection: connect, Hello,
// RegisterNode, then a heartbeat from its own fixed-rate timer and a reader for the scheduler's
// replies. Everything else the node does (calibration, supervising workers) goes to the work
// executor, on another thread, so no job can delay a heartbeat.
//
// When the connection fails or the scheduler falls silent, the agent reconnects with jittered
// exponential backoff and registers again with the same boot id, which the scheduler reads as a
// reconnect rather than a restart.
//
// Runs: RunAssignment and KillRun go to the RunSupervisor on the work thread. What it reports
// (started, load points, the outcome) waits in an outbox until the scheduler acknowledges it,
// and is sent again after a reconnect; heartbeats list every attempt that still has workers or
// unacknowledged events, so the scheduler can tell a running attempt from a lost one.
#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/asio.h"
#include "common/clock.h"
#include "common/connection.h"
#include "common/endpoint.h"
#include "node/run_supervisor.h"
#include "proto/breakeven.pb.h"

namespace breakeven::node {

struct AgentConfig {
  HostPort scheduler;
  std::string token;
  std::string name;  // identity at the scheduler; defaults to the host name in main
  std::string hostname;
  Millis connect_timeout{3000};
  Millis reconnect_initial{100};
  Millis reconnect_max{2000};
  ConnectionLimits limits;
  // Where workers come from and keep their logs (worker_binary empty: runs are refused).
  SupervisorOptions supervisor;
  // Address this host's workers listen on for peers on other hosts; empty: the local address of
  // the connection to the scheduler (the interface that reaches the cluster).
  std::string worker_host;
};

class NodeAgent {
 public:
  NodeAgent(AgentConfig config, std::vector<v1::Device> devices);
  ~NodeAgent();

  // Starts the control and work threads. Call once.
  void Start();
  // Closes the connection and joins both threads. Idempotent.
  void Stop();

  // Where slow node work runs: never on the heartbeat's thread.
  asio::any_io_executor work_executor() { return work_io_.get_executor(); }

  const std::string& boot_id() const { return boot_id_; }

  // Counters, readable from any thread.
  uint64_t heartbeats_sent() const { return heartbeats_sent_.load(); }
  uint64_t heartbeats_acked() const { return heartbeats_acked_.load(); }
  uint64_t registrations() const { return registrations_.load(); }
  uint64_t node_id() const { return node_id_.load(); }
  size_t unacknowledged_events() const;
  // Worker processes of the run attempts on this node (0 without a worker binary). Valid until
  // Stop.
  int workers_running() const { return supervisor_ ? supervisor_->WorkersRunning() : 0; }

 private:
  awaitable<void> ControlLoop();
  // One connection's life: returns why it ended.
  awaitable<Status> Connection();
  awaitable<Result<std::shared_ptr<FramedConnection>>> Connect();
  awaitable<void> HeartbeatLoop(std::shared_ptr<FramedConnection> conn, uint64_t node_id,
                                Millis interval);
  // Outbox: queued from supervisor threads, sent from the control thread.
  void Enqueue(v1::RunEvent event);
  void FlushOutbox();  // control thread: sends what has not been sent on this connection
  void Acknowledge(uint64_t request_id);
  std::vector<v1::RunRef> RunningRefs() const;
  void HandleRunFrame(const v1::Envelope& frame);

  AgentConfig config_;
  std::vector<v1::Device> devices_;
  std::string boot_id_;

  asio::io_context control_io_{1};
  asio::io_context work_io_{1};
  std::thread control_thread_;
  std::thread work_thread_;
  std::atomic<bool> stopping_{false};
  std::shared_ptr<FramedConnection> current_;  // control thread only
  std::unique_ptr<asio::steady_timer> retry_timer_;

  std::atomic<uint64_t> heartbeats_sent_{0};
  std::atomic<uint64_t> heartbeats_acked_{0};
  std::atomic<uint64_t> registrations_{0};
  std::atomic<uint64_t> node_id_{0};

  struct Outgoing {
    uint64_t request_id = 0;
    v1::RunEvent event;
    bool sent = false;  // on the current connection
  };
  mutable std::mutex outbox_mu_;
  std::deque<Outgoing> outbox_;
  uint64_t next_event_id_ = 1000;  // request ids of run events (the handshake uses 1 and 2)
  bool registered_ = false;        // control thread: the current connection has registered
  std::string local_address_;      // control thread: of the current connection
  std::unique_ptr<RunSupervisor> supervisor_;
};

}  // namespace breakeven::node
