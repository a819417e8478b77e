// The node state machine.
//
// A node has two independent facts: its liveness, decided by heartbeats (UP, SUSPECT, DOWN), and
// whether an operator drained it (with a reason). The state people see combines them:
//
//   liveness DOWN                          -> DOWN      (whatever else is true)
//   drained, runs still active             -> DRAINING
//   drained, idle                          -> DRAINED
//   otherwise                              -> UP or SUSPECT, as liveness says
//
// Liveness moves on silence (time since the last heartbeat) and on heartbeats:
//
//   UP      --silence >= suspect_after--> SUSPECT --silence >= down_after--> DOWN
//   SUSPECT --heartbeat--> UP;  DOWN --heartbeat--> UP (the agent came back)
//
// Keeping the drain separate means a drained node that reboots comes back drained, as in Slurm.
#pragma once

#include <chrono>

#include "common/clock.h"
#include "common/status.h"
#include "proto/breakeven.pb.h"

namespace breakeven::scheduler {

struct LivenessConfig {
  Millis heartbeat_interval{1000};
  Millis suspect_after{3000};
  Millis down_after{5000};

  // Errors name the flags: intervals must be positive and ordered interval < suspect < down.
  Status Validate() const;
};

// Liveness after `silence` without a heartbeat, starting from `current` (UP, SUSPECT or DOWN).
// Silence never makes a node more alive: a DOWN node stays DOWN until it heartbeats.
v1::NodeState LivenessAfterSilence(v1::NodeState current, Millis silence,
                                   const LivenessConfig& config);

// The state shown for a node (see the table above).
v1::NodeState DisplayState(v1::NodeState liveness, bool drained, int active_runs);

}  // namespace breakeven::scheduler
