#include "engine/catalog.h"

namespace breakeven::engine {

namespace {

ModelConfig Llama(std::string name, int64_t vocab, int64_t hidden, int64_t inter, int64_t layers,
                  int64_t heads, int64_t kv_heads, int64_t head_dim, int64_t max_pos, double theta,
                  bool tied) {
  ModelConfig c;
  c.name = std::move(name);
  c.architecture = "llama";
  c.vocab_size = vocab;
  c.hidden_size = hidden;
  c.intermediate_size = inter;
  c.num_layers = layers;
  c.num_heads = heads;
  c.num_kv_heads = kv_heads;
  c.head_dim = head_dim;
  c.max_position_embeddings = max_pos;
  c.rope_theta = theta;
  c.tie_word_embeddings = tied;
  return c;
}

std::vector<CatalogEntry> Build() {
  std::vector<CatalogEntry> out;
  RopeScaling llama31{8.0, 1.0, 4.0, 8192};
  RopeScaling llama32{32.0, 1.0, 4.0, 8192};

  // meta-llama/Llama-3.1-8B and -70B config.json.
  ModelConfig l8 =
      Llama("llama-3.1-8b", 128256, 4096, 14336, 32, 32, 8, 128, 131072, 500000, false);
  l8.rope_scaling = llama31;
  l8.bos_token_id = 128000;
  l8.eos_token_ids = {128001};
  out.push_back({l8, "meta-llama/Llama-3.1-8B config.json"});
  ModelConfig l70 =
      Llama("llama-3.1-70b", 128256, 8192, 28672, 80, 64, 8, 128, 131072, 500000, false);
  l70.rope_scaling = llama31;
  l70.bos_token_id = 128000;
  l70.eos_token_ids = {128001};
  out.push_back({l70, "meta-llama/Llama-3.1-70B config.json"});

  // meta-llama/Llama-3.2-1B and -3B config.json (tied embeddings).
  ModelConfig l1 = Llama("llama-3.2-1b", 128256, 2048, 8192, 16, 32, 8, 64, 131072, 500000, true);
  l1.rope_scaling = llama32;
  l1.bos_token_id = 128000;
  l1.eos_token_ids = {128001};
  out.push_back({l1, "meta-llama/Llama-3.2-1B config.json"});
  ModelConfig l3 = Llama("llama-3.2-3b", 128256, 3072, 8192, 28, 24, 8, 128, 131072, 500000, true);
  l3.rope_scaling = llama32;
  l3.bos_token_id = 128000;
  l3.eos_token_ids = {128001};
  out.push_back({l3, "meta-llama/Llama-3.2-3B config.json"});

  // Qwen/Qwen2.5-7B config.json: QKV bias, rms_norm_eps 1e-6.
  ModelConfig q7 = Llama("qwen2.5-7b", 152064, 3584, 18944, 28, 28, 4, 128, 131072, 1000000, false);
  q7.architecture = "qwen2";
  q7.qkv_bias = true;
  q7.rms_norm_eps = 1e-6;
  q7.bos_token_id = 151643;
  q7.eos_token_ids = {151643};
  out.push_back({q7, "Qwen/Qwen2.5-7B config.json"});

  // mistralai/Mistral-7B-v0.3 config.json (full attention; v0.1's sliding window is not used).
  ModelConfig m7 = Llama("mistral-7b", 32768, 4096, 14336, 32, 32, 8, 128, 32768, 1000000, false);
  m7.architecture = "mistral";
  m7.bos_token_id = 1;
  m7.eos_token_ids = {2};
  out.push_back({m7, "mistralai/Mistral-7B-v0.3 config.json"});

  // Small shapes for tests and demos. tiny-15m: 8 heads over 4 KV heads (GQA), so tp 1, 2 and
  // 4 split cleanly and tp 8 replicates KV heads.
  ModelConfig t15 = Llama("tiny-15m", 32000, 256, 768, 8, 8, 4, 32, 2048, 10000, true);
  t15.bos_token_id = 1;
  t15.eos_token_ids = {2};
  out.push_back({t15, "breakeven test shape (llama2.c stories15M scale)"});
  // The shape of llama2.c's stories110M (Llama 2 architecture, 12 layers of 768).
  ModelConfig t110 = Llama("llama-110m", 32000, 768, 2048, 12, 12, 12, 64, 2048, 10000, true);
  t110.bos_token_id = 1;
  t110.eos_token_ids = {2};
  out.push_back({t110, "karpathy/llama2.c stories110M shape"});
  return out;
}

}  // namespace

const std::vector<CatalogEntry>& Catalog() {
  static const std::vector<CatalogEntry> catalog = Build();
  return catalog;
}

Result<ModelConfig> FindModel(const std::string& name) {
  std::string known;
  for (const CatalogEntry& e : Catalog()) {
    if (e.config.name == name) return e.config;
    known += (known.empty() ? "" : ", ") + e.config.name;
  }
  return NotFound(
      "unknown model '{}' (catalog: {}; or give --weights a model directory or GGUF "
      "file)",
      name, known);
}

}  // namespace breakeven::engine
