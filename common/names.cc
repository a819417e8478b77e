#include "common/names.h"

namespace breakeven {

std::string_view NodeStateName(v1::NodeState state) {
  switch (state) {
    case v1::NODE_STATE_UP:
      return "UP";
    case v1::NODE_STATE_SUSPECT:
      return "SUSPECT";
    case v1::NODE_STATE_DOWN:
      return "DOWN";
    case v1::NODE_STATE_DRAINING:
      return "DRAINING";
    case v1::NODE_STATE_DRAINED:
      return "DRAINED";
    default:
      return "UNKNOWN";
  }
}

std::optional<v1::NodeState> ParseNodeState(std::string_view name) {
  for (auto s : {v1::NODE_STATE_UP, v1::NODE_STATE_SUSPECT, v1::NODE_STATE_DOWN,
                 v1::NODE_STATE_DRAINING, v1::NODE_STATE_DRAINED}) {
    if (NodeStateName(s) == name) return s;
  }
  return std::nullopt;
}

std::string_view DeviceKindName(v1::DeviceKind kind) {
  switch (kind) {
    case v1::DEVICE_KIND_CPU:
      return "cpu";
    case v1::DEVICE_KIND_CUDA:
      return "cuda";
    default:
      return "unknown";
  }
}

std::optional<v1::DeviceKind> ParseDeviceKind(std::string_view name) {
  if (name == "cpu") return v1::DEVICE_KIND_CPU;
  if (name == "cuda") return v1::DEVICE_KIND_CUDA;
  return std::nullopt;
}

std::string_view RoleName(v1::Role role) {
  switch (role) {
    case v1::ROLE_NODE:
      return "node";
    case v1::ROLE_ADMIN:
      return "admin";
    case v1::ROLE_WORKER:
      return "worker";
    default:
      return "unspecified";
  }
}

}  // namespace breakeven
