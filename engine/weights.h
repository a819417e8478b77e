// Where a model's weights come from, and how a rank reads its shard of them.
//
// Every source answers the same question: "the block [rows) x [cols) of the tensor with this
// Hugging Face name, whose full shape must be this, as this dtype". Sources:
//   dummy        seeded random values, the same for a given (seed, tensor, element) however the
//                tensor is sharded (vLLM's --load-format dummy, made shard-stable)
//   HF directory config.json + *.safetensors (sharded with model.safetensors.index.json)
//   GGUF file    llama.cpp names and layout; Q and K of Llama-architecture files are stored
//                permuted for llama.cpp's interleaved RoPE and are un-permuted on read
// File sources are memory-mapped: a rank touches only the bytes of its own rows and columns.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/model_config.h"
#include "kernels/backend.h"
#include "kernels/dtype.h"

namespace breakeven::engine {

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  virtual std::string Describe() const = 0;
  virtual bool Has(const std::string& name) const = 0;
  // Copies rows [row_begin, row_begin + rows) x cols [col_begin, col_begin + cols) of tensor
  // `name` to dst (packed, row-major) as `dtype`. A 1-D tensor {n} is one row. Errors name the
  // file and tensor: missing, or a shape other than `shape` ("expected 4096x4096, found
  // 4096x1024").
  virtual Status Read(const std::string& name, const std::vector<int64_t>& shape, int64_t row_begin,
                      int64_t rows, int64_t col_begin, int64_t cols, DType dtype, void* dst) = 0;
  // For sources whose values are a formula (dummy weights): the same block as Read, described
  // so a backend can make it where it lives (Backend::FillUniform), with no host copy of the
  // model. Nothing for sources that read files.
  virtual std::optional<kernels::UniformFill> DeviceFill(const std::string& name,
                                                         const std::vector<int64_t>& shape,
                                                         int64_t row_begin,
                                                         int64_t col_begin) const {
    (void)name, (void)shape, (void)row_begin, (void)col_begin;
    return std::nullopt;
  }
};

// Opens `spec`: "dummy" (config from the catalog entry `model`), a Hugging Face model directory,
// or a .gguf file (config from their own metadata). Sets *config.
Result<std::unique_ptr<WeightSource>> OpenWeights(const std::string& spec, const std::string& model,
                                                  uint64_t seed, ModelConfig* config);

std::unique_ptr<WeightSource> MakeDummyWeights(const ModelConfig& config, uint64_t seed);
Result<std::unique_ptr<WeightSource>> OpenHfDirectory(const std::string& dir, ModelConfig* config);
Result<std::unique_ptr<WeightSource>> OpenGguf(const std::string& path, ModelConfig* config);

// The value the dummy source gives element (row, col) of a tensor: deterministic in (seed,
// name, row * cols + col). Linear weights are uniform in +-sqrt(3 / in_features) (unit
// variance of outputs for unit inputs); norm weights 1 +- 0.1; biases +-0.1; embeddings +-0.5.
float DummyValue(uint64_t seed, const std::string& name, const std::vector<int64_t>& shape,
                 int64_t row, int64_t col);
// The same values as a formula for Backend::FillUniform (row_begin and col_begin left 0).
kernels::UniformFill DummyFill(uint64_t seed, const std::string& name,
                               const std::vector<int64_t>& shape);

// The GGUF (llama.cpp) name of a Hugging Face tensor name: "model.layers.3.mlp.up_proj.weight"
// -> "blk.3.ffn_up.weight".
std::string GgufTensorName(const std::string& hf_name);

// Hugging Face tensor names of a Llama-family model.
std::string LayerTensor(int64_t layer, const char* suffix);  // "model.layers.3.<suffix>"
inline constexpr const char* kEmbedTokens = "model.embed_tokens.weight";
inline constexpr const char* kFinalNorm = "model.norm.weight";
inline constexpr const char* kLmHead = "lm_head.weight";

}  // namespace breakeven::engine
