#include "engine/rope.h"

#include <cmath>
#include <numbers>

namespace breakeven::engine {

namespace {

std::vector<double> Unscaled(const ModelConfig& c) {
  const int64_t half = c.head_dim / 2;
  std::vector<double> inv(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    inv[static_cast<size_t>(i)] =
        1.0 / std::pow(c.rope_theta, static_cast<double>(2 * i) / static_cast<double>(c.head_dim));
  }
  return inv;
}

void ApplyLlama3(const RopeScaling& s, std::vector<double>* inv) {
  const double low_wavelen =
      static_cast<double>(s.original_max_position_embeddings) / s.low_freq_factor;
  const double high_wavelen =
      static_cast<double>(s.original_max_position_embeddings) / s.high_freq_factor;
  for (double& f : *inv) {
    const double wavelen = 2 * std::numbers::pi / f;
    if (wavelen < high_wavelen) continue;
    if (wavelen > low_wavelen) {
      f /= s.factor;
      continue;
    }
    const double smooth =
        (static_cast<double>(s.original_max_position_embeddings) / wavelen - s.low_freq_factor) /
        (s.high_freq_factor - s.low_freq_factor);
    f = (1 - smooth) * f / s.factor + smooth * f;
  }
}

}  // namespace

std::vector<double> RopeInverseFrequencies(const ModelConfig& c) {
  std::vector<double> inv = Unscaled(c);
  if (!c.rope_freq_factors.empty()) {
    for (size_t i = 0; i < inv.size() && i < c.rope_freq_factors.size(); ++i) {
      inv[i] /= c.rope_freq_factors[i];
    }
  } else if (c.rope_scaling.factor > 0) {
    ApplyLlama3(c.rope_scaling, &inv);
  }
  return inv;
}

std::vector<float> Llama3FreqFactors(const ModelConfig& c) {
  std::vector<double> base = Unscaled(c);
  std::vector<double> scaled = base;
  if (c.rope_scaling.factor > 0) ApplyLlama3(c.rope_scaling, &scaled);
  std::vector<float> out(base.size());
  for (size_t i = 0; i < base.size(); ++i) out[i] = static_cast<float>(base[i] / scaled[i]);
  return out;
}

void RopeAngles(const std::vector<double>& inv_freq, const int32_t* positions, int64_t n,
                float* cos_out, float* sin_out) {
  const size_t half = inv_freq.size();
  for (int64_t t = 0; t < n; ++t) {
    for (size_t i = 0; i < half; ++i) {
      const double angle = static_cast<double>(positions[t]) * inv_freq[i];
      cos_out[static_cast<size_t>(t) * half + i] = static_cast<float>(std::cos(angle));
      sin_out[static_cast<size_t>(t) * half + i] = static_cast<float>(std::sin(angle));
    }
  }
}

}  // namespace breakeven::engine
