// Scheduler settings, from the command line (scheduler/main.cc). Defaults suit a small cluster.
#pragma once

#include <string>

#include "common/clock.h"
#include "common/endpoint.h"
#include "common/framing.h"
#include "scheduler/node_state.h"

namespace breakeven::scheduler {

struct SchedulerConfig {
  HostPort listen{"127.0.0.1", 7070};  // protobuf frames: nodes, workers, admin clients
  HostPort http{"127.0.0.1", 7080};    // /healthz, /metrics, /sd/workers
  std::string db_path = "breakeven.db";
  LivenessConfig liveness;
  Millis hello_timeout{5000};        // a connection must say Hello within this
  Millis admin_idle_timeout{60000};  // admin connections idle longer are closed
  // Heartbeat times reach the database in a rolling pass: every flush tick writes up to
  // heartbeat_flush_rows changed rows (about 1,000 rows/s at the defaults), so the database's
  // last_heartbeat_unix_ms lags the live value by at most max(tick, nodes / 1000 s).
  Millis heartbeat_flush_interval{250};
  Millis run_tick_interval{500};  // schedules, placement and run deadlines
  size_t heartbeat_flush_rows = 250;
  size_t max_frame_bytes = kDefaultMaxFrameBytes;
  int default_event_limit = 50;

  // How long a node's connection may be silent before it is closed; longer than down_after so
  // liveness, not the socket, decides the node's state.
  Millis NodeReadTimeout() const { return liveness.down_after * 2; }
  // How often liveness is re-evaluated.
  Millis SweepInterval() const;

  // Errors name the flag.
  Status Validate() const;
};

}  // namespace breakeven::scheduler
