// RunManager: benchmark matrices from submission to stored results.
//
// A submitted matrix (scheduler/matrix.h) expands into runs; each run is placed as a gang
// (scheduler/placement.h), assigned to the nodes holding its ranks, and followed through its
// lifecycle:
//
//   PENDING --placed--> STARTING --every node started its workers--> RUNNING
//   RUNNING --every node's workers exited cleanly--> SUCCEEDED
//   any live state --a node reports failure, goes DOWN, stops listing the run in its heartbeat,
//                    or a deadline passes--> the attempt fails: PENDING again while attempts
//                    remain (devices released, a fresh rendezvous group), else FAILED
//   any non-final state --cancel--> CANCELLED (workers killed)
//
// PLACED is what a dry run reports for a run that would start now. Every transition is written
// to SQLite before it is acted on. After a scheduler restart, PENDING runs are placed again and
// live attempts wait for their nodes to list them in a heartbeat (then they continue) or fail
// after the down threshold. Devices are released when the node confirms the workers are gone
// (its heartbeat stops listing the attempt), the node goes DOWN, or a grace period passes.
//
// Single-threaded: owned by the scheduler's event loop.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "bench/load_plan.h"
#include "common/clock.h"
#include "common/status.h"
#include "db/run_store.h"
#include "db/sqlite.h"
#include "proto/breakeven.pb.h"
#include "scheduler/cron.h"
#include "scheduler/placement.h"
#include "scheduler/registry.h"
#include "scheduler/rendezvous.h"
#include "scheduler/scheduler_metrics.h"
#include "scheduler/worker_discovery.h"

namespace breakeven::scheduler {

struct RunConfig {
  Millis start_timeout{120000};      // assignment sent -> every node reports its workers started
  Millis release_grace{30000};       // an ended attempt's devices, if the node never confirms
  Millis orphan_timeout{30000};      // after a restart: a live attempt's nodes must list it
  double run_timeout_factor = 3;     // a run may take this many times its planned load time...
  Millis run_timeout_slack{600000};  // ...plus this (model loading, draining)
};

class RunManager {
 public:
  // Sends a frame to the node's current connection; false when it has none.
  using SendToNode = std::function<bool(uint64_t node_id, const v1::Envelope& frame)>;

  RunManager(db::Database& db, db::RunStore& store, NodeRegistry& registry,
             RendezvousStore& rendezvous, const Clock& clock, RunConfig config, SendToNode send);

  // Loads scheduled matrices and unfinished runs (see the header comment for what happens to
  // each).
  Status Load();

  // Validates and stores a matrix with its first batch of runs (one transaction), or, for a dry
  // run, returns the runs with where they would be placed now.
  Result<v1::SubmitMatrixReply> Submit(const v1::SubmitMatrixRequest& request);
  Result<v1::RunInfo> Cancel(uint64_t run_id);

  // Fires due schedules, places pending runs, enforces deadlines. Called about once a second.
  void Tick();

  // From node connections.
  Status OnRunEvent(uint64_t node_id, const v1::RunEvent& event);
  void OnHeartbeat(uint64_t node_id, const v1::Heartbeat& heartbeat);

  // Runs placed on a node and not yet released (for DRAINING vs DRAINED).
  int ActiveRunsOn(uint64_t node_id) const;

  // For /metrics: runs by state (live ones as held here, finished ones counted since Load), and
  // the placement queue.
  std::map<v1::RunState, int64_t> CountByState() const;
  struct QueueStats {
    int64_t depth = 0;              // runs waiting for placement
    double oldest_age_seconds = 0;  // how long the oldest of them has waited; 0 when none
  };
  QueueStats Queue() const;
  // For /sd/workers: the rank-0 worker metrics address of every live attempt whose node has
  // reported one, made reachable (worker_discovery.h).
  std::vector<WorkerTarget> WorkerTargets() const;
  // Times this manager's database writes and counts placement attempts; by default neither.
  void set_metrics(DbWriteTimer db_writes, metrics::Counter* placed, metrics::Counter* waiting) {
    db_writes_ = db_writes;
    placed_ = placed;
    waiting_ = waiting;
  }
  size_t active() const { return runs_.size(); }
  const Clock& clock() const { return clock_; }

 private:
  struct Hold {
    uint64_t run_id = 0;
    uint32_t attempt = 0;
    bool ended = false;
    SteadyTime ended_at{};
  };
  struct Active {
    db::RunRow row;
    bench::RunLoad load;
    int planned_points = 1;
    std::optional<Placement> placement;  // while STARTING or RUNNING
    std::set<uint64_t> started;          // nodes whose workers are up
    std::set<uint64_t> finished;         // nodes whose workers exited cleanly
    SteadyTime deadline{};               // of the current phase
    bool orphan = false;                 // loaded after a restart, not yet confirmed by a node
    std::string last_failure;            // "attempt 1 failed: ...", kept in the PENDING reason
    int64_t waiting_since_unix_ms = 0;   // when it last became PENDING; 0: since it was created
    // Node id -> the rank-0 worker's metrics address there, as its heartbeats list it.
    std::map<uint64_t, std::string> metrics_addresses;
  };
  struct Scheduled {
    db::MatrixRow row;
    CronSchedule schedule;
  };

  // Matrix -> rows, validated; `batch` numbers the firing.
  Result<std::vector<db::RunRow>> ExpandRuns(std::string_view yaml, std::string_view source,
                                             int64_t batch, std::string* name,
                                             std::optional<std::string>* schedule) const;
  PlacementRequest RequestFor(const db::RunRow& row) const;
  std::vector<NodeCapacity> Capacity() const;
  void PlacePending();
  Status StartAttempt(Active& run, const Placement& placement);
  void FailAttempt(Active& run, const std::string& why, uint64_t node_id = 0);
  void Succeed(Active& run);
  void EndAttempt(Active& run);  // kills nothing: releases holds and the rendezvous group
  void Kill(const Active& run, const std::string& why);
  void FireSchedules();
  void CheckDeadlines();
  void Note(const db::RunRow& run, std::optional<uint64_t> node, const std::string& kind,
            const std::string& detail);
  Active* Find(uint64_t run_id);
  // Counts a run that reached a final state (for CountByState).
  void Finished(v1::RunState state) { ++finished_[state]; }

  db::Database& db_;
  db::RunStore& store_;
  NodeRegistry& registry_;
  RendezvousStore& rendezvous_;
  const Clock& clock_;
  RunConfig config_;
  SendToNode send_;

  std::map<uint64_t, Active> runs_;  // unfinished runs, by id (oldest first)
  std::map<int64_t, Scheduled> schedules_;
  // node id -> device index -> hold
  std::map<uint64_t, std::map<uint32_t, Hold>> holds_;
  std::map<v1::RunState, int64_t> finished_;  // runs in each final state
  DbWriteTimer db_writes_;
  metrics::Counter* placed_ = nullptr;
  metrics::Counter* waiting_ = nullptr;
};

// "sweep: sync, throughput, 4 rates x 10s", for tables.
std::string DescribeLoad(const bench::LoadPlan& plan);

}  // namespace breakeven::scheduler
