#include "scheduler/scheduler_metrics.h"

#include "common/version.h"

namespace breakeven::scheduler {

namespace {

// A heartbeat is a map lookup and a queued reply (tens of microseconds); the upper buckets are
// there to show a stalled event loop.
std::vector<double> HeartbeatBuckets() { return metrics::ExponentialBuckets(1e-5, 4, 10); }

}  // namespace

SchedulerMetrics::SchedulerMetrics()
    : nodes(registry.AddGauge("breakeven_scheduler_nodes",
                              "Registered nodes by state (UP, SUSPECT, DOWN, DRAINING, DRAINED).",
                              {"state"})),
      runs(registry.AddGauge("breakeven_scheduler_runs",
                             "Benchmark runs by state (PENDING, STARTING, RUNNING, SUCCEEDED, "
                             "FAILED, CANCELLED).",
                             {"state"})),
      queue_depth(registry
                      .AddGauge("breakeven_scheduler_queue_depth",
                                "Runs waiting for placement (state PENDING).")
                      .Get()),
      queue_oldest_age_seconds(registry
                                   .AddGauge("breakeven_scheduler_queue_oldest_age_seconds",
                                             "Seconds the oldest waiting run has waited for "
                                             "placement; 0 when none waits.")
                                   .Get()),
      placements(registry.AddCounter("breakeven_scheduler_placements_total",
                                     "Placement attempts of pending runs by result: placed (an "
                                     "attempt started) or waiting (no room yet).",
                                     {"result"})),
      heartbeat_duration_seconds(
          registry
              .AddHistogram("breakeven_scheduler_heartbeat_duration_seconds",
                            "Seconds the event loop spent handling one node heartbeat.",
                            HeartbeatBuckets())
              .Get()),
      frames(registry.AddCounter("breakeven_scheduler_frames_total",
                                 "Frames received, by body type.", {"type"})),
      frames_refused(registry.AddCounter(
          "breakeven_scheduler_frames_refused_total",
          "Connections or frames refused (an Error frame, then the connection closed), by reason.",
          {"reason"})),
      db_write_seconds(
          registry.AddHistogram("breakeven_scheduler_db_write_duration_seconds",
                                "Seconds of each SQLite write transaction, by operation.",
                                metrics::LatencyBuckets(), {"operation"})) {
  registry
      .AddGauge("breakeven_build_info", "Constant 1, labelled with the program and its version.",
                {"component", "version"})
      .WithLabels({"scheduler", std::string(kVersion)})
      .Set(1);
  // Series that dashboards read exist from the first scrape, at 0.
  for (const char* result : {"placed", "waiting"}) placements.WithLabels({result});
  for (const char* type : {"hello", "register", "heartbeat", "run_event", "admin", "store"}) {
    frames.WithLabels({type});
  }
  for (const char* reason :
       {"bad_token", "before_hello", "oversized", "malformed", "unknown_type"}) {
    frames_refused.WithLabels({reason});
  }
  for (const char* op : {"heartbeat_flush", "run_update", "results"})
    db_write_seconds.WithLabels({op});
}

metrics::Counter& SchedulerMetrics::FrameCounter(const v1::Envelope& frame, v1::Role role) {
  metrics::Counter*& counter =
      frame_counters_[{static_cast<int>(frame.body_case()), static_cast<int>(role)}];
  if (counter == nullptr) counter = &frames.WithLabels({FrameType(frame, role)});
  return *counter;
}

void DbWriteTimer::Observe(std::string_view operation, double seconds) const {
  family_->WithLabels({std::string(operation)}).Observe(seconds);
}

std::string FrameType(const v1::Envelope& frame, v1::Role role) {
  switch (frame.body_case()) {
    case v1::Envelope::kHello:
      return "hello";
    case v1::Envelope::kRegisterNode:
      return "register";
    case v1::Envelope::kHeartbeat:
      return "heartbeat";
    case v1::Envelope::kRunEvent:
      return "run_event";
    case v1::Envelope::kStoreSet:
    case v1::Envelope::kStoreGet:
      return "store";
    case v1::Envelope::BODY_NOT_SET:
      return "empty";
    default:
      break;
  }
  if (role == v1::ROLE_ADMIN) return "admin";
  const auto* field = v1::Envelope::descriptor()->FindFieldByNumber(frame.body_case());
  return field ? field->name() : "unknown";
}

std::string RefusalReason(std::string_view logged_reason) {
  if (logged_reason == "oversized_frame") return "oversized";
  if (logged_reason == "malformed_frame") return "malformed";
  if (logged_reason == "protocol") return "unknown_type";
  return std::string(logged_reason);
}

}  // namespace breakeven::scheduler
