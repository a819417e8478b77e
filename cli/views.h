// What the admin CLI prints: tables for people, JSON for scripts. Pure functions of the
// scheduler's replies, so they are tested without a network.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "proto/breakeven.pb.h"

namespace breakeven::cli {

// `breakeven nodes`: NAME STATE DEVICES MEMORY HEARTBEAT RESTARTS REASON.
std::string NodesTable(const v1::ListNodesReply& reply);
// `breakeven nodes -o json`: {"nodes": [...]} with stable field names.
nlohmann::ordered_json NodesJson(const v1::ListNodesReply& reply);

// `breakeven status`: nodes counted by state.
std::string StatusTable(const v1::ListNodesReply& reply, const std::string& scheduler,
                        const std::string& scheduler_version);
nlohmann::ordered_json StatusJson(const v1::ListNodesReply& reply, const std::string& scheduler,
                                  const std::string& scheduler_version);

// `breakeven events`.
std::string EventsTable(const v1::ListEventsReply& reply);
nlohmann::ordered_json EventsJson(const v1::ListEventsReply& reply);

nlohmann::ordered_json NodeJson(const v1::NodeInfo& node, int64_t now_unix_ms);

}  // namespace breakeven::cli
