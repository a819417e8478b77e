#include "scheduler/config.h"

#include <algorithm>

namespace breakeven::scheduler {

Millis SchedulerConfig::SweepInterval() const {
  return std::clamp(liveness.heartbeat_interval / 4, Millis(10), Millis(250));
}

Status SchedulerConfig::Validate() const {
  BE_RETURN_IF_ERROR(liveness.Validate());
  if (hello_timeout.count() <= 0) {
    return InvalidArgument("--hello-timeout-ms must be positive (got {})", hello_timeout.count());
  }
  if (max_frame_bytes < 1024 || max_frame_bytes > (256u << 20)) {
    return InvalidArgument("--max-frame-bytes must be between 1024 and {} (got {})", 256u << 20,
                           max_frame_bytes);
  }
  if (db_path.empty()) return InvalidArgument("--db must name a file");
  return Status::Ok();
}

}  // namespace breakeven::scheduler
