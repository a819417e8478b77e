#include "cli/views.h"

#include <fmt/format.h>

#include <map>

#include "cli/table.h"
#include "common/clock.h"
#include "common/names.h"

namespace breakeven::cli {

namespace {

constexpr v1::NodeState kStates[] = {v1::NODE_STATE_UP, v1::NODE_STATE_SUSPECT, v1::NODE_STATE_DOWN,
                                     v1::NODE_STATE_DRAINING, v1::NODE_STATE_DRAINED};

uint64_t TotalMemory(const v1::NodeInfo& n) {
  uint64_t total = 0;
  for (const auto& d : n.devices()) total += d.memory_bytes();
  return total;
}

std::string Gib(uint64_t bytes) {
  return fmt::format("{:.1f} GiB", static_cast<double>(bytes) / (1ull << 30));
}

// "1 cpu (2 cores)", "8 cuda (NVIDIA H100 80GB HBM3)".
std::string DevicesCell(const v1::NodeInfo& n) {
  if (n.devices().empty()) return "-";
  const auto& first = n.devices(0);
  std::string kind(DeviceKindName(first.kind()));
  if (first.kind() == v1::DEVICE_KIND_CPU) {
    return fmt::format("{} {} ({} cores)", n.devices_size(), kind, first.compute_units());
  }
  return fmt::format("{} {} ({})", n.devices_size(), kind, first.name());
}

std::string HeartbeatCell(const v1::NodeInfo& n, int64_t now) {
  if (n.last_heartbeat_unix_ms() == 0) return "never";
  return FormatAge(now - n.last_heartbeat_unix_ms()) + " ago";
}

// JSON null for an empty string.
nlohmann::ordered_json OrNull(const std::string& s) {
  return s.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(s);
}

// A calibration figure in base units (bytes/s, FLOP/s); null when the node did not measure it.
nlohmann::ordered_json CalibratedOrNull(double value, double unit) {
  return value > 0 ? nlohmann::ordered_json(value * unit) : nlohmann::ordered_json(nullptr);
}

std::map<v1::NodeState, int> CountByState(const v1::ListNodesReply& reply) {
  std::map<v1::NodeState, int> counts;
  for (auto s : kStates) counts[s] = 0;
  for (const auto& n : reply.nodes()) ++counts[n.state()];
  return counts;
}

}  // namespace

nlohmann::ordered_json NodeJson(const v1::NodeInfo& n, int64_t now) {
  nlohmann::ordered_json devices = nlohmann::ordered_json::array();
  for (const auto& d : n.devices()) {
    devices.push_back({{"index", d.index()},
                       {"kind", DeviceKindName(d.kind())},
                       {"name", d.name()},
                       {"uuid", d.uuid()},
                       {"memory_bytes", d.memory_bytes()},
                       {"compute_units", d.compute_units()},
                       {"compute_capability", d.compute_capability()},
                       {"copy_bytes_per_s", CalibratedOrNull(d.bandwidth_gb_s(), 1e9)},
                       {"matmul_flops_per_s", CalibratedOrNull(d.matmul_tflops(), 1e12)}});
  }
  nlohmann::ordered_json j = {
      {"id", n.id()},
      {"name", n.name()},
      {"hostname", n.hostname()},
      {"state", NodeStateName(n.state())},
      {"state_since", FormatUnixMs(n.state_since_unix_ms())},
      {"drain_reason", OrNull(n.drain_reason())},
      {"devices", devices},
      {"memory_bytes", TotalMemory(n)},
      {"version", n.version()},
      {"boot_id", n.boot_id()},
      {"connected", n.connected()},
      {"address", OrNull(n.address())},
      {"registered_at", FormatUnixMs(n.registered_at_unix_ms())},
      {"restarts", n.restarts()},
  };
  if (n.last_heartbeat_unix_ms() == 0) {
    j["last_heartbeat_at"] = nullptr;
    j["last_heartbeat_age_ms"] = nullptr;
  } else {
    j["last_heartbeat_at"] = FormatUnixMs(n.last_heartbeat_unix_ms());
    j["last_heartbeat_age_ms"] = std::max<int64_t>(0, now - n.last_heartbeat_unix_ms());
  }
  return j;
}

std::string NodesTable(const v1::ListNodesReply& reply) {
  Table t({"NAME", "STATE", "DEVICES", "MEMORY", "HEARTBEAT", "RESTARTS", "REASON"});
  for (const auto& n : reply.nodes()) {
    t.AddRow({n.name(), std::string(NodeStateName(n.state())), DevicesCell(n), Gib(TotalMemory(n)),
              HeartbeatCell(n, reply.now_unix_ms()), std::to_string(n.restarts()),
              n.drain_reason()});
  }
  return t.Render();
}

nlohmann::ordered_json NodesJson(const v1::ListNodesReply& reply) {
  nlohmann::ordered_json nodes = nlohmann::ordered_json::array();
  for (const auto& n : reply.nodes()) nodes.push_back(NodeJson(n, reply.now_unix_ms()));
  return {{"nodes", nodes}};
}

std::string StatusTable(const v1::ListNodesReply& reply, const std::string& scheduler,
                        const std::string& scheduler_version) {
  auto counts = CountByState(reply);
  std::vector<std::string> header = {"NODES"};
  std::vector<std::string> row = {std::to_string(reply.nodes_size())};
  for (auto s : kStates) {
    header.emplace_back(NodeStateName(s));
    row.push_back(std::to_string(counts[s]));
  }
  Table t(header);
  t.AddRow(row);
  return fmt::format("scheduler {} (version {})\n\n{}", scheduler, scheduler_version, t.Render());
}

nlohmann::ordered_json StatusJson(const v1::ListNodesReply& reply, const std::string& scheduler,
                                  const std::string& scheduler_version) {
  auto counts = CountByState(reply);
  nlohmann::ordered_json by_state = nlohmann::ordered_json::object();
  for (auto s : kStates) by_state[std::string(NodeStateName(s))] = counts[s];
  return {{"scheduler", scheduler},
          {"scheduler_version", scheduler_version},
          {"nodes", reply.nodes_size()},
          {"by_state", by_state}};
}

std::string EventsTable(const v1::ListEventsReply& reply) {
  Table t({"TIME", "NODE", "KIND", "DETAIL"});
  // The scheduler sends newest first; print oldest first, like a log.
  for (int i = reply.events_size() - 1; i >= 0; --i) {
    const auto& e = reply.events(i);
    t.AddRow(
        {FormatUnixMs(e.at_unix_ms()), e.node().empty() ? "-" : e.node(), e.kind(), e.detail()});
  }
  return t.Render();
}

nlohmann::ordered_json EventsJson(const v1::ListEventsReply& reply) {
  nlohmann::ordered_json events = nlohmann::ordered_json::array();
  for (int i = reply.events_size() - 1; i >= 0; --i) {
    const auto& e = reply.events(i);
    events.push_back({{"id", e.id()},
                      {"at", FormatUnixMs(e.at_unix_ms())},
                      {"node", e.node()},
                      {"kind", e.kind()},
                      {"detail", e.detail()}});
  }
  return {{"events", events}};
}

}  // namespace breakeven::cli
