// RunSupervisor: the workers of the run attempts assigned to this node.
//
// For each assignment it starts one breakeven-worker per rank (an argument vector, no shell;
// the cluster token travels in the environment, not on the command line), then watches them
// from a thread of its own: rank 0 prints each finished load point as one JSON line on stdout,
// which becomes a RunEvent, and the address its /metrics listens on, which heartbeats then carry
// (v1::RunRef.metrics_address); when every rank has exited cleanly the attempt succeeded; when one
// fails, the others are stopped (SIGTERM, then SIGKILL) and the attempt failed with that rank's
// last words. KillRun stops an attempt the same way.
//
// Every rank's stdout and stderr are kept in <work_dir>/run-<id>-<attempt>/ for a person to
// read. Events go to `emit` (called from supervisor threads; the agent queues them for the
// scheduler).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/status.h"
#include "proto/breakeven.pb.h"

namespace breakeven::node {

struct SupervisorOptions {
  std::string worker_binary;  // path of breakeven-worker
  std::string scheduler;      // HOST:PORT the workers reach for the rendezvous
  std::string token;          // cluster token, handed to workers in $BREAKEVEN_TOKEN
  std::string work_dir;       // per-attempt log directories go here
  std::chrono::milliseconds poll{100};
  std::chrono::milliseconds kill_grace{5000};  // SIGTERM -> SIGKILL
  // Rank 0 serves its live metrics on this host, on a port it picks (--metrics-listen HOST:0).
  std::string metrics_host = "127.0.0.1";
};

class RunSupervisor {
 public:
  using Emit = std::function<void(v1::RunEvent)>;

  RunSupervisor(SupervisorOptions options, Emit emit);
  ~RunSupervisor();  // stops every attempt's workers

  // Starts the attempt's workers; `host` is the address ranks listen on for peers on other
  // hosts. Emits `started`, then points, then `succeeded` or `failed`. An assignment for an
  // attempt already running here is ignored.
  void Assign(const v1::RunAssignment& assignment, const std::string& host);
  void Kill(uint64_t run_id, uint32_t attempt, const std::string& reason);

  // Attempts whose workers are still here (listed in heartbeats), with rank 0's metrics address
  // once it has reported one.
  std::vector<v1::RunRef> Running() const;
  // Worker processes of the attempts still here (for the node's /metrics).
  int WorkersRunning() const;

  // The argument vector of one rank (exposed for tests).
  static std::vector<std::string> WorkerArgv(const SupervisorOptions& options,
                                             const v1::RunAssignment& a, uint32_t rank,
                                             const std::string& host,
                                             const std::string& report_path);

  // CUDA_VISIBLE_DEVICES for a worker on the device the agent knows as `ordinal`. The agent's own
  // ordinals count only the devices its environment lets it see (`parent`, its own
  // CUDA_VISIBLE_DEVICES: indexes or UUIDs), so ordinal i is the i-th entry there, not physical
  // device i. Without a parent list the ordinal is the physical index.
  static std::string VisibleDevice(uint32_t ordinal, std::string_view parent);

 private:
  struct Attempt;
  void Watch(std::shared_ptr<Attempt> attempt);
  void Reap();  // joins the threads of attempts that have finished

  SupervisorOptions options_;
  Emit emit_;
  mutable std::mutex mu_;
  std::map<std::pair<uint64_t, uint32_t>, std::shared_ptr<Attempt>> attempts_;
};

}  // namespace breakeven::node
