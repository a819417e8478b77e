#include "engine/model_config.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace breakeven::engine {

Status ModelConfig::Validate() const {
  auto positive = [&](const char* field, int64_t v) -> Status {
    if (v <= 0) return InvalidArgument("model '{}': {} must be positive (got {})", name, field, v);
    return Status::Ok();
  };
  BE_RETURN_IF_ERROR(positive("vocab_size", vocab_size));
  BE_RETURN_IF_ERROR(positive("hidden_size", hidden_size));
  BE_RETURN_IF_ERROR(positive("intermediate_size", intermediate_size));
  BE_RETURN_IF_ERROR(positive("num_hidden_layers", num_layers));
  BE_RETURN_IF_ERROR(positive("num_attention_heads", num_heads));
  BE_RETURN_IF_ERROR(positive("num_key_value_heads", num_kv_heads));
  BE_RETURN_IF_ERROR(positive("head_dim", head_dim));
  BE_RETURN_IF_ERROR(positive("max_position_embeddings", max_position_embeddings));
  if (num_heads % num_kv_heads != 0) {
    return InvalidArgument(
        "model '{}': num_attention_heads ({}) must be a multiple of num_key_value_heads ({})", name,
        num_heads, num_kv_heads);
  }
  if (head_dim % 2 != 0) {
    return InvalidArgument("model '{}': head_dim ({}) must be even for rotary embeddings", name,
                           head_dim);
  }
  if (rope_theta <= 0) return InvalidArgument("model '{}': rope_theta must be positive", name);
  if (rms_norm_eps <= 0) return InvalidArgument("model '{}': rms_norm_eps must be positive", name);
  if (rope_scaling.factor < 0 ||
      (rope_scaling.factor > 0 && rope_scaling.high_freq_factor <= rope_scaling.low_freq_factor)) {
    return InvalidArgument(
        "model '{}': rope_scaling needs factor > 0 and high_freq_factor > "
        "low_freq_factor",
        name);
  }
  return Status::Ok();
}

int64_t ModelConfig::ParameterCount() const {
  int64_t q = num_heads * head_dim, kv = num_kv_heads * head_dim;
  int64_t attn = hidden_size * (q + 2 * kv) + q * hidden_size + (qkv_bias ? q + 2 * kv : 0);
  int64_t mlp = 3 * hidden_size * intermediate_size;
  int64_t norms = 2 * hidden_size;
  int64_t embed = vocab_size * hidden_size;
  return num_layers * (attn + mlp + norms) + hidden_size + embed * (tie_word_embeddings ? 1 : 2);
}

int64_t ModelConfig::WeightBytes(DType dtype) const {
  return ParameterCount() * static_cast<int64_t>(DTypeSize(dtype));
}

int64_t ModelConfig::KvBytesPerToken(DType dtype) const {
  return 2 * num_layers * num_kv_heads * head_dim * static_cast<int64_t>(DTypeSize(dtype));
}

int64_t ModelConfig::MatmulFlopsPerToken() const {
  int64_t q = num_heads * head_dim, kv = num_kv_heads * head_dim;
  int64_t per_layer =
      hidden_size * (q + 2 * kv) + q * hidden_size + 3 * hidden_size * intermediate_size;
  return 2 * (num_layers * per_layer + vocab_size * hidden_size);
}

namespace {

using nlohmann::json;

template <typename T>
Status Field(const json& j, const char* key, const std::string& source, T* out, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) return InvalidArgument("{}: field '{}' is missing", source, key);
    return Status::Ok();
  }
  try {
    *out = it->get<T>();
  } catch (const std::exception&) {
    return InvalidArgument("{}: field '{}' has the wrong type ({})", source, key, it->dump());
  }
  return Status::Ok();
}

}  // namespace

Result<ModelConfig> ParseHfConfig(const std::string& json_text, const std::string& source) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const std::exception& e) {
    return InvalidArgument("{}: not valid JSON: {}", source, e.what());
  }
  if (!j.is_object()) return InvalidArgument("{}: expected a JSON object", source);

  ModelConfig c;
  c.name = source;
  std::vector<std::string> archs;
  BE_RETURN_IF_ERROR(Field(j, "architectures", source, &archs, true));
  std::string arch = archs.empty() ? "" : archs[0];
  if (arch == "LlamaForCausalLM") {
    c.architecture = "llama";
  } else if (arch == "MistralForCausalLM") {
    c.architecture = "mistral";
  } else if (arch == "Qwen2ForCausalLM") {
    c.architecture = "qwen2";
    c.qkv_bias = true;
  } else {
    return InvalidArgument(
        "{}: architecture '{}' is not supported (LlamaForCausalLM, MistralForCausalLM, "
        "Qwen2ForCausalLM are)",
        source, arch);
  }
  BE_RETURN_IF_ERROR(Field(j, "vocab_size", source, &c.vocab_size, true));
  BE_RETURN_IF_ERROR(Field(j, "hidden_size", source, &c.hidden_size, true));
  BE_RETURN_IF_ERROR(Field(j, "intermediate_size", source, &c.intermediate_size, true));
  BE_RETURN_IF_ERROR(Field(j, "num_hidden_layers", source, &c.num_layers, true));
  BE_RETURN_IF_ERROR(Field(j, "num_attention_heads", source, &c.num_heads, true));
  c.num_kv_heads = c.num_heads;
  BE_RETURN_IF_ERROR(Field(j, "num_key_value_heads", source, &c.num_kv_heads, false));
  c.head_dim = c.num_heads > 0 ? c.hidden_size / c.num_heads : 0;
  BE_RETURN_IF_ERROR(Field(j, "head_dim", source, &c.head_dim, false));
  BE_RETURN_IF_ERROR(Field(j, "max_position_embeddings", source, &c.max_position_embeddings, true));
  BE_RETURN_IF_ERROR(Field(j, "rope_theta", source, &c.rope_theta, false));
  BE_RETURN_IF_ERROR(Field(j, "rms_norm_eps", source, &c.rms_norm_eps, false));
  BE_RETURN_IF_ERROR(Field(j, "tie_word_embeddings", source, &c.tie_word_embeddings, false));
  if (j.contains("attention_bias")) {
    BE_RETURN_IF_ERROR(Field(j, "attention_bias", source, &c.qkv_bias, false));
  }
  if (auto sw = j.find("sliding_window");
      sw != j.end() && !sw->is_null() &&
      j.value("use_sliding_window", arch != "Qwen2ForCausalLM")) {
    // Mistral v0.1 attends over a 4096-token window; full attention would give other logits.
    int64_t window = sw->is_number_integer() ? sw->get<int64_t>() : 0;
    if (window > 0 && window < c.max_position_embeddings) {
      return InvalidArgument("{}: sliding-window attention (sliding_window = {}) is not supported",
                             source, window);
    }
  }
  if (auto rs = j.find("rope_scaling"); rs != j.end() && !rs->is_null()) {
    std::string type = rs->value("rope_type", rs->value("type", ""));
    if (type != "llama3") {
      return InvalidArgument("{}: rope_scaling type '{}' is not supported (llama3 is)", source,
                             type);
    }
    BE_RETURN_IF_ERROR(Field(*rs, "factor", source, &c.rope_scaling.factor, true));
    BE_RETURN_IF_ERROR(
        Field(*rs, "low_freq_factor", source, &c.rope_scaling.low_freq_factor, true));
    BE_RETURN_IF_ERROR(
        Field(*rs, "high_freq_factor", source, &c.rope_scaling.high_freq_factor, true));
    BE_RETURN_IF_ERROR(Field(*rs, "original_max_position_embeddings", source,
                             &c.rope_scaling.original_max_position_embeddings, true));
  }
  BE_RETURN_IF_ERROR(Field(j, "bos_token_id", source, &c.bos_token_id, false));
  if (auto eos = j.find("eos_token_id"); eos != j.end() && !eos->is_null()) {
    if (eos->is_array()) {
      BE_RETURN_IF_ERROR(Field(j, "eos_token_id", source, &c.eos_token_ids, false));
    } else {
      int32_t id = 0;
      BE_RETURN_IF_ERROR(Field(j, "eos_token_id", source, &id, false));
      c.eos_token_ids = {id};
    }
  }
  BE_RETURN_IF_ERROR(c.Validate());
  return c;
}

Result<ModelConfig> LoadHfConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot read model config '{}'", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseHfConfig(ss.str(), path);
}

}  // namespace breakeven::engine
