// Writing a model out of any weight source: a Hugging Face directory (config.json +
// safetensors, optionally sharded with model.safetensors.index.json) or a GGUF file laid out as
// llama.cpp's converter writes it (its tensor names, Q/K rows permuted for interleaved RoPE on
// Llama-architecture models, Llama-3 scaling as a rope_freqs tensor). Used to make test fixtures
// and to hand dummy models to other engines.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "engine/model_config.h"
#include "engine/weights.h"

namespace breakeven::engine {

// Every tensor of the model with its Hugging Face name and shape, in checkpoint order.
std::vector<std::pair<std::string, std::vector<int64_t>>> ModelTensors(const ModelConfig& config);

// The config.json Hugging Face would write for `config`.
std::string HfConfigJson(const ModelConfig& config);

// Writes `dir`/config.json and the weights as `dtype`, split over `shards` files (an index when
// more than one).
Status ExportHfDirectory(WeightSource& source, const ModelConfig& config, const std::string& dir,
                         DType dtype, int shards = 1);

// Writes one GGUF file with tensors in `dtype`.
Status ExportGguf(WeightSource& source, const ModelConfig& config, const std::string& path,
                  DType dtype);

}  // namespace breakeven::engine
