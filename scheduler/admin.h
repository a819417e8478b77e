// Admin requests: reads (cluster token) and changes (admin token) of cluster state.
#pragma once

#include "common/auth.h"
#include "proto/breakeven.pb.h"
#include "scheduler/registry.h"

namespace breakeven::scheduler {

// Whether the envelope's body is an admin request at all.
bool IsAdminRequest(const v1::Envelope& request);

// Answers one admin request. The reply carries the request's id; a refused or failed request
// is answered with an Error body (PERMISSION_DENIED when a change comes without the admin
// token).
v1::Envelope HandleAdminRequest(NodeRegistry& registry, const v1::Envelope& request, Access access,
                                int default_event_limit);

}  // namespace breakeven::scheduler
