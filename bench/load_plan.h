// How load is applied to a run, and the service-level objective it is judged against.
//
// Patterns (one run measures several load points with the model loaded once):
//   sync         one request at a time (closed loop, concurrency 1)
//   concurrency  a closed-loop ladder: exactly C requests in flight, for each C listed
//   rate         open-loop Poisson arrivals at each rate listed (requests/s); latency is measured
//                from each request's scheduled arrival, so a slow engine cannot hide queueing
//                (no coordinated omission)
//   sweep        sync, then throughput (every request at once), then `sweep_points` Poisson rates
//                spaced evenly between the two request rates measured (as GuideLLM and Modal)
//   slo-search   sync and throughput to bracket, then bisection on the Poisson rate for the
//                highest rate whose point meets the SLO (`search_steps` probes)
// Every point runs warmup_s then duration_s; requests that arrive during warm-up do not count.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/workloads.h"
#include "common/status.h"

namespace breakeven::bench {

enum class LoadPattern { kSync, kConcurrency, kRate, kSweep, kSloSearch };
std::string_view LoadPatternName(LoadPattern p);  // "sync", "concurrency", ...
std::optional<LoadPattern> ParseLoadPattern(std::string_view name);

inline constexpr int64_t kMaxRequestsPerPoint = 100000;

struct LoadPlan {
  LoadPattern pattern = LoadPattern::kSweep;
  std::vector<int64_t> concurrency;  // for kConcurrency
  std::vector<double> rates;         // requests/s, for kRate
  int sweep_points = 4;
  int search_steps = 5;
  double warmup_s = 2;
  double duration_s = 10;
  int64_t max_requests = 1000;   // per point, warm-up included: every point ends (at most
                                 // kMaxRequestsPerPoint)
  int64_t max_concurrency = 64;  // the throughput point's in-flight cap

  Status Validate() const;  // errors name the field
};

// One objective: the given percentile (0 = the mean) of a latency metric must not exceed the
// limit. Metrics: ttft, tpot, itl, e2e.
struct SloTerm {
  std::string metric;
  int percentile = 95;  // 50, 90, 95, 99; 0 = mean
  double limit_ms = 0;

  std::string Name() const;  // "ttft_p95"
};

struct Slo {
  std::vector<SloTerm> terms;
  bool empty() const { return terms.empty(); }
  std::string ToString() const;  // "ttft_p95=500ms,tpot_p95=50ms"
};

// Parses "ttft_p95=500ms,tpot_p95=50ms" (units ms or s; "mean" for the mean, as ttft_mean=200ms).
// Errors name the term: "slo 'ttft_p95=fast': 'fast' is not a duration like 500ms".
Result<Slo> ParseSlo(std::string_view text);

// Everything rank 0 of a run needs to drive it: stored as JSON in runs.load_json and handed to
// the worker. {"workload": {...}, "plan": {...}, "slo": "ttft_p95=500ms,...", "seed": N}
struct RunLoad {
  WorkloadSpec workload;
  LoadPlan plan;
  Slo slo;
  uint64_t seed = 0;
};
std::string EncodeLoadJson(const RunLoad& load);
Result<RunLoad> DecodeLoadJson(std::string_view json);  // errors name the field

}  // namespace breakeven::bench
