// Rotary position embedding angles.
//
// inv_freq[i] = theta^(-2i / head_dim) for i < head_dim / 2, then Llama-3 scaling (as in Hugging
// Face's _compute_llama3_parameters): frequencies whose wavelength is shorter than
// original_max / high_freq_factor stay, longer than original_max / low_freq_factor are divided
// by factor, and those in between are blended. A GGUF file's rope_freqs tensor divides them
// directly instead. A token at position p is rotated by p * inv_freq[i].
#pragma once

#include <cstdint>
#include <vector>

#include "engine/model_config.h"

namespace breakeven::engine {

std::vector<double> RopeInverseFrequencies(const ModelConfig& config);

// The divisors that turn unscaled inverse frequencies into Llama-3-scaled ones (what llama.cpp
// stores as rope_freqs.weight); all ones without scaling.
std::vector<float> Llama3FreqFactors(const ModelConfig& config);

// cos and sin (positions.size(), head_dim / 2), row-major, of every position's angles.
void RopeAngles(const std::vector<double>& inv_freq, const int32_t* positions, int64_t n,
                float* cos_out, float* sin_out);

}  // namespace breakeven::engine
