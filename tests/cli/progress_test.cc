// `breakeven watch`: the bar, the line per run, the terminal frame, change detection, selection.
#include "cli/progress.h"

#include <gtest/gtest.h>

#include <cmath>

namespace breakeven::cli {
namespace {

v1::RunInfo MakeRun(uint64_t id, v1::RunState state, double progress = 0, uint32_t points = 0) {
  v1::RunInfo r;
  r.set_id(id);
  r.set_matrix_id(3);
  r.set_batch(1);
  r.set_model("tiny-15m");
  r.set_workload("128/1024");
  r.set_tp(2);
  r.set_device_type("cpu");
  r.set_state(state);
  r.set_attempt(1);
  r.set_max_attempts(2);
  r.set_progress(progress);
  r.set_points_done(points);
  r.set_load("sweep 6 points x 10s");
  return r;
}

TEST(ProgressBar, FillsInProportionRoundingDown) {
  EXPECT_EQ(ProgressBar(0.45), "[#########-----------]");
  EXPECT_EQ(ProgressBar(0), "[--------------------]");
  EXPECT_EQ(ProgressBar(1), "[####################]");
  EXPECT_EQ(ProgressBar(0.999), "[###################-]") << "full only when done";
  EXPECT_EQ(ProgressBar(0.5, 4), "[##--]");
}

TEST(ProgressBar, ClampsNonsense) {
  EXPECT_EQ(ProgressBar(-0.3, 4), "[----]");
  EXPECT_EQ(ProgressBar(7, 4), "[####]");
  EXPECT_EQ(ProgressBar(std::nan(""), 4), "[----]");
}

TEST(PlannedPoints, ReadsTheLoadSummary) {
  EXPECT_EQ(PlannedPoints("sweep 6 points x 10s"), 6u);
  EXPECT_EQ(PlannedPoints("rate 1 point x 30s"), 1u);
  EXPECT_EQ(PlannedPoints("slo-search up to 12 points"), 12u);
  EXPECT_FALSE(PlannedPoints("slo-search").has_value());
  EXPECT_FALSE(PlannedPoints("points").has_value());
  EXPECT_FALSE(PlannedPoints("").has_value());
}

TEST(WatchLine, RunningShowsBarPercentRunAndPoints) {
  v1::RunInfo r = MakeRun(12, v1::RUN_STATE_RUNNING, 0.45, 3);
  r.add_nodes("gpu-a");
  EXPECT_EQ(WatchLine(r),
            "[#########-----------]  45%  run 12 tiny-15m 128/1024 tp2 cpu RUNNING 3/6 points on "
            "gpu-a");
}

TEST(WatchLine, PointsWithoutAPlannedCount) {
  v1::RunInfo r = MakeRun(12, v1::RUN_STATE_RUNNING, 0.2, 1);
  r.set_load("slo-search");
  EXPECT_EQ(WatchLine(r),
            "[####----------------]  20%  run 12 tiny-15m 128/1024 tp2 cpu RUNNING 1 points");
}

TEST(WatchLine, PendingAndFailedSayWhy) {
  v1::RunInfo pending = MakeRun(13, v1::RUN_STATE_PENDING);
  pending.set_reason("no node has 2 free cpu devices");
  EXPECT_EQ(WatchLine(pending),
            "[--------------------]   0%  run 13 tiny-15m 128/1024 tp2 cpu PENDING: no node has 2 "
            "free cpu devices");
  v1::RunInfo failed = MakeRun(14, v1::RUN_STATE_FAILED, 0.5, 3);
  failed.set_reason("rank 1 exited with signal 9");
  EXPECT_EQ(WatchLine(failed),
            "[##########----------]  50%  run 14 tiny-15m 128/1024 tp2 cpu FAILED: rank 1 exited "
            "with signal 9");
}

TEST(WatchLine, SucceededIsFullAndRetriesShowTheAttempt) {
  v1::RunInfo done = MakeRun(15, v1::RUN_STATE_SUCCEEDED, 0.98, 6);
  EXPECT_EQ(WatchLine(done).substr(0, 29), "[####################] 100%  ");
  v1::RunInfo retry = MakeRun(16, v1::RUN_STATE_STARTING);
  retry.set_attempt(2);
  EXPECT_EQ(WatchLine(retry),
            "[--------------------]   0%  run 16 tiny-15m 128/1024 tp2 cpu STARTING attempt 2/2");
}

TEST(FitToWidth, CutsToTheTerminal) {
  EXPECT_EQ(FitToWidth("abcdef", 4), "abcd");
  EXPECT_EQ(FitToWidth("abc", 4), "abc");
  EXPECT_EQ(FitToWidth("abcdef", 0), "abcdef");
  EXPECT_EQ(FitToWidth("h\xc3\xa9llo", 2), "h\xc3\xa9") << "never splits a UTF-8 character";
}

TEST(RedrawFrame, MovesUpClearsAndRewrites) {
  EXPECT_EQ(RedrawFrame(0, {"a", "b"}), "\r\x1b[2Ka\n\r\x1b[2Kb\n\x1b[J");
  EXPECT_EQ(RedrawFrame(3, {"a"}), "\x1b[3A\r\x1b[2Ka\n\x1b[J") << "clears the lines left over";
}

TEST(WatchFrame, ActiveRunsFirstThenACountsLine) {
  std::vector<v1::RunInfo> runs = {MakeRun(1, v1::RUN_STATE_SUCCEEDED, 1, 6),
                                   MakeRun(2, v1::RUN_STATE_PENDING),
                                   MakeRun(3, v1::RUN_STATE_RUNNING, 0.5, 3)};
  auto lines = WatchFrame(runs, 10, 0);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_NE(lines[0].find("run 3 "), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("run 2 "), std::string::npos) << lines[1];
  EXPECT_NE(lines[2].find("run 1 "), std::string::npos) << lines[2];
  EXPECT_EQ(lines[3], "1 running, 1 pending, 1 succeeded, 0 failed, 0 cancelled");
}

TEST(WatchFrame, FitsTheTerminalHeightAndWidth) {
  std::vector<v1::RunInfo> runs;
  for (uint64_t id = 1; id <= 10; ++id) runs.push_back(MakeRun(id, v1::RUN_STATE_RUNNING, 0.1));
  auto lines = WatchFrame(runs, 5, 30);
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[3], "... 7 more runs (7 active)");
  for (const auto& line : lines) EXPECT_LE(line.size(), 30u) << line;
}

TEST(ChangeTracker, ReportsNewRunsAndStateOrPointChangesOnly) {
  ChangeTracker tracker;
  v1::RunInfo r = MakeRun(12, v1::RUN_STATE_PENDING);
  EXPECT_TRUE(tracker.Update(r)) << "first sight";
  EXPECT_FALSE(tracker.Update(r));
  r.set_state(v1::RUN_STATE_RUNNING);
  EXPECT_TRUE(tracker.Update(r)) << "state";
  r.set_progress(0.3);
  EXPECT_FALSE(tracker.Update(r)) << "progress within a point is not a change";
  r.set_points_done(1);
  EXPECT_TRUE(tracker.Update(r)) << "points done";
  EXPECT_FALSE(tracker.Update(r));
  EXPECT_TRUE(tracker.Update(MakeRun(13, v1::RUN_STATE_RUNNING, 0.3, 1))) << "runs are told apart";
}

TEST(CountRuns, ByOutcome) {
  RunCounts c = CountRuns({MakeRun(1, v1::RUN_STATE_PENDING), MakeRun(2, v1::RUN_STATE_PLACED),
                           MakeRun(3, v1::RUN_STATE_STARTING), MakeRun(4, v1::RUN_STATE_SUCCEEDED),
                           MakeRun(5, v1::RUN_STATE_FAILED), MakeRun(6, v1::RUN_STATE_FAILED),
                           MakeRun(7, v1::RUN_STATE_CANCELLED)});
  EXPECT_EQ(c.pending, 2);
  EXPECT_EQ(c.running, 1);
  EXPECT_EQ(c.active(), 3);
  EXPECT_EQ(SummaryLine(c), "done: 1 succeeded, 2 failed, 1 cancelled");
}

TEST(SelectMatrixRuns, TheNewestBatchAndAnythingStillActive) {
  v1::ListRunsReply reply;
  v1::RunInfo old_done = MakeRun(1, v1::RUN_STATE_FAILED);
  v1::RunInfo old_active = MakeRun(2, v1::RUN_STATE_RUNNING);
  v1::RunInfo newest_done = MakeRun(5, v1::RUN_STATE_SUCCEEDED);
  v1::RunInfo newest_pending = MakeRun(4, v1::RUN_STATE_PENDING);
  newest_done.set_batch(2);
  newest_pending.set_batch(2);
  for (const auto& r : {newest_done, old_done, newest_pending, old_active}) *reply.add_runs() = r;
  auto chosen = SelectMatrixRuns(reply);
  ASSERT_EQ(chosen.size(), 3u);
  EXPECT_EQ(chosen[0].id(), 2u);
  EXPECT_EQ(chosen[1].id(), 4u);
  EXPECT_EQ(chosen[2].id(), 5u);
}

}  // namespace
}  // namespace breakeven::cli
