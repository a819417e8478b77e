#include "scheduler/registry.h"

#include <spdlog/spdlog.h>

#include "common/names.h"

namespace breakeven::scheduler {

namespace {
constexpr size_t kMaxNameBytes = 253;  // a DNS name
constexpr size_t kMaxReasonBytes = 1024;

std::string Seconds(Millis ms) { return fmt::format("{:.1f}s", ms.count() / 1000.0); }
}  // namespace

NodeRegistry::NodeRegistry(db::NodeStore& store, const Clock& clock, LivenessConfig config)
    : store_(store), clock_(clock), config_(config) {}

Status NodeRegistry::Load() {
  BE_ASSIGN_OR_RETURN(std::vector<db::NodeRow> rows, store_.LoadAll());
  SteadyTime now = clock_.Now();
  nodes_.clear();
  by_id_.clear();
  for (db::NodeRow& row : rows) {
    auto e = std::make_unique<Entry>();
    e->row = std::move(row);
    e->row.address.clear();  // no connection yet
    e->last_heard = now;
    by_id_[static_cast<uint64_t>(e->row.id)] = e.get();
    nodes_[e->row.name] = std::move(e);
  }
  return Status::Ok();
}

NodeRegistry::Entry* NodeRegistry::Find(const std::string& name) {
  auto it = nodes_.find(name);
  return it == nodes_.end() ? nullptr : it->second.get();
}

v1::NodeState NodeRegistry::StateOf(const Entry& e) const {
  return DisplayState(e.row.liveness, e.row.drain_reason.has_value(), e.active_runs);
}

v1::NodeInfo NodeRegistry::Info(const Entry& e) const {
  v1::NodeInfo info;
  info.set_id(static_cast<uint64_t>(e.row.id));
  info.set_name(e.row.name);
  info.set_hostname(e.row.hostname);
  info.set_state(StateOf(e));
  info.set_drain_reason(e.row.drain_reason.value_or(""));
  for (const v1::Device& d : e.row.devices) *info.add_devices() = d;
  info.set_version(e.row.version);
  info.set_boot_id(e.row.boot_id);
  info.set_connected(e.session != 0);
  if (e.session != 0) info.set_address(e.row.address);
  info.set_registered_at_unix_ms(e.row.registered_at_unix_ms);
  info.set_last_heartbeat_unix_ms(e.row.last_heartbeat_unix_ms.value_or(0));
  info.set_restarts(static_cast<uint32_t>(e.row.restarts));
  int64_t since = e.row.liveness_since_unix_ms;
  if (e.row.drained_at_unix_ms && e.row.liveness != v1::NODE_STATE_DOWN) {
    since = std::max(since, *e.row.drained_at_unix_ms);
  }
  info.set_state_since_unix_ms(since);
  return info;
}

Result<Registration> NodeRegistry::Register(const v1::RegisterNode& request,
                                            const AgentHello& hello, SessionId session) {
  const std::string& name = request.name();
  if (name.empty() || name.size() > kMaxNameBytes) {
    return InvalidArgument("node name must have 1 to {} characters (got {})", kMaxNameBytes,
                           name.size());
  }
  if (hello.boot_id.empty()) return InvalidArgument("node '{}' sent an empty boot id", name);

  int64_t now_ms = clock_.WallUnixMs();
  SteadyTime now = clock_.Now();
  Registration out;
  Entry* e = Find(name);
  db::EventRow event{now_ms, std::nullopt, "", ""};
  db::NodeRow row;

  if (e == nullptr) {
    row.name = name;
    row.registered_at_unix_ms = now_ms;
    row.liveness_since_unix_ms = now_ms;
    event.kind = "registered";
    event.detail =
        fmt::format("first registration from {} (boot id {})", hello.address, hello.boot_id);
  } else {
    bool same_boot = e->row.boot_id == hello.boot_id;
    if (e->session != 0 && e->session != session && !same_boot &&
        now - e->last_heard < config_.suspect_after) {
      return AlreadyExists(
          "node name '{}' is held by a live agent at {} (boot id {}); give each agent its own "
          "--name",
          name, e->row.address, e->row.boot_id);
    }
    row = e->row;
    out.restarted = !same_boot;
    if (out.restarted) {
      ++row.restarts;
      event.kind = "restarted";
      event.detail = fmt::format("agent restarted: boot id {} -> {}, from {}", e->row.boot_id,
                                 hello.boot_id, hello.address);
    } else {
      event.kind = "reconnected";
      event.detail = fmt::format("agent reconnected from {}", hello.address);
    }
    if (row.liveness != v1::NODE_STATE_UP) {
      event.detail += fmt::format("; liveness {} -> UP", NodeStateName(row.liveness));
      row.liveness = v1::NODE_STATE_UP;
      row.liveness_since_unix_ms = now_ms;
    }
  }
  row.hostname = request.hostname();
  row.version = hello.version;
  row.boot_id = hello.boot_id;
  row.address = hello.address;
  row.last_registered_at_unix_ms = now_ms;
  row.last_heartbeat_unix_ms = now_ms;
  row.devices.assign(request.devices().begin(), request.devices().end());
  BE_RETURN_IF_ERROR(
      db_writes_.Time("node_register", [&] { return store_.SaveRegistration(&row, event); }));

  if (e == nullptr) {
    auto fresh = std::make_unique<Entry>();
    e = fresh.get();
    by_id_[static_cast<uint64_t>(row.id)] = e;
    nodes_[name] = std::move(fresh);
  } else if (e->session != session) {
    out.superseded = e->session;
  }
  e->row = std::move(row);
  e->session = session;
  e->last_heard = now;
  e->heartbeat_dirty = false;
  spdlog::info("node {}: name={} id={} address={} devices={}", event.kind, name, e->row.id,
               hello.address, request.devices_size());
  out.node_id = static_cast<uint64_t>(e->row.id);
  out.state = StateOf(*e);
  return out;
}

Result<v1::NodeState> NodeRegistry::Heartbeat(uint64_t node_id, SessionId session) {
  auto it = by_id_.find(node_id);
  if (it == by_id_.end()) return NotFound("unknown node id {}", node_id);
  Entry& e = *it->second;
  if (e.session != session) {
    return PermissionDenied("node id {} ('{}') is registered on another connection", node_id,
                            e.row.name);
  }
  SteadyTime now = clock_.Now();
  Millis silence = std::chrono::duration_cast<Millis>(now - e.last_heard);
  e.last_heard = now;
  e.row.last_heartbeat_unix_ms = clock_.WallUnixMs();
  e.heartbeat_dirty = true;
  if (e.row.liveness != v1::NODE_STATE_UP) {
    BE_RETURN_IF_ERROR(SetLiveness(e, v1::NODE_STATE_UP,
                                   fmt::format("heartbeat after {} of silence", Seconds(silence))));
  }
  return StateOf(e);
}

void NodeRegistry::Disconnected(uint64_t node_id, SessionId session) {
  auto it = by_id_.find(node_id);
  if (it == by_id_.end() || it->second->session != session) return;
  it->second->session = 0;
  spdlog::info("node disconnected: name={} id={}", it->second->row.name, node_id);
}

Status NodeRegistry::SetLiveness(Entry& e, v1::NodeState liveness, const std::string& why) {
  db::NodeRow row = e.row;
  v1::NodeState before = StateOf(e);
  row.liveness = liveness;
  row.liveness_since_unix_ms = clock_.WallUnixMs();
  std::string detail = fmt::format("liveness {} -> {}: {}", NodeStateName(e.row.liveness),
                                   NodeStateName(liveness), why);
  BE_RETURN_IF_ERROR(db_writes_.Time("node_liveness", [&] {
    return store_.SaveLiveness(row, {row.liveness_since_unix_ms, row.id, "state", detail});
  }));
  e.row = std::move(row);
  auto level = liveness == v1::NODE_STATE_UP ? spdlog::level::info : spdlog::level::warn;
  spdlog::log(level, "node {}: {} (state {} -> {})", e.row.name, detail, NodeStateName(before),
              NodeStateName(StateOf(e)));
  return Status::Ok();
}

Result<int> NodeRegistry::Sweep() {
  SteadyTime now = clock_.Now();
  int changed = 0;
  for (auto& [name, e] : nodes_) {
    Millis silence = std::chrono::duration_cast<Millis>(now - e->last_heard);
    v1::NodeState next = LivenessAfterSilence(e->row.liveness, silence, config_);
    if (next == e->row.liveness) continue;
    BE_RETURN_IF_ERROR(SetLiveness(*e, next, fmt::format("no heartbeat for {}", Seconds(silence))));
    ++changed;
  }
  return changed;
}

Status NodeRegistry::FlushHeartbeats(size_t max_rows) {
  std::vector<std::pair<int64_t, int64_t>> beats;
  std::vector<Entry*> written;
  auto it = by_id_.lower_bound(flush_cursor_);
  for (size_t scanned = 0; scanned < by_id_.size() && beats.size() < max_rows; ++scanned, ++it) {
    if (it == by_id_.end()) it = by_id_.begin();
    Entry* e = it->second;
    if (e->heartbeat_dirty && e->row.last_heartbeat_unix_ms) {
      beats.emplace_back(e->row.id, *e->row.last_heartbeat_unix_ms);
      written.push_back(e);
    }
  }
  flush_cursor_ = it == by_id_.end() ? 0 : it->first;
  if (!beats.empty()) {
    BE_RETURN_IF_ERROR(
        db_writes_.Time("heartbeat_flush", [&] { return store_.FlushHeartbeats(beats); }));
  }
  for (Entry* e : written) e->heartbeat_dirty = false;
  return Status::Ok();
}

Result<v1::NodeInfo> NodeRegistry::Drain(const std::string& name, const std::string& reason) {
  Entry* e = Find(name);
  if (e == nullptr) return NotFound("no node named '{}' (see `breakeven nodes`)", name);
  if (reason.empty()) return InvalidArgument("draining '{}' needs a reason (--reason)", name);
  if (reason.size() > kMaxReasonBytes) {
    return InvalidArgument("drain reason has {} bytes; at most {} are allowed", reason.size(),
                           kMaxReasonBytes);
  }
  db::NodeRow row = e->row;
  int64_t now_ms = clock_.WallUnixMs();
  std::string detail = row.drain_reason ? fmt::format("drain reason changed: '{}' -> '{}'",
                                                      *row.drain_reason, reason)
                                        : fmt::format("drained: {}", reason);
  if (!row.drained_at_unix_ms) row.drained_at_unix_ms = now_ms;
  row.drain_reason = reason;
  BE_RETURN_IF_ERROR(db_writes_.Time("node_drain", [&] {
    return store_.SaveDrain(row, {now_ms, row.id, "drain", detail});
  }));
  e->row = std::move(row);
  spdlog::info("node {}: {}", name, detail);
  return Info(*e);
}

Result<v1::NodeInfo> NodeRegistry::Resume(const std::string& name) {
  Entry* e = Find(name);
  if (e == nullptr) return NotFound("no node named '{}' (see `breakeven nodes`)", name);
  if (!e->row.drain_reason) {
    return FailedPrecondition(
        "node '{}' is not drained (state {}); a DOWN node returns to UP by itself when its agent "
        "heartbeats again",
        name, NodeStateName(StateOf(*e)));
  }
  db::NodeRow row = e->row;
  int64_t now_ms = clock_.WallUnixMs();
  std::string detail = fmt::format("resumed (was drained: {})", *row.drain_reason);
  row.drain_reason.reset();
  row.drained_at_unix_ms.reset();
  BE_RETURN_IF_ERROR(db_writes_.Time("node_drain", [&] {
    return store_.SaveDrain(row, {now_ms, row.id, "resume", detail});
  }));
  e->row = std::move(row);
  spdlog::info("node {}: {}", name, detail);
  return Info(*e);
}

std::vector<v1::NodeInfo> NodeRegistry::List() const {
  std::vector<v1::NodeInfo> out;
  out.reserve(nodes_.size());
  for (const auto& [name, e] : nodes_) out.push_back(Info(*e));
  return out;
}

Result<std::vector<v1::Event>> NodeRegistry::Events(const std::string& node_name, int limit) {
  std::optional<int64_t> id;
  if (!node_name.empty()) {
    Entry* e = Find(node_name);
    if (e == nullptr) return NotFound("no node named '{}' (see `breakeven nodes`)", node_name);
    id = e->row.id;
  }
  return store_.ListEvents(id, limit);
}

void NodeRegistry::SetActiveRuns(uint64_t node_id, int runs) {
  auto it = by_id_.find(node_id);
  if (it != by_id_.end()) it->second->active_runs = runs;
}

SessionId NodeRegistry::SessionOf(uint64_t node_id) const {
  auto it = by_id_.find(node_id);
  return it == by_id_.end() ? 0 : it->second->session;
}

std::string NodeRegistry::PeerAddressOf(uint64_t node_id) const {
  auto it = by_id_.find(node_id);
  return it == by_id_.end() || it->second->session == 0 ? "" : it->second->row.address;
}

std::map<v1::NodeState, int> NodeRegistry::CountByState() const {
  std::map<v1::NodeState, int> out;
  for (const auto& [name, e] : nodes_) ++out[StateOf(*e)];
  return out;
}

std::string NodeRegistry::NameOf(uint64_t node_id) const {
  auto it = by_id_.find(node_id);
  return it == by_id_.end() ? fmt::format("node {}", node_id) : it->second->row.name;
}

}  // namespace breakeven::scheduler
