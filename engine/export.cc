#include "engine/export.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/gguf.h"
#include "engine/rope.h"
#include "engine/safetensors.h"

namespace breakeven::engine {

namespace {

Result<TensorToWrite> ReadWhole(WeightSource& source, const std::string& name,
                                const std::vector<int64_t>& shape, DType dtype) {
  TensorToWrite t;
  t.name = name;
  t.dtype = dtype;
  t.shape = shape;
  int64_t rows = shape.size() == 1 ? 1 : shape[0];
  int64_t cols = shape.size() == 1 ? shape[0] : shape[1];
  t.data.resize(static_cast<size_t>(rows * cols) * DTypeSize(dtype));
  BE_RETURN_IF_ERROR(source.Read(name, shape, 0, rows, 0, cols, dtype, t.data.data()));
  return t;
}

std::string HfArchitecture(const ModelConfig& c) {
  if (c.architecture == "qwen2") return "Qwen2ForCausalLM";
  if (c.architecture == "mistral") return "MistralForCausalLM";
  return "LlamaForCausalLM";
}

// llama.cpp's convert_hf_to_gguf permutation of Q/K rows: within each head, HF row
// (half i, index j) goes to row 2j + i.
std::string PermuteRows(const std::string& data, int64_t rows, int64_t cols, int64_t heads,
                        size_t elem) {
  std::string out(data.size(), '\0');
  const int64_t hd = rows / heads, half = hd / 2;
  const size_t row_bytes = static_cast<size_t>(cols) * elem;
  for (int64_t r = 0; r < rows; ++r) {
    int64_t in_head = r % hd;
    int64_t target = r - in_head + 2 * (in_head % half) + in_head / half;
    std::memcpy(out.data() + static_cast<size_t>(target) * row_bytes,
                data.data() + static_cast<size_t>(r) * row_bytes, row_bytes);
  }
  return out;
}

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::vector<std::pair<std::string, std::vector<int64_t>>> ModelTensors(const ModelConfig& c) {
  const int64_t d = c.hidden_size, q = c.num_heads * c.head_dim, kv = c.num_kv_heads * c.head_dim;
  std::vector<std::pair<std::string, std::vector<int64_t>>> t;
  t.push_back({kEmbedTokens, {c.vocab_size, d}});
  for (int64_t l = 0; l < c.num_layers; ++l) {
    auto n = [&](const char* s) { return LayerTensor(l, s); };
    t.push_back({n("input_layernorm.weight"), {d}});
    t.push_back({n("self_attn.q_proj.weight"), {q, d}});
    t.push_back({n("self_attn.k_proj.weight"), {kv, d}});
    t.push_back({n("self_attn.v_proj.weight"), {kv, d}});
    if (c.qkv_bias) {
      t.push_back({n("self_attn.q_proj.bias"), {q}});
      t.push_back({n("self_attn.k_proj.bias"), {kv}});
      t.push_back({n("self_attn.v_proj.bias"), {kv}});
    }
    t.push_back({n("self_attn.o_proj.weight"), {d, q}});
    t.push_back({n("post_attention_layernorm.weight"), {d}});
    t.push_back({n("mlp.gate_proj.weight"), {c.intermediate_size, d}});
    t.push_back({n("mlp.up_proj.weight"), {c.intermediate_size, d}});
    t.push_back({n("mlp.down_proj.weight"), {d, c.intermediate_size}});
  }
  t.push_back({kFinalNorm, {d}});
  if (!c.tie_word_embeddings) t.push_back({kLmHead, {c.vocab_size, d}});
  return t;
}

std::string HfConfigJson(const ModelConfig& c) {
  nlohmann::ordered_json j = {
      {"architectures", {HfArchitecture(c)}},
      {"model_type", c.architecture},
      {"vocab_size", c.vocab_size},
      {"hidden_size", c.hidden_size},
      {"intermediate_size", c.intermediate_size},
      {"num_hidden_layers", c.num_layers},
      {"num_attention_heads", c.num_heads},
      {"num_key_value_heads", c.num_kv_heads},
      {"head_dim", c.head_dim},
      {"max_position_embeddings", c.max_position_embeddings},
      {"rope_theta", c.rope_theta},
      {"rms_norm_eps", c.rms_norm_eps},
      {"tie_word_embeddings", c.tie_word_embeddings},
      {"torch_dtype", "float32"},
  };
  if (c.rope_scaling.factor > 0) {
    j["rope_scaling"] = {
        {"rope_type", "llama3"},
        {"factor", c.rope_scaling.factor},
        {"low_freq_factor", c.rope_scaling.low_freq_factor},
        {"high_freq_factor", c.rope_scaling.high_freq_factor},
        {"original_max_position_embeddings", c.rope_scaling.original_max_position_embeddings}};
  }
  if (c.bos_token_id >= 0) j["bos_token_id"] = c.bos_token_id;
  if (!c.eos_token_ids.empty()) j["eos_token_id"] = c.eos_token_ids;
  return j.dump(2) + "\n";
}

Status ExportHfDirectory(WeightSource& source, const ModelConfig& config, const std::string& dir,
                         DType dtype, int shards) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Unavailable("cannot create {}: {}", dir, ec.message());
  {
    std::ofstream out(dir + "/config.json");
    out << HfConfigJson(config);
    if (!out) return Unavailable("cannot write {}/config.json", dir);
  }
  auto tensors = ModelTensors(config);
  shards = std::max(1, std::min<int>(shards, static_cast<int>(tensors.size())));
  nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
  size_t per_shard =
      (tensors.size() + static_cast<size_t>(shards) - 1) / static_cast<size_t>(shards);
  for (int s = 0; s < shards; ++s) {
    std::string file = shards == 1 ? "model.safetensors"
                                   : fmt::format("model-{:05}-of-{:05}.safetensors", s + 1, shards);
    std::vector<TensorToWrite> part;
    for (size_t i = static_cast<size_t>(s) * per_shard;
         i < std::min(tensors.size(), static_cast<size_t>(s + 1) * per_shard); ++i) {
      BE_ASSIGN_OR_RETURN(TensorToWrite t,
                          ReadWhole(source, tensors[i].first, tensors[i].second, dtype));
      weight_map[tensors[i].first] = file;
      part.push_back(std::move(t));
    }
    BE_RETURN_IF_ERROR(WriteSafetensors(dir + "/" + file, part, {{"format", "pt"}}));
  }
  if (shards > 1) {
    std::ofstream out(dir + "/model.safetensors.index.json");
    out << nlohmann::ordered_json{{"metadata", nlohmann::ordered_json::object()},
                                  {"weight_map", weight_map}}
               .dump(2);
    if (!out) return Unavailable("cannot write the index in {}", dir);
  }
  return Status::Ok();
}

Status ExportGguf(WeightSource& source, const ModelConfig& c, const std::string& path,
                  DType dtype) {
  const std::string arch = c.architecture == "qwen2" ? "qwen2" : "llama";
  auto u = [](int64_t v) { return GgufValue{static_cast<uint64_t>(v)}; };
  std::vector<GgufKeyValue> meta = {
      {"general.architecture", GgufValue{arch}},
      {"general.name", GgufValue{c.name}},
      {arch + ".context_length", u(c.max_position_embeddings)},
      {arch + ".embedding_length", u(c.hidden_size)},
      {arch + ".feed_forward_length", u(c.intermediate_size)},
      {arch + ".block_count", u(c.num_layers)},
      {arch + ".attention.head_count", u(c.num_heads)},
      {arch + ".attention.head_count_kv", u(c.num_kv_heads)},
      {arch + ".attention.key_length", u(c.head_dim)},
      {arch + ".attention.value_length", u(c.head_dim)},
      {arch + ".attention.layer_norm_rms_epsilon", GgufValue{c.rms_norm_eps}},
      {arch + ".rope.freq_base", GgufValue{c.rope_theta}},
      {arch + ".vocab_size", u(c.vocab_size)},
  };
  if (c.bos_token_id >= 0) meta.push_back({"tokenizer.ggml.bos_token_id", u(c.bos_token_id)});
  if (!c.eos_token_ids.empty()) {
    meta.push_back({"tokenizer.ggml.eos_token_id", u(c.eos_token_ids[0])});
  }

  std::vector<TensorToWrite> tensors;
  for (const auto& [name, shape] : ModelTensors(c)) {
    BE_ASSIGN_OR_RETURN(TensorToWrite t, ReadWhole(source, name, shape, dtype));
    int64_t heads = 0;
    if (arch == "llama" && EndsWith(name, "self_attn.q_proj.weight")) heads = c.num_heads;
    if (arch == "llama" && EndsWith(name, "self_attn.k_proj.weight")) heads = c.num_kv_heads;
    if (heads > 0) t.data = PermuteRows(t.data, shape[0], shape[1], heads, DTypeSize(dtype));
    t.name = GgufTensorName(name);
    tensors.push_back(std::move(t));
  }
  if (c.rope_scaling.factor > 0) {
    std::vector<float> factors = Llama3FreqFactors(c);
    TensorToWrite t;
    t.name = "rope_freqs.weight";
    t.dtype = DType::kF32;
    t.shape = {static_cast<int64_t>(factors.size())};
    t.data.assign(reinterpret_cast<const char*>(factors.data()), factors.size() * sizeof(float));
    tensors.push_back(std::move(t));
  }
  return WriteGguf(path, meta, tensors);
}

}  // namespace breakeven::engine
