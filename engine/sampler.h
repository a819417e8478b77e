// Choosing the next token from a row of logits.
#pragma once

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

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

class Sampler {
 public:
  // Greedy when temperature == 0 (the lowest id wins a tie). Otherwise: softmax(logits / T),
  // keep the top_k most likely (if top_k > 0), then the smallest prefix of those, most likely
  // first, whose probability reaches top_p, renormalise and draw with `rng`.
  int32_t Sample(const float* logits, int64_t vocab, const SamplingParams& params,
                 std::mt19937_64& rng);

 private:
  std::vector<std::pair<float, int32_t>> candidates_;  // scratch, reused across calls
};

}  // namespace breakeven::engine
