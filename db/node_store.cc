#include "db/node_store.h"

#include <map>

#include "common/names.h"

namespace breakeven::db {

namespace {

constexpr const char* kNodeColumns =
    "id, name, hostname, version, boot_id, address, liveness, liveness_since_unix_ms, "
    "drain_reason, drained_at_unix_ms, registered_at_unix_ms, last_registered_at_unix_ms, "
    "last_heartbeat_unix_ms, restarts";

}  // namespace

Result<std::unique_ptr<NodeStore>> NodeStore::Create(Database& db) {
  std::unique_ptr<NodeStore> s(new NodeStore(db));
  BE_ASSIGN_OR_RETURN(s->insert_node_, db.Prepare(R"sql(
      INSERT INTO nodes (name, hostname, version, boot_id, address, liveness,
                         liveness_since_unix_ms, drain_reason, drained_at_unix_ms,
                         registered_at_unix_ms, last_registered_at_unix_ms,
                         last_heartbeat_unix_ms, restarts)
      VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13))sql"));
  BE_ASSIGN_OR_RETURN(s->update_node_, db.Prepare(R"sql(
      UPDATE nodes SET hostname = ?2, version = ?3, boot_id = ?4, address = ?5, liveness = ?6,
                       liveness_since_unix_ms = ?7, last_registered_at_unix_ms = ?8,
                       last_heartbeat_unix_ms = ?9, restarts = ?10
      WHERE id = ?1)sql"));
  BE_ASSIGN_OR_RETURN(s->delete_devices_, db.Prepare("DELETE FROM devices WHERE node_id = ?1"));
  BE_ASSIGN_OR_RETURN(s->insert_device_, db.Prepare(R"sql(
      INSERT INTO devices (node_id, kind, idx, name, uuid, memory_bytes, compute_units,
                           compute_capability, bandwidth_gb_s, matmul_tflops)
      VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10))sql"));
  BE_ASSIGN_OR_RETURN(
      s->update_liveness_,
      db.Prepare("UPDATE nodes SET liveness = ?2, liveness_since_unix_ms = ?3 WHERE id = ?1"));
  BE_ASSIGN_OR_RETURN(
      s->update_drain_,
      db.Prepare("UPDATE nodes SET drain_reason = ?2, drained_at_unix_ms = ?3 WHERE id = ?1"));
  BE_ASSIGN_OR_RETURN(s->update_heartbeat_,
                      db.Prepare("UPDATE nodes SET last_heartbeat_unix_ms = ?2 WHERE id = ?1"));
  BE_ASSIGN_OR_RETURN(
      s->insert_event_,
      db.Prepare("INSERT INTO events (at_unix_ms, node_id, kind, detail) VALUES (?1, ?2, ?3, ?4)"));
  BE_ASSIGN_OR_RETURN(s->list_events_all_, db.Prepare(R"sql(
      SELECT e.id, e.at_unix_ms, coalesce(n.name, ''), e.kind, e.detail
      FROM events e LEFT JOIN nodes n ON n.id = e.node_id
      ORDER BY e.id DESC LIMIT ?1)sql"));
  BE_ASSIGN_OR_RETURN(s->list_events_node_, db.Prepare(R"sql(
      SELECT e.id, e.at_unix_ms, coalesce(n.name, ''), e.kind, e.detail
      FROM events e LEFT JOIN nodes n ON n.id = e.node_id
      WHERE e.node_id = ?2
      ORDER BY e.id DESC LIMIT ?1)sql"));
  return s;
}

Result<std::vector<NodeRow>> NodeStore::LoadAll() {
  std::vector<NodeRow> nodes;
  std::map<int64_t, size_t> by_id;
  BE_ASSIGN_OR_RETURN(Statement q,
                      db_.Prepare(fmt::format("SELECT {} FROM nodes ORDER BY id", kNodeColumns)));
  for (;;) {
    BE_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    NodeRow n;
    n.id = q.Int64(0);
    n.name = q.Text(1);
    n.hostname = q.Text(2);
    n.version = q.Text(3);
    n.boot_id = q.Text(4);
    n.address = q.OptionalText(5).value_or("");
    auto liveness = ParseNodeState(q.Text(6));
    if (!liveness) {
      return DataLoss("database '{}': node '{}' has liveness '{}'", db_.path(), n.name, q.Text(6));
    }
    n.liveness = *liveness;
    n.liveness_since_unix_ms = q.Int64(7);
    n.drain_reason = q.OptionalText(8);
    n.drained_at_unix_ms = q.OptionalInt64(9);
    n.registered_at_unix_ms = q.Int64(10);
    n.last_registered_at_unix_ms = q.Int64(11);
    n.last_heartbeat_unix_ms = q.OptionalInt64(12);
    n.restarts = q.Int64(13);
    by_id[n.id] = nodes.size();
    nodes.push_back(std::move(n));
  }
  BE_ASSIGN_OR_RETURN(Statement d, db_.Prepare(R"sql(
      SELECT node_id, kind, idx, name, uuid, memory_bytes, compute_units, compute_capability,
             bandwidth_gb_s, matmul_tflops
      FROM devices ORDER BY node_id, kind, idx)sql"));
  for (;;) {
    BE_ASSIGN_OR_RETURN(bool row, d.Step());
    if (!row) break;
    auto it = by_id.find(d.Int64(0));
    if (it == by_id.end()) continue;  // unreachable with foreign keys on
    v1::Device dev;
    dev.set_kind(ParseDeviceKind(d.Text(1)).value_or(v1::DEVICE_KIND_UNSPECIFIED));
    dev.set_index(static_cast<uint32_t>(d.Int64(2)));
    dev.set_name(d.Text(3));
    dev.set_uuid(d.OptionalText(4).value_or(""));
    dev.set_memory_bytes(static_cast<uint64_t>(d.Int64(5)));
    dev.set_compute_units(static_cast<uint32_t>(d.Int64(6)));
    dev.set_compute_capability(d.OptionalText(7).value_or(""));
    dev.set_bandwidth_gb_s(d.IsNull(8) ? 0 : d.Double(8));
    dev.set_matmul_tflops(d.IsNull(9) ? 0 : d.Double(9));
    nodes[it->second].devices.push_back(std::move(dev));
  }
  return nodes;
}

Status NodeStore::SaveRegistration(NodeRow* row, const EventRow& event) {
  Transaction tx(db_);
  BE_RETURN_IF_ERROR(tx.Begin());
  std::string_view liveness = NodeStateName(row->liveness);
  if (row->id == 0) {
    insert_node_.Bind(1, row->name)
        .Bind(2, row->hostname)
        .Bind(3, row->version)
        .Bind(4, row->boot_id)
        .Bind(5, row->address)
        .Bind(6, liveness)
        .Bind(7, row->liveness_since_unix_ms)
        .Bind(8, row->drain_reason)
        .Bind(9, row->drained_at_unix_ms)
        .Bind(10, row->registered_at_unix_ms)
        .Bind(11, row->last_registered_at_unix_ms)
        .Bind(12, row->last_heartbeat_unix_ms)
        .Bind(13, row->restarts);
    BE_RETURN_IF_ERROR(insert_node_.Run());
    row->id = db_.LastInsertRowId();
  } else {
    update_node_.Bind(1, row->id)
        .Bind(2, row->hostname)
        .Bind(3, row->version)
        .Bind(4, row->boot_id)
        .Bind(5, row->address)
        .Bind(6, liveness)
        .Bind(7, row->liveness_since_unix_ms)
        .Bind(8, row->last_registered_at_unix_ms)
        .Bind(9, row->last_heartbeat_unix_ms)
        .Bind(10, row->restarts);
    BE_RETURN_IF_ERROR(update_node_.Run());
    BE_RETURN_IF_ERROR(delete_devices_.Bind(1, row->id).Run());
  }
  for (const v1::Device& dev : row->devices) {
    insert_device_.Bind(1, row->id)
        .Bind(2, DeviceKindName(dev.kind()))
        .Bind(3, static_cast<int64_t>(dev.index()))
        .Bind(4, dev.name())
        .Bind(5, dev.uuid().empty() ? std::optional<std::string>() : dev.uuid())
        .Bind(6, static_cast<int64_t>(dev.memory_bytes()))
        .Bind(7, static_cast<int64_t>(dev.compute_units()))
        .Bind(8, dev.compute_capability().empty() ? std::optional<std::string>()
                                                  : dev.compute_capability())
        .Bind(9,
              dev.bandwidth_gb_s() > 0 ? std::optional<double>(dev.bandwidth_gb_s()) : std::nullopt)
        .Bind(10,
              dev.matmul_tflops() > 0 ? std::optional<double>(dev.matmul_tflops()) : std::nullopt);
    BE_RETURN_IF_ERROR(insert_device_.Run());
  }
  EventRow e = event;
  e.node_id = row->id;
  BE_RETURN_IF_ERROR(InsertEvent(e));
  return tx.Commit();
}

Status NodeStore::SaveLiveness(const NodeRow& row, const EventRow& event) {
  Transaction tx(db_);
  BE_RETURN_IF_ERROR(tx.Begin());
  update_liveness_.Bind(1, row.id)
      .Bind(2, NodeStateName(row.liveness))
      .Bind(3, row.liveness_since_unix_ms);
  BE_RETURN_IF_ERROR(update_liveness_.Run());
  BE_RETURN_IF_ERROR(InsertEvent(event));
  return tx.Commit();
}

Status NodeStore::SaveDrain(const NodeRow& row, const EventRow& event) {
  Transaction tx(db_);
  BE_RETURN_IF_ERROR(tx.Begin());
  update_drain_.Bind(1, row.id).Bind(2, row.drain_reason).Bind(3, row.drained_at_unix_ms);
  BE_RETURN_IF_ERROR(update_drain_.Run());
  BE_RETURN_IF_ERROR(InsertEvent(event));
  return tx.Commit();
}

Status NodeStore::FlushHeartbeats(const std::vector<std::pair<int64_t, int64_t>>& beats) {
  if (beats.empty()) return Status::Ok();
  Transaction tx(db_);
  BE_RETURN_IF_ERROR(tx.Begin());
  for (const auto& [id, at] : beats) {
    BE_RETURN_IF_ERROR(update_heartbeat_.Bind(1, id).Bind(2, at).Run());
  }
  return tx.Commit();
}

Status NodeStore::AddEvent(const EventRow& event) { return InsertEvent(event); }

Status NodeStore::InsertEvent(const EventRow& event) {
  insert_event_.Bind(1, event.at_unix_ms)
      .Bind(2, event.node_id)
      .Bind(3, event.kind)
      .Bind(4, event.detail);
  return insert_event_.Run();
}

Result<std::vector<v1::Event>> NodeStore::ListEvents(std::optional<int64_t> node_id, int limit) {
  Statement& q = node_id ? list_events_node_ : list_events_all_;
  q.Bind(1, static_cast<int64_t>(limit));
  if (node_id) q.Bind(2, *node_id);
  std::vector<v1::Event> out;
  for (;;) {
    Result<bool> row = q.Step();
    if (!row.ok()) {
      q.Reset();
      return row.status();
    }
    if (!*row) break;
    v1::Event e;
    e.set_id(static_cast<uint64_t>(q.Int64(0)));
    e.set_at_unix_ms(q.Int64(1));
    e.set_node(q.Text(2));
    e.set_kind(q.Text(3));
    e.set_detail(q.Text(4));
    out.push_back(std::move(e));
  }
  q.Reset();
  return out;
}

}  // namespace breakeven::db
