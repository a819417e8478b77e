// Per-request timing records and the serving metrics computed from them.
//
// Definitions (the same for every benchmark in the project):
//   TTFT  time to first token: first token's time - the request's start time
//   TPOT  time per output token, per request: (last token - first token) / (output tokens - 1);
//         requests with one output token have none
//   ITL   inter-token latency: every gap between consecutive tokens of a sample
//   E2E   end-to-end latency: last token - start
//   output tokens/s   all output tokens / (last token of the run - first start of the run)
//   total tokens/s    (input + output tokens) / the same duration
// A request's start time is when it was handed to the engine (closed loop); an open-loop
// generator will use the scheduled arrival time instead, so queueing counts against latency.
// Percentiles follow bench/percentiles.h.
#pragma once

#include <cstdint>
#include <vector>

#include "bench/percentiles.h"

namespace breakeven::bench {

struct RequestRecord {
  int64_t start_ns = 0;
  int64_t input_tokens = 0;
  std::vector<int64_t> token_times_ns;  // of sample 0; other samples count as output only
  int64_t output_tokens = 0;            // all samples
  bool ok = true;
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
};

ServingMetrics ComputeMetrics(const std::vector<RequestRecord>& records);

}  // namespace breakeven::bench
