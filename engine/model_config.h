// The shape of a Llama-family model: everything the engine needs to lay out weights, the KV
// cache and the forward pass. Llama 2/3 (with Llama-3 RoPE scaling), Mistral and Qwen2 share it;
// they differ in the fields below (Qwen2: QKV bias; Llama-3.2: tied embeddings; ...).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "kernels/dtype.h"

namespace breakeven::engine {

// Llama-3's RoPE frequency scaling ("rope_type": "llama3" in config.json). factor == 0 means
// none.
struct RopeScaling {
  double factor = 0;
  double low_freq_factor = 1;
  double high_freq_factor = 4;
  int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  std::string name;          // catalog name or the directory/file it came from
  std::string architecture;  // "llama", "mistral", "qwen2"
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;  // usually hidden_size / num_heads
  int64_t max_position_embeddings = 0;
  double rope_theta = 10000;
  RopeScaling rope_scaling;
  // Per-frequency divisors of the inverse frequencies (llama.cpp's rope_freqs tensor, how GGUF
  // files carry Llama-3 scaling). When set, they replace rope_scaling.
  std::vector<float> rope_freq_factors;
  double rms_norm_eps = 1e-5;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // Qwen2
  std::vector<int32_t> eos_token_ids;
  int32_t bos_token_id = -1;

  // Every field positive and consistent; errors name the field.
  Status Validate() const;

  int64_t ParameterCount() const;
  // Bytes of all weights stored as `dtype`.
  int64_t WeightBytes(DType dtype) const;
  // KV cache bytes per token (K and V, every layer) in `dtype`.
  int64_t KvBytesPerToken(DType dtype) const;
  // Matrix-multiply FLOPs per token of a forward pass, without attention (2 x parameters that
  // take part in matrix products, the LM head included, the embedding lookup not).
  int64_t MatmulFlopsPerToken() const;
};

// Reads a Hugging Face config.json. Accepted "architectures": LlamaForCausalLM,
// MistralForCausalLM, Qwen2ForCausalLM; anything else is an error naming it. Errors name the
// file and the field.
Result<ModelConfig> ParseHfConfig(const std::string& json_text, const std::string& source);
Result<ModelConfig> LoadHfConfig(const std::string& path);

}  // namespace breakeven::engine
