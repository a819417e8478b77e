// The load generator: drives an engine with one load point at a time, records every request,
// and runs whole load plans (bench/load_plan.h).
//
// Closed loop (sync, concurrency, throughput): exactly C requests in flight; a finished request
// is replaced at once. Arrival = send time. When every request so far arrived in warm-up
// (requests slower than the window), arrivals go on past the duration until one is measured.
// An open loop whose schedule has no arrival in the window runs on to the first one (up to ten
// windows).
// Open loop (rate): arrival times are drawn up front from a Poisson process (exponential gaps,
// seeded); a sender thread hands each request to the engine at its time, whatever the engine is
// doing, and latency counts from the scheduled arrival. The sender shares no lock with the
// thread that polls responses; it sleeps until 20 us before each arrival, then spins, and asks
// for real-time priority (SCHED_FIFO 1) where the process may have it (root, CAP_SYS_NICE or
// RLIMIT_RTPRIO), else runs at normal priority, where on a machine with busy cores it can be
// late by a scheduler time slice. The send-time error (sent - scheduled) is measured and
// reported (bench/RESULTS.md, "Load generator").
// Both: requests arriving in the first warmup_s are run but not counted; no request arrives at
// or after warmup_s + duration_s or beyond max_requests; the point ends when every request it
// sent has finished (a drain limit cancels stragglers and fails the point rather than hang).
// A point that fails (drain limit, a Submit error, the target's status) cancels the requests it
// still has in flight and returns the error.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "bench/load_plan.h"
#include "bench/request_metrics.h"
#include "bench/workloads.h"
#include "common/clock.h"
#include "common/status.h"
#include "engine/executor.h"

namespace breakeven::bench {

// What a load generator drives. Submit and Poll may be called from different threads.
class LoadTarget {
 public:
  virtual ~LoadTarget() = default;
  virtual Result<engine::RequestId> Submit(engine::GenerationRequest request) = 0;
  // Responses ready now, waiting up to `timeout` for the first.
  virtual std::vector<engine::Response> Poll(Millis timeout) = 0;
  virtual void Cancel(engine::RequestId id) = 0;
  virtual Status status() = 0;
};

// The engine's executor as a target.
std::unique_ptr<LoadTarget> MakeExecutorTarget(engine::Executor& executor);

// A stand-in that answers every request at once, all its tokens stamped with the submit time:
// for measuring the generator itself at rates no engine on this machine could serve.
// Thread-safe.
std::unique_ptr<LoadTarget> MakeInstantTarget();

enum class PointKind { kSync, kConcurrency, kRate, kThroughput };
std::string_view PointKindName(PointKind kind);  // "sync", "concurrency", "rate", "throughput"

struct PointSpec {
  PointKind kind = PointKind::kSync;
  double target = 1;  // in-flight requests (closed loop) or requests/s (open loop)
  double warmup_s = 0;
  double duration_s = 10;
  int64_t max_requests = 1000;
  double drain_limit_s = 600;  // after the last arrival, how long stragglers may take
};

struct PointRun {
  PointSpec spec;
  std::vector<RequestRecord> records;  // the counted requests (after warm-up), in arrival order
  int64_t warmup_requests = 0;
  int64_t window_start_ns = 0;  // end of warm-up
  int64_t window_end_ns = 0;    // when the last counted request finished
  Summary send_error_ms;        // open loop: sent - scheduled; closed loop: zeros
  ServingMetrics metrics;       // of `records` against the plan's SLO
};

class LoadGenerator {
 public:
  // Prompts come from `workload` with token ids below `vocab_size`; every request generates
  // exactly output_tokens (EOS ignored) with `sampling` (its seed varied per request).
  LoadGenerator(LoadTarget& target, const WorkloadSpec& workload, int64_t vocab_size,
                engine::SamplingParams sampling, uint64_t seed);

  // Runs one point. spec.target must be a positive number. Not thread-safe: one point at a time.
  Result<PointRun> RunPoint(const PointSpec& spec, const Slo& slo = {});

 private:
  Result<PointRun> RunClosedLoop(const PointSpec& spec);
  Result<PointRun> RunOpenLoop(const PointSpec& spec);
  engine::GenerationRequest NextRequest();

  LoadTarget& target_;
  WorkloadSpec workload_;
  engine::SamplingParams sampling_;
  PromptGenerator prompts_;
  uint64_t seed_;
  uint64_t issued_total_ = 0;
};

// Runs every point of `plan` (sweep and slo-search pick their later points from the earlier
// ones). `on_point(run, index)` is called after each point. Stops at the first error.
Result<std::vector<PointRun>> RunPlan(LoadGenerator& generator, const LoadPlan& plan,
                                      const Slo& slo,
                                      const std::function<void(const PointRun&, int)>& on_point);

// How many points a plan runs (for progress): exact for sync, concurrency and rate; for sweep and
// slo-search the most it can run (they stop after two points when nothing completed or the SLO
// cannot be bracketed).
int PlannedPoints(const LoadPlan& plan);

}  // namespace breakeven::bench
