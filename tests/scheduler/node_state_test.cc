// The node state machine, as a table.
#include "scheduler/node_state.h"

#include <gtest/gtest.h>

#include "common/names.h"

namespace breakeven::scheduler {
namespace {

constexpr auto UP = v1::NODE_STATE_UP;
constexpr auto SUSPECT = v1::NODE_STATE_SUSPECT;
constexpr auto DOWN = v1::NODE_STATE_DOWN;
constexpr auto DRAINING = v1::NODE_STATE_DRAINING;
constexpr auto DRAINED = v1::NODE_STATE_DRAINED;

TEST(Liveness, SilenceMovesUpToSuspectToDown) {
  LivenessConfig cfg;  // 1 s heartbeats, SUSPECT at 3 s, DOWN at 5 s
  struct Row {
    v1::NodeState from;
    int silence_ms;
    v1::NodeState to;
  } table[] = {
      {UP, 0, UP},        {UP, 2999, UP},           {UP, 3000, SUSPECT},   {UP, 4999, SUSPECT},
      {UP, 5000, DOWN},   {SUSPECT, 3500, SUSPECT}, {SUSPECT, 5000, DOWN}, {DOWN, 5000, DOWN},
      {DOWN, 3500, DOWN}, {SUSPECT, 100, SUSPECT},  // only a heartbeat makes a node UP again
      {DOWN, 0, DOWN},
  };
  for (const Row& r : table) {
    EXPECT_EQ(LivenessAfterSilence(r.from, Millis(r.silence_ms), cfg), r.to)
        << NodeStateName(r.from) << " after " << r.silence_ms << " ms";
  }
}

TEST(Liveness, ThresholdsAreConfigurable) {
  LivenessConfig cfg{Millis(100), Millis(250), Millis(400)};
  EXPECT_EQ(LivenessAfterSilence(UP, Millis(249), cfg), UP);
  EXPECT_EQ(LivenessAfterSilence(UP, Millis(250), cfg), SUSPECT);
  EXPECT_EQ(LivenessAfterSilence(UP, Millis(400), cfg), DOWN);
}

TEST(DisplayState, DownWinsThenDrainThenLiveness) {
  struct Row {
    v1::NodeState liveness;
    bool drained;
    int runs;
    v1::NodeState shown;
  } table[] = {
      {UP, false, 0, UP},     {SUSPECT, false, 0, SUSPECT}, {DOWN, false, 0, DOWN},
      {UP, true, 0, DRAINED}, {UP, true, 2, DRAINING},      {SUSPECT, true, 0, DRAINED},
      {DOWN, true, 0, DOWN},  {DOWN, true, 3, DOWN},        {UP, false, 5, UP},
  };
  for (const Row& r : table) {
    EXPECT_EQ(DisplayState(r.liveness, r.drained, r.runs), r.shown)
        << NodeStateName(r.liveness) << " drained=" << r.drained << " runs=" << r.runs;
  }
}

TEST(LivenessConfig, ValidateNamesTheFlags) {
  EXPECT_TRUE(LivenessConfig{}.Validate().ok());
  Status s = LivenessConfig{Millis(1000), Millis(5000), Millis(4000)}.Validate();
  EXPECT_NE(s.message().find("--down-after-ms"), std::string::npos);
  s = LivenessConfig{Millis(3000), Millis(3000), Millis(5000)}.Validate();
  EXPECT_NE(s.message().find("--suspect-after-ms"), std::string::npos);
  s = LivenessConfig{Millis(0), Millis(3000), Millis(5000)}.Validate();
  EXPECT_NE(s.message().find("--heartbeat-interval-ms"), std::string::npos);
}

}  // namespace
}  // namespace breakeven::scheduler
