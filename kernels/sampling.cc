#include "kernels/sampling.h"

#include <algorithm>
#include <cmath>
#include <functional>

namespace breakeven::kernels {

int32_t SampleRow(const float* logits, int64_t vocab, float temperature, int top_k, float top_p,
                  double uniform, SampleScratch& scratch) {
  int64_t best = 0;
  for (int64_t i = 1; i < vocab; ++i) {
    if (logits[i] > logits[best]) best = i;
  }
  if (temperature <= 0) return static_cast<int32_t>(best);
  const double max = logits[best];
  auto prob = [&](float l) { return std::exp((static_cast<double>(l) - max) / temperature); };

  // The smallest logit that stays: -inf keeps everything.
  float threshold = -INFINITY;
  const bool cut_k = top_k > 0 && top_k < vocab;
  const bool cut_p = top_p < 1;
  if (cut_k || cut_p) {
    std::vector<float>& sorted = scratch.sorted;
    sorted.assign(logits, logits + vocab);
    size_t keep = sorted.size();
    if (cut_k) {
      keep = static_cast<size_t>(top_k);
      std::partial_sort(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(keep),
                        sorted.end(), std::greater<float>());
      threshold = sorted[keep - 1];
    } else {
      std::sort(sorted.begin(), sorted.end(), std::greater<float>());
    }
    if (cut_p) {
      double kept_mass = 0;
      for (int64_t i = 0; i < vocab; ++i) {
        if (logits[i] >= threshold) kept_mass += prob(logits[i]);
      }
      double cumulative = 0;
      for (size_t i = 0; i < keep; ++i) {
        cumulative += prob(sorted[i]);
        if (cumulative >= top_p * kept_mass) {
          threshold = sorted[i];
          break;
        }
      }
    }
  }
  double mass = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    if (logits[i] >= threshold) mass += prob(logits[i]);
  }
  double target = uniform * mass;
  int64_t last = best;
  for (int64_t i = 0; i < vocab; ++i) {
    if (logits[i] < threshold) continue;
    target -= prob(logits[i]);
    if (target < 0) return static_cast<int32_t>(i);
    last = i;
  }
  return static_cast<int32_t>(last);
}

}  // namespace breakeven::kernels
