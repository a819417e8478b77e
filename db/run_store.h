// RunStore: benchmark matrices, runs, attempts, load points and per-request records in SQLite.
//
// The scheduler writes through: every state change of a run is stored before it is visible, in
// the same transaction as the rows that go with it (a placement with its attempt row, a load
// point with its requests and the run's progress), so a crash leaves no half-recorded result and
// a restarted scheduler finds every run where it was.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "db/sqlite.h"
#include "proto/breakeven.pb.h"

namespace breakeven::db {

struct MatrixRow {
  int64_t id = 0;
  std::string name;
  std::string spec_yaml;
  std::optional<std::string> schedule;
  std::optional<int64_t> next_fire_unix_ms;
  int64_t fired = 0;  // batches created so far
  int64_t submitted_at_unix_ms = 0;
};

struct RunRow {
  int64_t id = 0;
  int64_t matrix_id = 0;
  std::string matrix;  // the matrix's name (read only)
  int64_t batch = 1;
  std::string model;
  std::string weights = "dummy";
  std::string dtype = "f32";
  std::string workload;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  int64_t prefix_tokens = 0;
  int64_t samples = 1;
  int64_t tp = 1;
  std::string device_type = "cpu";
  bool allow_multi_host = false;
  int64_t kv_cache_mib = 0;
  std::string load_json;
  std::string load_summary;
  int64_t repeat_index = 0;
  v1::RunState state = v1::RUN_STATE_PENDING;
  std::string reason;
  int64_t attempt = 0;
  int64_t max_attempts = 2;
  int64_t created_at_unix_ms = 0;
  std::optional<int64_t> started_at_unix_ms;
  std::optional<int64_t> finished_at_unix_ms;
  double progress = 0;
  int64_t points_done = 0;
  int64_t points_planned = 1;
};

struct AttemptRow {
  int64_t run_id = 0;
  int64_t attempt = 0;
  std::string placement_json;
  std::string state = "STARTING";
  std::string error;
  int64_t started_at_unix_ms = 0;
  std::optional<int64_t> finished_at_unix_ms;
  std::string software_version;
  std::string backend = "cpu";
  std::string nodes;  // comma-separated, rank order
  int64_t devices = 1;
  std::string device_names;
};

struct RunEventRow {
  int64_t at_unix_ms = 0;
  std::optional<int64_t> node_id;
  std::optional<int64_t> run_id;
  std::string kind;
  std::string detail;
};

// RUN_STATE_PENDING <-> "PENDING" (the runs.state column).
std::string RunStateText(v1::RunState state);
v1::RunState ParseRunState(std::string_view text);
bool IsTerminal(v1::RunState state);

class RunStore {
 public:
  static Result<std::unique_ptr<RunStore>> Create(Database& db);

  // One transaction: the matrix (sets m->id) and its first batch of runs (sets their ids and
  // matrix_id). Nothing is stored if any row fails.
  Status InsertMatrix(MatrixRow* m, std::vector<RunRow>* runs, const RunEventRow& event);
  // One transaction: a batch fired by the matrix's schedule, and the schedule's next time.
  Status InsertBatch(const MatrixRow& m, std::vector<RunRow>* runs, const RunEventRow& event);

  Result<std::vector<MatrixRow>> LoadScheduledMatrices();
  Result<std::optional<MatrixRow>> FindMatrix(std::string_view name_or_id);
  // Runs that are not finished, oldest first.
  Result<std::vector<RunRow>> LoadActiveRuns();
  Result<std::optional<RunRow>> GetRun(int64_t id);

  // Saves a run's state fields (state, reason, attempt, times, progress) with `event`.
  Status SaveRun(const RunRow& run, const std::optional<RunEventRow>& event);
  // A new attempt: the run (now STARTING with its attempt number) and the attempt row.
  Status StartAttempt(const RunRow& run, const AttemptRow& attempt, const RunEventRow& event);
  // Ends an attempt (SUCCEEDED, FAILED or CANCELLED) and saves the run.
  Status FinishAttempt(const RunRow& run, int64_t attempt, std::string_view state,
                       std::string_view error, int64_t at_unix_ms, const RunEventRow& event);
  Result<std::optional<AttemptRow>> GetAttempt(int64_t run_id, int64_t attempt);

  // One load point with all its requests, and the run's progress, in one transaction. Returns
  // false (storing nothing) when this point of this attempt is already stored: a node that
  // lost its connection sends its buffered points again.
  Result<bool> InsertPoint(const RunRow& run, const v1::PointResult& point, int64_t devices,
                           int64_t at_unix_ms);

  Status AddEvent(const RunEventRow& event);

  // For the admin API.
  Result<std::vector<v1::RunInfo>> ListRuns(int64_t matrix_id, bool active_only, int limit);
  Result<v1::RunInfo> RunInfo(int64_t id);
  Result<std::vector<v1::Event>> RunEvents(int64_t run_id, int limit);
  // The run's load points, the columns a person reads first.
  Result<v1::Table> RunPoints(int64_t run_id);

 private:
  explicit RunStore(Database& db) : db_(db) {}
  Status InsertRuns(std::vector<RunRow>* runs);
  Status InsertEvent(const RunEventRow& event);
  Status UpdateRun(const RunRow& run);  // the state fields SaveRun writes, without a transaction
  Result<std::vector<v1::RunInfo>> QueryRunInfos(const std::string& where,
                                                 const std::vector<int64_t>& params, int limit);

  Database& db_;
  Statement insert_point_;
  Statement insert_request_;
  Statement save_run_;
  Statement insert_event_;
};

}  // namespace breakeven::db
