// The closed-loop load generator: keeps exactly `concurrency` requests in the engine until
// `requests` have completed. Prompts are random token ids (seeded, so runs are comparable);
// every request asks for exactly output_tokens tokens (EOS ignored), as vLLM's benchmark does
// for random datasets.
#pragma once

#include <cstdint>
#include <vector>

#include "bench/request_metrics.h"
#include "common/status.h"
#include "engine/executor.h"

namespace breakeven::bench {

struct ClosedLoopSpec {
  int64_t input_tokens = 128;
  int64_t output_tokens = 128;
  int64_t concurrency = 1;
  int64_t requests = 8;
  uint64_t seed = 0;
  engine::SamplingParams sampling;  // ignore_eos is forced on
};

// Runs the load to completion. Fails if the engine fails or a request is refused.
Result<std::vector<RequestRecord>> RunClosedLoop(engine::Executor& executor,
                                                 const ClosedLoopSpec& spec, int64_t vocab_size);

}  // namespace breakeven::bench
