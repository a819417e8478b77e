// Benchmark runs as the CLI prints them: `submit`, `runs`, `run show`, `cancel`. Pure functions
// of the scheduler's replies, tested without a network.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "proto/breakeven.pb.h"

namespace breakeven::cli {

// "PENDING", "RUNNING", ...; "UNKNOWN" for a value this build does not know.
std::string RunStateName(v1::RunState state);
// PENDING, PLACED, STARTING and RUNNING: the run still has work ahead.
bool IsActive(v1::RunState state);

// "45% 3 pts": progress (rounded down, so 100% means done) and load points finished.
std::string ProgressCell(const v1::RunInfo& run);
// The reason worth a column: why PENDING, why FAILED, why CANCELLED; empty otherwise (a run
// that was retried may still carry its previous attempt's reason).
std::string ReasonCell(const v1::RunInfo& run);
// "demo#3", or "#3" without a name.
std::string MatrixCell(const v1::RunInfo& run);

// `breakeven runs`: ID MATRIX MODEL WORKLOAD TP DEVICE STATE ATTEMPT PROGRESS NODES AGE REASON.
std::string RunsTable(const v1::ListRunsReply& reply);
// `breakeven runs -o json`: an array of RunJson.
nlohmann::ordered_json RunsJson(const v1::ListRunsReply& reply);
// Every field; times as ISO 8601 UTC, null when not yet; empty reason as null.
nlohmann::ordered_json RunJson(const v1::RunInfo& run);

// `breakeven submit`: the expanded runs with their placement, then what was queued.
std::string SubmitText(const v1::SubmitMatrixReply& reply, bool dry_run);
nlohmann::ordered_json SubmitJson(const v1::SubmitMatrixReply& reply, bool dry_run);

// `breakeven run show`: "key: value" lines, the run's events oldest first, then the points
// table restricted to `point_columns` (indices into reply.points().columns()).
std::string RunDetailsText(const v1::GetRunReply& reply, const std::vector<int>& point_columns);
nlohmann::ordered_json RunDetailsJson(const v1::GetRunReply& reply);

}  // namespace breakeven::cli
