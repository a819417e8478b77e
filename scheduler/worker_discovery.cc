#include "scheduler/worker_discovery.h"

#include <nlohmann/json.hpp>

#include "common/endpoint.h"

namespace breakeven::scheduler {

namespace {

bool IsWildcard(std::string_view host) {
  return host.empty() || host == "0.0.0.0" || host == "::" || host == "0:0:0:0:0:0:0:0";
}

}  // namespace

std::string ReachableAddress(std::string_view reported, std::string_view node_peer) {
  Result<HostPort> worker = ParseHostPort(reported, "metrics address", /*allow_port_zero=*/false);
  if (!worker.ok() || !IsWildcard(worker->host)) return std::string(reported);
  // The peer is "ADDRESS:PORT" as the connection saw it, IPv6 without brackets.
  const size_t colon = node_peer.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::string(reported);
  HostPort reachable{std::string(node_peer.substr(0, colon)), worker->port};
  if (reachable.host.starts_with('[') && reachable.host.ends_with(']')) {
    reachable.host = reachable.host.substr(1, reachable.host.size() - 2);
  }
  return reachable.ToString();
}

std::string WorkerTargetsJson(const std::vector<WorkerTarget>& targets) {
  nlohmann::json out = nlohmann::json::array();
  for (const WorkerTarget& t : targets) {
    out.push_back({{"targets", nlohmann::json::array({t.address})},
                   {"labels",
                    {{"run_id", std::to_string(t.run_id)},
                     {"attempt", std::to_string(t.attempt)},
                     {"model", t.model},
                     {"node", t.node}}}});
  }
  return out.dump();
}

}  // namespace breakeven::scheduler
