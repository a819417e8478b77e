#include "cli/commands.h"

#include <fmt/format.h>

#include <iostream>

#include "cli/views.h"
#include "common/auth.h"
#include "common/client.h"
#include "common/names.h"

namespace breakeven::cli {

namespace {

int Fail(const Status& s) {
  fmt::print(stderr, "breakeven: {}\n", s.message());
  return 1;
}

Result<std::unique_ptr<SchedulerClient>> Connect(const Context& ctx) {
  BE_ASSIGN_OR_RETURN(HostPort address, ParseHostPort(ctx.scheduler, "--scheduler"));
  if (ctx.token_file.empty()) {
    return InvalidArgument("--token-file: no token file given (or set BREAKEVEN_TOKEN_FILE)");
  }
  BE_ASSIGN_OR_RETURN(std::string token, LoadTokenFile(ctx.token_file, "--token-file"));
  ClientOptions options;
  options.scheduler = address;
  options.token = std::move(token);
  options.role = v1::ROLE_ADMIN;
  options.timeout = ctx.timeout;
  return SchedulerClient::Connect(options);
}

Result<v1::ListNodesReply> ListNodes(SchedulerClient& client) {
  v1::Envelope req;
  req.mutable_list_nodes();
  BE_ASSIGN_OR_RETURN(v1::Envelope reply, client.Call(std::move(req)));
  if (!reply.has_list_nodes_reply()) return Internal("unexpected reply to ListNodes");
  return std::move(*reply.mutable_list_nodes_reply());
}

void PrintJson(const nlohmann::ordered_json& j) { std::cout << j.dump(2) << "\n"; }

}  // namespace

int CmdNodes(const Context& ctx) {
  auto client = Connect(ctx);
  if (!client.ok()) return Fail(client.status());
  auto nodes = ListNodes(**client);
  if (!nodes.ok()) return Fail(nodes.status());
  if (ctx.output == Output::kJson) {
    PrintJson(NodesJson(*nodes));
  } else {
    std::cout << NodesTable(*nodes);
  }
  return 0;
}

int CmdStatus(const Context& ctx) {
  auto client = Connect(ctx);
  if (!client.ok()) return Fail(client.status());
  auto nodes = ListNodes(**client);
  if (!nodes.ok()) return Fail(nodes.status());
  const std::string& version = (*client)->hello_ack().scheduler_version();
  if (ctx.output == Output::kJson) {
    PrintJson(StatusJson(*nodes, ctx.scheduler, version));
  } else {
    std::cout << StatusTable(*nodes, ctx.scheduler, version);
  }
  return 0;
}

int CmdDrain(const Context& ctx, const std::string& node, const std::string& reason) {
  auto client = Connect(ctx);
  if (!client.ok()) return Fail(client.status());
  v1::Envelope req;
  req.mutable_drain_node()->set_name(node);
  req.mutable_drain_node()->set_reason(reason);
  auto reply = (*client)->Call(std::move(req));
  if (!reply.ok()) return Fail(reply.status());
  const v1::NodeInfo& n = reply->node_change_reply().node();
  if (ctx.output == Output::kJson) {
    PrintJson(NodeJson(n, 0));
  } else {
    fmt::print("{}: {} ({})\n", n.name(), NodeStateName(n.state()), n.drain_reason());
  }
  return 0;
}

int CmdResume(const Context& ctx, const std::string& node) {
  auto client = Connect(ctx);
  if (!client.ok()) return Fail(client.status());
  v1::Envelope req;
  req.mutable_resume_node()->set_name(node);
  auto reply = (*client)->Call(std::move(req));
  if (!reply.ok()) return Fail(reply.status());
  const v1::NodeInfo& n = reply->node_change_reply().node();
  if (ctx.output == Output::kJson) {
    PrintJson(NodeJson(n, 0));
  } else {
    fmt::print("{}: {}\n", n.name(), NodeStateName(n.state()));
  }
  return 0;
}

int CmdEvents(const Context& ctx, const std::string& node, unsigned limit) {
  auto client = Connect(ctx);
  if (!client.ok()) return Fail(client.status());
  v1::Envelope req;
  req.mutable_list_events()->set_node(node);
  req.mutable_list_events()->set_limit(limit);
  auto reply = (*client)->Call(std::move(req));
  if (!reply.ok()) return Fail(reply.status());
  if (ctx.output == Output::kJson) {
    PrintJson(EventsJson(reply->list_events_reply()));
  } else {
    std::cout << EventsTable(reply->list_events_reply());
  }
  return 0;
}

}  // namespace breakeven::cli
