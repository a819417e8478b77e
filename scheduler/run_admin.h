// Admin requests about benchmarks: submit, list, show and cancel runs; result, economics and
// price queries; price imports and settings. Reads need the cluster token, changes the admin
// token.
#pragma once

#include "common/auth.h"
#include "db/run_store.h"
#include "db/sqlite.h"
#include "proto/breakeven.pb.h"
#include "scheduler/run_manager.h"

namespace breakeven::scheduler {

bool IsRunAdminRequest(const v1::Envelope& request);

v1::Envelope HandleRunAdminRequest(RunManager& runs, db::RunStore& store, db::Database& db,
                                   const v1::Envelope& request, Access access);

}  // namespace breakeven::scheduler
