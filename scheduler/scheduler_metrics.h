// The scheduler's /metrics: the families of docs/observability.md ("Scheduler"), owned by the
// Server and updated where the events happen (sessions, the run manager, the node registry).
// Gauges that are cheaper to read than to keep current (nodes and runs by state, the queue) are
// filled by OnScrape callbacks the Server installs.
//
// Everything here is touched from the scheduler's one event-loop thread, except the metric
// values themselves, which are atomics (common/metrics.h).
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <string_view>

#include "common/metrics.h"
#include "common/status.h"
#include "proto/breakeven.pb.h"

namespace breakeven::scheduler {

class SchedulerMetrics {
 public:
  SchedulerMetrics();

  // The frames_total child for frames like `frame` on a connection of `role`: made on first use,
  // then cached, since every frame comes this way. Event-loop thread only.
  metrics::Counter& FrameCounter(const v1::Envelope& frame, v1::Role role);

  metrics::Registry registry;
  metrics::Family<metrics::Gauge>& nodes;                 // {state}
  metrics::Family<metrics::Gauge>& runs;                  // {state}
  metrics::Gauge& queue_depth;                            // runs waiting for placement
  metrics::Gauge& queue_oldest_age_seconds;               // 0 when none waits
  metrics::Family<metrics::Counter>& placements;          // {result}: placed, waiting
  metrics::Histogram& heartbeat_duration_seconds;         // handling one heartbeat
  metrics::Family<metrics::Counter>& frames;              // {type}
  metrics::Family<metrics::Counter>& frames_refused;      // {reason}
  metrics::Family<metrics::Histogram>& db_write_seconds;  // {operation}

 private:
  std::map<std::pair<int, int>, metrics::Counter*> frame_counters_;  // (body case, role)
};

// Times SQLite write transactions into breakeven_scheduler_db_write_duration_seconds. A
// default-constructed one (no family: unit tests, tools) only runs the writes.
class DbWriteTimer {
 public:
  DbWriteTimer() = default;
  explicit DbWriteTimer(metrics::Family<metrics::Histogram>* family) : family_(family) {}

  // Runs `write` (returning Status or Result<T>) and records its duration under `operation`,
  // whether it succeeded or not: a failing write's time is time the event loop spent.
  template <typename Write>
  auto Time(std::string_view operation, Write&& write) const -> decltype(write()) {
    if (family_ == nullptr) return write();
    const auto start = std::chrono::steady_clock::now();
    auto result = write();
    Observe(operation,
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    return result;
  }

 private:
  void Observe(std::string_view operation, double seconds) const;

  metrics::Family<metrics::Histogram>* family_ = nullptr;
};

// The `type` label of a frame: its body's field name, with the families the catalog names
// folded together ("register" for register_node, "store" for the rendezvous store, "admin" for
// any request on an admin connection).
std::string FrameType(const v1::Envelope& frame, v1::Role role);

// The `reason` label of a refusal. The log keeps the finer reason the session gives (tests and
// operators grep for it); the metric uses the catalog's names where they differ: oversized,
// malformed, unknown_type (a body this connection's role cannot send).
std::string RefusalReason(std::string_view logged_reason);

}  // namespace breakeven::scheduler
