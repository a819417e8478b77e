#include "cli/commands.h"

#include <fmt/format.h>

#include <iostream>

#include "cli/rpc.h"
#include "cli/views.h"
#include "common/names.h"

namespace breakeven::cli {

namespace {

Result<v1::ListNodesReply> ListNodes(SchedulerClient& client) {
  v1::Envelope req;
  req.mutable_list_nodes();
  BE_ASSIGN_OR_RETURN(v1::Envelope reply,
                      CallFor(client, std::move(req), v1::Envelope::kListNodesReply, "ListNodes"));
  return std::move(*reply.mutable_list_nodes_reply());
}

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
  auto reply = CallFor(**client, std::move(req), v1::Envelope::kNodeChangeReply, "DrainNode");
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
  auto reply = CallFor(**client, std::move(req), v1::Envelope::kNodeChangeReply, "ResumeNode");
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
  auto reply = CallFor(**client, std::move(req), v1::Envelope::kListEventsReply, "ListEvents");
  if (!reply.ok()) return Fail(reply.status());
  if (ctx.output == Output::kJson) {
    PrintJson(EventsJson(reply->list_events_reply()));
  } else {
    std::cout << EventsTable(reply->list_events_reply());
  }
  return 0;
}

}  // namespace breakeven::cli
