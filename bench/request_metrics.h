// Per-request timing records and the serving metrics computed from them: one definition for the
// whole project (docs/metrics.md maps each to the names vLLM, GenAI-Perf/AIPerf, GuideLLM and
// LLMPerf use).
//
//   arrival  the request's scheduled arrival: the Poisson schedule's time under open-loop load,
//            the moment it was sent under closed-loop load. Latencies count from here, so a
//            request that waits to be sent still pays for the wait (no coordinated omission).
//   TTFT     first token - arrival
//   E2E      last token - arrival
//   TPOT     per request: (last token - first token) / (output tokens - 1); requests with one
//            output token have none. Counts tokens, not chunks.
//   ITL      every gap between consecutive chunks of a request (a chunk = tokens that arrive at
//            the same time, e.g. when an engine emits several per step), pooled over requests
//   output tokens/s  output tokens of successful requests / duration; total tokens/s adds their
//            input tokens; requests/s counts successful requests; duration = last token of the
//            point - first arrival of the point (failed requests included in both ends)
//   goodput  successful requests/s that met every SLO term individually: a request meets
//            ttft_p95 <= 500ms when its own TTFT <= 500 ms (likewise E2E and TPOT; a term on a
//            value the request lacks, as TPOT of one token, holds), and itl_p95 <= 50ms when the
//            95th percentile of its own chunk gaps is <= 50 ms; SLO attainment = their share of
//            all requests, failed ones included (0 for no requests)
//   meets SLO  (a whole point) no request failed, at least one succeeded, and every term's
//            percentile (or mean) over the point is within its limit
// Only sample 0's token times are timed; the other samples of an n-sample request add to the
// output token counts. Percentiles follow bench/percentiles.h.
#pragma once

#include <cstdint>
#include <vector>

#include "bench/load_plan.h"
#include "bench/percentiles.h"

namespace breakeven::bench {

struct RequestRecord {
  int64_t arrival_ns = 0;  // scheduled arrival
  int64_t sent_ns = 0;     // handed to the engine
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;            // every sample
  std::vector<int64_t> token_times_ns;  // sample 0: one entry per token; a chunk shares a time
  bool ok = true;

  int64_t chunks() const;  // distinct token times
};

struct ServingMetrics {
  int64_t requests = 0;
  int64_t failed = 0;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  double duration_s = 0;
  double output_tokens_per_s = 0;
  double total_tokens_per_s = 0;
  double requests_per_s = 0;
  Summary ttft_ms, tpot_ms, itl_ms, e2e_ms;
  double goodput_requests_per_s = 0;  // with an empty SLO: equal to requests_per_s
  double slo_attainment = 1;
  bool meets_slo = true;
};

ServingMetrics ComputeMetrics(const std::vector<RequestRecord>& records, const Slo& slo = {});

// The value of one SLO term over a point (its percentile of the metric, or the mean).
double SloValue(const ServingMetrics& m, const SloTerm& term);

}  // namespace breakeven::bench
