// NodeRegistry: the scheduler's view of its nodes, in memory, with every change written through
// to SQLite (db::NodeStore) before it is visible.
//
// Single-threaded: owned and used by the scheduler's event loop. Heartbeats touch memory only;
// their times reach the database in batches (FlushHeartbeats), while registrations, liveness
// changes and drains are written as they happen, each with its event row.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "db/node_store.h"
#include "proto/breakeven.pb.h"
#include "scheduler/node_state.h"
#include "scheduler/scheduler_metrics.h"

namespace breakeven::scheduler {

// Identifies one connection to the scheduler; 0 means "none".
using SessionId = uint64_t;

struct AgentHello {
  std::string boot_id;
  std::string version;
  std::string address;  // peer address of the connection
};

struct Registration {
  uint64_t node_id = 0;
  bool restarted = false;  // known name, new boot id
  v1::NodeState state = v1::NODE_STATE_UP;
  SessionId superseded = 0;  // an older connection of the same node, to be closed
};

class NodeRegistry {
 public:
  NodeRegistry(db::NodeStore& store, const Clock& clock, LivenessConfig config);

  // Loads the nodes from the database. Each one's silence is counted from now, so agents have
  // the full down_after period to re-register after a scheduler restart.
  Status Load();

  // A node agent registers on connection `session`. Refused (kAlreadyExists) when another live
  // agent with a different boot id holds the name; kInvalidArgument for an empty name.
  Result<Registration> Register(const v1::RegisterNode& request, const AgentHello& hello,
                                SessionId session);

  // Records a heartbeat of `node_id` arriving on `session`. kNotFound for an id never issued;
  // kPermissionDenied when the id belongs to another connection. Returns the node's state.
  Result<v1::NodeState> Heartbeat(uint64_t node_id, SessionId session);

  // The connection carrying node_id ended. Liveness is left to the silence timers.
  void Disconnected(uint64_t node_id, SessionId session);

  Result<v1::NodeInfo> Drain(const std::string& name, const std::string& reason);
  Result<v1::NodeInfo> Resume(const std::string& name);

  // Applies the silence thresholds to every node; persists and logs each change. Returns how
  // many nodes changed liveness.
  Result<int> Sweep();

  // Writes the heartbeat times gathered since the last flush, at most `max_rows` of them,
  // continuing round-robin (by node id) where the previous call stopped. Called every tick with
  // a small bound, a large fleet's heartbeat times reach the database in a rolling pass instead
  // of one long transaction that would stall the event loop. Without a bound: all of them.
  Status FlushHeartbeats(size_t max_rows = SIZE_MAX);

  std::vector<v1::NodeInfo> List() const;

  // Runs holding devices on the node (DRAINING until it reaches 0).
  void SetActiveRuns(uint64_t node_id, int runs);
  // The node's live connection, 0 when none.
  SessionId SessionOf(uint64_t node_id) const;
  // The node's name, or "node <id>" for an id never issued.
  std::string NameOf(uint64_t node_id) const;
  Result<std::vector<v1::Event>> Events(const std::string& node_name, int limit);

  // The node's connection address ("10.0.0.7:53122"), empty while it has none.
  std::string PeerAddressOf(uint64_t node_id) const;
  // Nodes by the state `breakeven nodes` shows, for /metrics.
  std::map<v1::NodeState, int> CountByState() const;
  // Times this registry's database writes (node_register, node_liveness, node_drain,
  // heartbeat_flush); by default they are not timed.
  void set_db_writes(DbWriteTimer timer) { db_writes_ = timer; }

  size_t size() const { return nodes_.size(); }
  const LivenessConfig& config() const { return config_; }
  const Clock& clock() const { return clock_; }

 private:
  struct Entry {
    db::NodeRow row;
    SteadyTime last_heard;  // steady clock of the last heartbeat or registration
    SessionId session = 0;  // the live connection, 0 when none
    int active_runs = 0;    // runs holding devices on the node (set by the run manager)
    bool heartbeat_dirty = false;
  };

  Entry* Find(const std::string& name);
  v1::NodeInfo Info(const Entry& e) const;
  v1::NodeState StateOf(const Entry& e) const;
  Status SetLiveness(Entry& e, v1::NodeState liveness, const std::string& why);

  db::NodeStore& store_;
  const Clock& clock_;
  LivenessConfig config_;
  std::map<std::string, std::unique_ptr<Entry>> nodes_;  // by name, for stable listing order
  std::map<uint64_t, Entry*> by_id_;                     // ordered, for the round-robin flush
  uint64_t flush_cursor_ = 0;                            // first id the next flush looks at
  DbWriteTimer db_writes_;
};

}  // namespace breakeven::scheduler
