// An independent Llama forward pass for tests: double precision, whole sequences, no cache, no
// sharding, written as plainly as the equations. The engine's logits are checked against it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/model_config.h"

namespace breakeven::testing {

// Returns a full tensor by HF name and shape (row-major), as doubles.
using TensorFn =
    std::function<std::vector<double>(const std::string& name, const std::vector<int64_t>& shape)>;

// Logits (tokens.size(), vocab) of a causal forward pass over `tokens`, positions 0..n-1.
std::vector<double> ReferenceLogits(const engine::ModelConfig& config, const TensorFn& weights,
                                    const std::vector<int32_t>& tokens);

// The dummy source's tensors, element by element (engine::DummyValue).
TensorFn DummyTensors(uint64_t seed);

// Small shapes that exercise every feature: GQA, untied or tied embeddings, QKV bias, Llama-3
// RoPE scaling. All divide tp 1, 2 and 4.
engine::ModelConfig SmallLlama();  // GQA 8/4 heads, untied, Llama-3 scaling
engine::ModelConfig SmallQwen2();  // QKV bias, tied, theta 1e6
engine::ModelConfig SmallMha();    // 4 heads = 4 KV heads, tied

// max |a - b| / max |b|
double RelativeError(const std::vector<double>& reference, const std::vector<float>& actual);
double RelativeError(const std::vector<float>& reference, const std::vector<float>& actual);

}  // namespace breakeven::testing
