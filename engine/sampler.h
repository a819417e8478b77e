// Choosing the next token from a row of logits.
#pragma once

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "kernels/sampling.h"

namespace breakeven::engine {

struct SamplingParams {
  float temperature = 0;  // 0: greedy
  int top_k = 0;          // 0: no top-k cut
  float top_p = 1;        // 1: no nucleus cut
  uint64_t seed = 0;      // with n samples, sample i uses a generator derived from (seed, i)
  int n = 1;              // samples of one prompt; they share the prompt's KV blocks
  bool ignore_eos = false;
};

// The generator of sample `index` of a request seeded with `seed` (splitmix64 of the pair, so
// neighbouring seeds and indices give unrelated streams).
std::mt19937_64 SampleRng(uint64_t seed, int index);

// The uniform number in [0, 1) a sample draws per token (53 bits of `rng`).
double UniformDraw(std::mt19937_64& rng);

class Sampler {
 public:
  // kernels::SampleRow's rule: greedy when temperature <= 0 (the lowest id wins a tie, and no
  // number is drawn); otherwise softmax(logits / T), the top_k and top_p cuts as logit
  // thresholds, and one UniformDraw from `rng` placed in the kept mass in id order.
  int32_t Sample(const float* logits, int64_t vocab, const SamplingParams& params,
                 std::mt19937_64& rng);

 private:
  kernels::SampleScratch scratch_;
};

}  // namespace breakeven::engine
