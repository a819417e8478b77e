// Text forms of wire enums, as stored in SQLite and shown by the CLI.
#pragma once

#include <optional>
#include <string_view>

#include "proto/breakeven.pb.h"

namespace breakeven {

// "UP", "SUSPECT", "DOWN", "DRAINING", "DRAINED"; "UNKNOWN" otherwise.
std::string_view NodeStateName(v1::NodeState state);
std::optional<v1::NodeState> ParseNodeState(std::string_view name);

// "cpu", "cuda"
std::string_view DeviceKindName(v1::DeviceKind kind);
std::optional<v1::DeviceKind> ParseDeviceKind(std::string_view name);

std::string_view RoleName(v1::Role role);

}  // namespace breakeven
