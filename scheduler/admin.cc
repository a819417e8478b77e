#include "scheduler/admin.h"

#include <spdlog/spdlog.h>

#include "common/connection.h"

namespace breakeven::scheduler {

namespace {

constexpr int kMaxEventLimit = 10000;

v1::Envelope ErrorReply(const v1::Envelope& request, const Status& status) {
  return MakeError(ToWireCode(status.code()), status.message(), request.request_id());
}

v1::Envelope NodeChange(const v1::Envelope& request, Result<v1::NodeInfo> node) {
  if (!node.ok()) return ErrorReply(request, node.status());
  v1::Envelope reply;
  reply.set_request_id(request.request_id());
  *reply.mutable_node_change_reply()->mutable_node() = std::move(node).value();
  return reply;
}

}  // namespace

bool IsAdminRequest(const v1::Envelope& request) {
  switch (request.body_case()) {
    case v1::Envelope::kListNodes:
    case v1::Envelope::kListEvents:
    case v1::Envelope::kDrainNode:
    case v1::Envelope::kResumeNode:
      return true;
    default:
      return false;
  }
}

v1::Envelope HandleAdminRequest(NodeRegistry& registry, const v1::Envelope& request, Access access,
                                int default_event_limit) {
  bool change = request.has_drain_node() || request.has_resume_node();
  if (change && access != Access::kAdmin) {
    return ErrorReply(request, PermissionDenied("changing cluster state needs the admin token "
                                                "(this connection presented the cluster token)"));
  }
  v1::Envelope reply;
  reply.set_request_id(request.request_id());
  switch (request.body_case()) {
    case v1::Envelope::kListNodes: {
      auto* out = reply.mutable_list_nodes_reply();
      for (v1::NodeInfo& n : registry.List()) *out->add_nodes() = std::move(n);
      out->set_now_unix_ms(registry.clock().WallUnixMs());
      return reply;
    }
    case v1::Envelope::kListEvents: {
      int limit =
          request.list_events().limit() == 0
              ? default_event_limit
              : static_cast<int>(std::min<uint32_t>(request.list_events().limit(), kMaxEventLimit));
      auto events = registry.Events(request.list_events().node(), limit);
      if (!events.ok()) return ErrorReply(request, events.status());
      for (v1::Event& e : *events) *reply.mutable_list_events_reply()->add_events() = std::move(e);
      return reply;
    }
    case v1::Envelope::kDrainNode:
      return NodeChange(request,
                        registry.Drain(request.drain_node().name(), request.drain_node().reason()));
    case v1::Envelope::kResumeNode:
      return NodeChange(request, registry.Resume(request.resume_node().name()));
    default:
      return ErrorReply(request, InvalidArgument("not an admin request"));
  }
}

}  // namespace breakeven::scheduler
