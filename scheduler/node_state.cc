#include "scheduler/node_state.h"

namespace breakeven::scheduler {

Status LivenessConfig::Validate() const {
  if (heartbeat_interval.count() <= 0) {
    return InvalidArgument("--heartbeat-interval-ms must be positive (got {})",
                           heartbeat_interval.count());
  }
  if (suspect_after <= heartbeat_interval) {
    return InvalidArgument(
        "--suspect-after-ms ({}) must be longer than --heartbeat-interval-ms ({})",
        suspect_after.count(), heartbeat_interval.count());
  }
  if (down_after <= suspect_after) {
    return InvalidArgument("--down-after-ms ({}) must be longer than --suspect-after-ms ({})",
                           down_after.count(), suspect_after.count());
  }
  return Status::Ok();
}

v1::NodeState LivenessAfterSilence(v1::NodeState current, Millis silence,
                                   const LivenessConfig& config) {
  if (silence >= config.down_after) return v1::NODE_STATE_DOWN;
  if (silence >= config.suspect_after) {
    return current == v1::NODE_STATE_DOWN ? v1::NODE_STATE_DOWN : v1::NODE_STATE_SUSPECT;
  }
  return current;
}

v1::NodeState DisplayState(v1::NodeState liveness, bool drained, int active_runs) {
  if (liveness == v1::NODE_STATE_DOWN) return v1::NODE_STATE_DOWN;
  if (drained) return active_runs > 0 ? v1::NODE_STATE_DRAINING : v1::NODE_STATE_DRAINED;
  return liveness;
}

}  // namespace breakeven::scheduler
