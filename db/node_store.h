// NodeStore: the nodes, devices and events tables, through prepared statements that live as
// long as the store. Every change that a person would call "an event" is written in the same
// transaction as its event row, so history and state never disagree.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "db/sqlite.h"
#include "proto/breakeven.pb.h"

namespace breakeven::db {

struct NodeRow {
  int64_t id = 0;  // 0 until first saved
  std::string name;
  std::string hostname;
  std::string version;
  std::string boot_id;
  std::string address;
  v1::NodeState liveness = v1::NODE_STATE_UP;  // UP, SUSPECT or DOWN
  int64_t liveness_since_unix_ms = 0;
  std::optional<std::string> drain_reason;
  std::optional<int64_t> drained_at_unix_ms;
  int64_t registered_at_unix_ms = 0;
  int64_t last_registered_at_unix_ms = 0;
  std::optional<int64_t> last_heartbeat_unix_ms;
  int64_t restarts = 0;
  std::vector<v1::Device> devices;
};

struct EventRow {
  int64_t at_unix_ms = 0;
  std::optional<int64_t> node_id;
  std::string kind;
  std::string detail;
};

class NodeStore {
 public:
  // Prepares every statement; the schema must be migrated already.
  static Result<std::unique_ptr<NodeStore>> Create(Database& db);

  Result<std::vector<NodeRow>> LoadAll();

  // Inserts (id == 0; sets row->id) or updates the node with its devices, and records `event`.
  Status SaveRegistration(NodeRow* row, const EventRow& event);
  // Saves liveness (and its since-time) or the drain fields of an existing node, plus `event`.
  Status SaveLiveness(const NodeRow& row, const EventRow& event);
  Status SaveDrain(const NodeRow& row, const EventRow& event);
  // Writes last-heartbeat times for many nodes in one transaction: (node id, unix ms).
  Status FlushHeartbeats(const std::vector<std::pair<int64_t, int64_t>>& beats);

  Status AddEvent(const EventRow& event);
  // Newest first. node_id empty = all nodes.
  Result<std::vector<v1::Event>> ListEvents(std::optional<int64_t> node_id, int limit);

 private:
  explicit NodeStore(Database& db) : db_(db) {}
  Status InsertEvent(const EventRow& event);

  Database& db_;
  Statement insert_node_;
  Statement update_node_;
  Statement delete_devices_;
  Statement insert_device_;
  Statement update_liveness_;
  Statement update_drain_;
  Statement update_heartbeat_;
  Statement insert_event_;
  Statement list_events_all_;
  Statement list_events_node_;
};

}  // namespace breakeven::db
