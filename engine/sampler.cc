#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

namespace breakeven::engine {

namespace {

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Uniform in [0, 1) from 53 random bits: the same on every standard library.
double Uniform(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

}  // namespace

std::mt19937_64 SampleRng(uint64_t seed, int index) {
  return std::mt19937_64(SplitMix64(SplitMix64(seed) ^ static_cast<uint64_t>(index)));
}

int32_t Sampler::Sample(const float* logits, int64_t vocab, const SamplingParams& params,
                        std::mt19937_64& rng) {
  if (params.temperature <= 0) {
    int64_t best = 0;
    for (int64_t i = 1; i < vocab; ++i) {
      if (logits[i] > logits[best]) best = i;
    }
    return static_cast<int32_t>(best);
  }
  if (params.top_k <= 0 && params.top_p >= 1) {
    // No cut: draw from the full distribution without sorting it.
    float max = logits[0];
    for (int64_t i = 1; i < vocab; ++i) max = std::max(max, logits[i]);
    double sum = 0;
    for (int64_t i = 0; i < vocab; ++i) sum += std::exp((logits[i] - max) / params.temperature);
    double target = Uniform(rng) * sum;
    for (int64_t i = 0; i < vocab; ++i) {
      target -= std::exp((logits[i] - max) / params.temperature);
      if (target < 0) return static_cast<int32_t>(i);
    }
    return static_cast<int32_t>(vocab - 1);
  }
  candidates_.resize(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i) {
    candidates_[static_cast<size_t>(i)] = {logits[i], static_cast<int32_t>(i)};
  }
  auto by_logit = [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  size_t keep = candidates_.size();
  if (params.top_k > 0 && static_cast<size_t>(params.top_k) < keep) {
    keep = static_cast<size_t>(params.top_k);
    std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<std::ptrdiff_t>(keep),
                      candidates_.end(), by_logit);
  } else {
    std::sort(candidates_.begin(), candidates_.end(), by_logit);
  }
  // Probabilities over the kept candidates, most likely first.
  const double max = candidates_[0].first;
  std::vector<double> probs(keep);
  double sum = 0;
  for (size_t i = 0; i < keep; ++i) {
    probs[i] = std::exp((candidates_[i].first - max) / params.temperature);
    sum += probs[i];
  }
  if (params.top_p < 1) {
    double cumulative = 0;
    size_t cut = keep;
    for (size_t i = 0; i < keep; ++i) {
      cumulative += probs[i] / sum;
      if (cumulative >= params.top_p) {
        cut = i + 1;
        break;
      }
    }
    keep = cut;
    sum = 0;
    for (size_t i = 0; i < keep; ++i) sum += probs[i];
  }
  double target = Uniform(rng) * sum;
  for (size_t i = 0; i < keep; ++i) {
    target -= probs[i];
    if (target < 0) return candidates_[i].second;
  }
  return candidates_[keep - 1].second;
}

}  // namespace breakeven::engine
