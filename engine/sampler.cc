#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "kernels/sampling.h"

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

double UniformDraw(std::mt19937_64& rng) { return Uniform(rng); }

int32_t Sampler::Sample(const float* logits, int64_t vocab, const SamplingParams& params,
                        std::mt19937_64& rng) {
  // Greedy draws no number, so a greedy sample's generator stays where it was.
  const double u = params.temperature <= 0 ? 0.0 : Uniform(rng);
  return kernels::SampleRow(logits, vocab, params.temperature, params.top_k, params.top_p, u,
                            scratch_);
}

}  // namespace breakeven::engine
