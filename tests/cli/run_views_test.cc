// Benchmark runs as `submit`, `runs`, `run show` and `cancel` print them.
#include "cli/run_views.h"

#include <gtest/gtest.h>

#include "cli/query_views.h"

namespace breakeven::cli {
namespace {

constexpr int64_t kNow = 1'800'000'000'000;

v1::RunInfo MakeRun(uint64_t id, v1::RunState state) {
  v1::RunInfo r;
  r.set_id(id);
  r.set_matrix_id(3);
  r.set_matrix("demo");
  r.set_batch(1);
  r.set_model("tiny-15m");
  r.set_weights("dummy");
  r.set_workload("128/1024");
  r.set_tp(2);
  r.set_device_type("cpu");
  r.set_state(state);
  r.set_attempt(1);
  r.set_max_attempts(2);
  r.set_load("sweep 6 points x 10s");
  r.set_created_at_unix_ms(kNow - 125'000);
  return r;
}

// The line of `table` holding `needle`.
std::string LineWith(const std::string& table, const std::string& needle) {
  size_t at = table.find(needle);
  if (at == std::string::npos) return "";
  size_t start = table.rfind('\n', at);
  start = start == std::string::npos ? 0 : start + 1;
  return table.substr(start, table.find('\n', at) - start);
}

v1::ListRunsReply Sample() {
  v1::ListRunsReply reply;
  reply.set_now_unix_ms(kNow);
  v1::RunInfo running = MakeRun(12, v1::RUN_STATE_RUNNING);
  running.set_progress(0.456);
  running.set_points_done(2);
  running.add_nodes("node-a");
  running.add_nodes("node-b");
  running.set_started_at_unix_ms(kNow - 60'000);
  running.set_reason("no node has 2 free cpu devices");  // left over from waiting: not shown
  *reply.add_runs() = running;
  v1::RunInfo pending = MakeRun(13, v1::RUN_STATE_PENDING);
  pending.set_tp(4);
  pending.set_attempt(0);
  pending.set_reason("no node has 4 free cpu devices");
  *reply.add_runs() = pending;
  v1::RunInfo failed = MakeRun(14, v1::RUN_STATE_FAILED);
  failed.set_attempt(2);
  failed.set_reason("rank 1 on node-b exited with signal 9 (out of memory?)");
  *reply.add_runs() = failed;
  return reply;
}

TEST(RunStateName, DropsThePrefix) {
  EXPECT_EQ(RunStateName(v1::RUN_STATE_PENDING), "PENDING");
  EXPECT_EQ(RunStateName(v1::RUN_STATE_CANCELLED), "CANCELLED");
  EXPECT_EQ(RunStateName(v1::RUN_STATE_UNSPECIFIED), "UNKNOWN");
  EXPECT_EQ(RunStateName(static_cast<v1::RunState>(99)), "UNKNOWN");
}

TEST(IsActive, UntilTheRunFinishes) {
  EXPECT_TRUE(IsActive(v1::RUN_STATE_PENDING));
  EXPECT_TRUE(IsActive(v1::RUN_STATE_PLACED));
  EXPECT_TRUE(IsActive(v1::RUN_STATE_STARTING));
  EXPECT_TRUE(IsActive(v1::RUN_STATE_RUNNING));
  EXPECT_FALSE(IsActive(v1::RUN_STATE_SUCCEEDED));
  EXPECT_FALSE(IsActive(v1::RUN_STATE_FAILED));
  EXPECT_FALSE(IsActive(v1::RUN_STATE_CANCELLED));
}

TEST(RunsTable, HeaderAndARunningRow) {
  std::string out = RunsTable(Sample());
  EXPECT_EQ(
      out.substr(0, out.find('\n')),
      "ID  MATRIX  MODEL     WORKLOAD  TP  DEVICE  STATE    ATTEMPT  PROGRESS   NODES          "
      "AGE    REASON");
  EXPECT_EQ(LineWith(out, "RUNNING"),
            "12  demo#3  tiny-15m  128/1024   2  cpu     RUNNING  1/2      45% 2 pts  "
            "node-a,node-b  2m05s")
      << "a running run shows no stale reason:\n"
      << out;
}

TEST(RunsTable, PendingShowsWhy) {
  std::string line = LineWith(RunsTable(Sample()), "PENDING");
  EXPECT_NE(line.find("no node has 4 free cpu devices"), std::string::npos) << line;
  EXPECT_NE(line.find("0/2"), std::string::npos) << line;
}

TEST(RunsTable, FailedShowsWhy) {
  std::string line = LineWith(RunsTable(Sample()), "FAILED");
  EXPECT_NE(line.find("rank 1 on node-b exited with signal 9 (out of memory?)"), std::string::npos)
      << line;
  EXPECT_NE(line.find("2/2"), std::string::npos) << line;
}

TEST(RunsTable, CellsForPartsOfARun) {
  v1::RunInfo r = MakeRun(1, v1::RUN_STATE_RUNNING);
  r.set_progress(0.999);
  r.set_points_done(5);
  EXPECT_EQ(ProgressCell(r), "99% 5 pts") << "rounded down: 100% means done";
  r.set_progress(1.7);
  EXPECT_EQ(ProgressCell(r), "100% 5 pts");
  r.set_matrix("");
  EXPECT_EQ(MatrixCell(r), "#3");
  r.set_state(v1::RUN_STATE_CANCELLED);
  r.set_reason("cancelled by admin");
  EXPECT_EQ(ReasonCell(r), "cancelled by admin");
  r.set_state(v1::RUN_STATE_SUCCEEDED);
  EXPECT_EQ(ReasonCell(r), "");
}

TEST(RunsJson, AnArrayOfObjectsWithEveryField) {
  auto j = RunsJson(Sample());
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 3u);
  EXPECT_EQ(j[0]["id"], 12);
  EXPECT_EQ(j[0]["matrix_id"], 3);
  EXPECT_EQ(j[0]["state"], "RUNNING");
  EXPECT_EQ(j[0]["nodes"], nlohmann::ordered_json({"node-a", "node-b"}));
  EXPECT_DOUBLE_EQ(j[0]["progress"].get<double>(), 0.456);
  EXPECT_EQ(j[0]["points_done"], 2);
  EXPECT_EQ(j[0]["started_at"], "2027-01-15T07:59:00.000Z");
  EXPECT_TRUE(j[0]["finished_at"].is_null());
  EXPECT_EQ(j[1]["reason"], "no node has 4 free cpu devices");
  EXPECT_TRUE(RunJson(MakeRun(1, v1::RUN_STATE_SUCCEEDED))["reason"].is_null());
}

TEST(SubmitText, QueuedRunsWithPlacementOrWhyNot) {
  v1::SubmitMatrixReply reply;
  reply.set_matrix_id(3);
  v1::RunInfo placed = MakeRun(21, v1::RUN_STATE_PLACED);
  placed.add_nodes("node-a");
  *reply.add_runs() = placed;
  v1::RunInfo pending = MakeRun(22, v1::RUN_STATE_PENDING);
  pending.set_reason("no node has 4 free cpu devices");
  *reply.add_runs() = pending;
  std::string out = SubmitText(reply, false);
  EXPECT_EQ(
      out.substr(0, out.find('\n')),
      "ID  MODEL     WEIGHTS  WORKLOAD  TP  DEVICE  LOAD                  STATE    PLACEMENT");
  EXPECT_NE(LineWith(out, "PLACED").find("node-a"), std::string::npos) << out;
  EXPECT_NE(LineWith(out, "PENDING").find("no node has 4 free cpu devices"), std::string::npos)
      << out;
  EXPECT_EQ(LineWith(out, "PLACED").substr(0, 4), "21  ") << out;
  EXPECT_NE(out.find("\nqueued matrix 3 with 2 runs\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("next scheduled run"), std::string::npos) << "no schedule:\n" << out;
}

TEST(SubmitText, DryRunQueuesNothingAndShowsTheNextFiring) {
  v1::SubmitMatrixReply reply;
  *reply.add_runs() = MakeRun(0, v1::RUN_STATE_PLACED);
  reply.set_next_fire_unix_ms(1'800'054'000'000);
  std::string out = SubmitText(reply, true);
  EXPECT_EQ(LineWith(out, "tiny-15m").substr(0, 4), " -  ") << out;
  EXPECT_NE(out.find("dry run: 1 run, nothing queued\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("queued matrix"), std::string::npos) << out;
  EXPECT_NE(out.find("next scheduled run: 2027-01-15T23:00:00.000Z (UTC)"), std::string::npos)
      << out;
  auto j = SubmitJson(reply, true);
  EXPECT_TRUE(j["matrix_id"].is_null());
  EXPECT_TRUE(j["runs"][0]["id"].is_null());
  EXPECT_EQ(j["next_fire_at"], "2027-01-15T23:00:00.000Z");
}

v1::GetRunReply Details() {
  v1::GetRunReply reply;
  *reply.mutable_run() = Sample().runs(2);  // the failed one
  auto add_event = [&](int64_t at, const char* kind, const char* detail) {
    auto* e = reply.add_events();
    e->set_at_unix_ms(at);
    e->set_kind(kind);
    e->set_detail(detail);
  };
  add_event(kNow - 1000, "failed", "rank 1 exited");  // newest first, as events are listed
  add_event(kNow - 5000, "started", "attempt 2 on node-a,node-b");
  add_event(kNow - 9000, "placed", "node-a,node-b");
  v1::Table& points = *reply.mutable_points();
  for (const char* c : {"point", "kind", "target", "ttft_p95_ms", "requests"})
    points.add_columns(c);
  auto* row = points.add_rows();
  row->add_cells()->set_integer(0);
  row->add_cells()->set_text("concurrency");
  row->add_cells()->set_number(4);
  row->add_cells()->set_number(81.234);
  row->add_cells()->set_integer(200);
  points.add_notes("point 1 did not finish");
  return reply;
}

TEST(RunDetailsText, FieldsThenEventsOldestFirstThenPoints) {
  v1::GetRunReply reply = Details();
  std::string out =
      RunDetailsText(reply, *SelectColumns(reply.points(), {}, DefaultPointColumns()));
  EXPECT_EQ(out.substr(0, out.find("\nmodel")),
            "run:      14\n"
            "matrix:   demo#3 (batch 1)");
  EXPECT_NE(out.find("state:    FAILED\nreason:   rank 1 on node-b exited with signal 9"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("attempt:  2/2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("finished: -\n"), std::string::npos) << out;
  size_t placed = out.find("placed"), started = out.find("started  "), failed = out.find("failed ");
  EXPECT_LT(placed, started) << out;
  EXPECT_LT(started, failed) << out;
  size_t points = out.find("\npoints:\n");
  ASSERT_NE(points, std::string::npos) << out;
  EXPECT_NE(
      out.find("KIND         TARGET  TTFT_P95_MS\nconcurrency       4         81.2\n", points),
      std::string::npos)
      << "the default result columns the points table has:\n"
      << out;
  EXPECT_NE(out.find("note: point 1 did not finish\n"), std::string::npos) << out;
}

TEST(RunDetailsText, NothingYet) {
  v1::GetRunReply reply;
  *reply.mutable_run() = MakeRun(13, v1::RUN_STATE_PENDING);
  std::string out = RunDetailsText(reply, {});
  EXPECT_NE(out.find("events:\n  none\n"), std::string::npos) << out;
  EXPECT_NE(out.find("points:\n  none yet\n"), std::string::npos) << out;
}

TEST(RunDetailsJson, RunEventsAndEveryPointColumn) {
  auto j = RunDetailsJson(Details());
  EXPECT_EQ(j["run"]["id"], 14);
  EXPECT_EQ(j["events"][0]["kind"], "placed");
  EXPECT_EQ(j["points"][0]["requests"], 200);
  EXPECT_EQ(j["points"][0]["point"], 0);
  EXPECT_EQ(j["notes"][0], "point 1 did not finish");
}

}  // namespace
}  // namespace breakeven::cli
