// The sampling rule every backend follows, so that a sample's tokens do not depend on where it
// was drawn.
//
// Greedy (temperature <= 0): the largest logit, the lowest id on a tie. Otherwise, with
// p_i = exp((l_i - max) / T):
//   top-k  keep the tokens whose logit is >= the k-th largest logit (ties at the edge all stay);
//   top-p  of those, most likely first, keep the smallest set whose mass reaches top_p of the
//          kept mass, as a logit threshold again (ties at the edge all stay);
//   draw   target = uniform * kept mass; walk the kept tokens in increasing id order, taking
//          p_i from the target; the first token that takes it below zero is the sample.
// Thresholds instead of a sorted list let a GPU apply the rule with a few reductions per row.
#pragma once

#include <cstdint>
#include <vector>

namespace breakeven::kernels {

struct SampleSpec;

class SampleScratch {
 public:
  std::vector<float> sorted;  // reused across calls
};

int32_t SampleRow(const float* logits, int64_t vocab, float temperature, int top_k, float top_p,
                  double uniform, SampleScratch& scratch);

}  // namespace breakeven::kernels
