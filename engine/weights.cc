#include "engine/weights.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/catalog.h"
#include "engine/gguf.h"
#include "engine/safetensors.h"

namespace breakeven::engine {

namespace {

uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Status CheckShape(const std::string& where, const std::string& name,
                  const std::vector<int64_t>& expected, const std::vector<int64_t>& found) {
  if (expected != found) {
    return InvalidArgument("{}: tensor '{}': expected {}, found {}", where, name,
                           ShapeString(expected), ShapeString(found));
  }
  return Status::Ok();
}

// Copies a block out of a row-major tensor at `data` (full shape rows_total x cols_total, type
// src) into dst as `dtype`. `source_row` maps the logical row to the stored row.
template <typename RowMap>
void CopyBlock(const uint8_t* data, DType src, int64_t cols_total, int64_t row_begin, int64_t rows,
               int64_t col_begin, int64_t cols, DType dtype, void* dst, RowMap source_row) {
  const size_t in_elem = DTypeSize(src), out_elem = DTypeSize(dtype);
  std::vector<float> widened(src == dtype ? 0 : static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* from = data + (source_row(row_begin + r) * cols_total + col_begin) * in_elem;
    uint8_t* to = static_cast<uint8_t*>(dst) + r * cols * out_elem;
    if (src == dtype) {
      std::memcpy(to, from, static_cast<size_t>(cols) * in_elem);
    } else {
      ToF32(from, src, static_cast<size_t>(cols), widened.data());
      FromF32(widened.data(), dtype, static_cast<size_t>(cols), to);
    }
  }
}

void Split2D(const std::vector<int64_t>& shape, int64_t* rows, int64_t* cols) {
  if (shape.size() == 1) {
    *rows = 1;
    *cols = shape[0];
  } else {
    *rows = shape[0];
    *cols = shape.size() > 1 ? shape[1] : 1;
  }
}

// ---------------------------------------------------------------------------------------------

class DummyWeights final : public WeightSource {
 public:
  DummyWeights(ModelConfig config, uint64_t seed) : config_(std::move(config)), seed_(seed) {}
  std::string Describe() const override {
    return fmt::format("dummy weights (seed {}) for {}", seed_, config_.name);
  }
  bool Has(const std::string& name) const override {
    return name != kLmHead || !config_.tie_word_embeddings;
  }
  Status Read(const std::string& name, const std::vector<int64_t>& shape, int64_t row_begin,
              int64_t rows, int64_t col_begin, int64_t cols, DType dtype, void* dst) override {
    std::vector<float> row(static_cast<size_t>(cols));
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) {
        row[static_cast<size_t>(c)] = DummyValue(seed_, name, shape, row_begin + r, col_begin + c);
      }
      FromF32(row.data(), dtype, static_cast<size_t>(cols),
              static_cast<uint8_t*>(dst) + r * cols * DTypeSize(dtype));
    }
    return Status::Ok();
  }
  std::optional<kernels::UniformFill> DeviceFill(const std::string& name,
                                                 const std::vector<int64_t>& shape,
                                                 int64_t row_begin,
                                                 int64_t col_begin) const override {
    kernels::UniformFill f = DummyFill(seed_, name, shape);
    f.row_begin = row_begin;
    f.col_begin = col_begin;
    return f;
  }

 private:
  ModelConfig config_;
  uint64_t seed_;
};

// ---------------------------------------------------------------------------------------------

class HfDirectory final : public WeightSource {
 public:
  static Result<std::unique_ptr<HfDirectory>> Open(const std::string& dir) {
    auto w = std::unique_ptr<HfDirectory>(new HfDirectory);
    w->dir_ = dir;
    namespace fs = std::filesystem;
    std::string index_path = dir + "/model.safetensors.index.json";
    std::vector<std::string> files;
    if (fs::exists(index_path)) {
      std::ifstream in(index_path);
      nlohmann::json index;
      try {
        in >> index;
      } catch (const std::exception& e) {
        return InvalidArgument("{}: not valid JSON: {}", index_path, e.what());
      }
      if (!index.contains("weight_map") || !index["weight_map"].is_object()) {
        return InvalidArgument("{}: no \"weight_map\" object", index_path);
      }
      for (auto& [name, file] : index["weight_map"].items()) {
        if (!file.is_string())
          return InvalidArgument("{}: weight_map['{}'] is not a file name", index_path, name);
        w->shard_of_[name] = file.get<std::string>();
        if (std::find(files.begin(), files.end(), file.get<std::string>()) == files.end()) {
          files.push_back(file.get<std::string>());
        }
      }
    } else if (fs::exists(dir + "/model.safetensors")) {
      files.push_back("model.safetensors");
    } else {
      return NotFound("{}: neither model.safetensors nor model.safetensors.index.json", dir);
    }
    for (const std::string& f : files) {
      BE_ASSIGN_OR_RETURN(auto st, SafetensorsFile::Open(dir + "/" + f));
      for (const TensorInfo& t : st->tensors()) {
        auto declared = w->shard_of_.find(t.name);
        if (declared != w->shard_of_.end() && declared->second != f) continue;
        w->tensors_[t.name] = {st.get(), &t};
      }
      w->files_.push_back(std::move(st));
    }
    for (const auto& [name, file] : w->shard_of_) {
      if (!w->tensors_.count(name)) {
        return DataLoss("{}: the index puts tensor '{}' in {}, which does not hold it", dir, name,
                        file);
      }
    }
    return w;
  }

  std::string Describe() const override { return fmt::format("safetensors in {}", dir_); }
  bool Has(const std::string& name) const override { return tensors_.count(name) > 0; }

  Status Read(const std::string& name, const std::vector<int64_t>& shape, int64_t row_begin,
              int64_t rows, int64_t col_begin, int64_t cols, DType dtype, void* dst) override {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) return NotFound("{}: tensor '{}' is missing", dir_, name);
    const auto& [file, info] = it->second;
    BE_RETURN_IF_ERROR(CheckShape(file->path(), name, shape, info->shape));
    int64_t total_rows, total_cols;
    Split2D(info->shape, &total_rows, &total_cols);
    CopyBlock(file->Data(*info), info->dtype, total_cols, row_begin, rows, col_begin, cols, dtype,
              dst, [](int64_t r) { return r; });
    return Status::Ok();
  }

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, std::string> shard_of_;
  std::map<std::string, std::pair<const SafetensorsFile*, const TensorInfo*>> tensors_;
};

// ---------------------------------------------------------------------------------------------

}  // namespace

std::string GgufTensorName(const std::string& hf) {
  if (hf == kEmbedTokens) return "token_embd.weight";
  if (hf == kFinalNorm) return "output_norm.weight";
  if (hf == kLmHead) return "output.weight";
  static const std::pair<const char*, const char*> kLayer[] = {
      {"input_layernorm.weight", "attn_norm.weight"},
      {"post_attention_layernorm.weight", "ffn_norm.weight"},
      {"self_attn.q_proj.weight", "attn_q.weight"},
      {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.v_proj.weight", "attn_v.weight"},
      {"self_attn.q_proj.bias", "attn_q.bias"},
      {"self_attn.k_proj.bias", "attn_k.bias"},
      {"self_attn.v_proj.bias", "attn_v.bias"},
      {"self_attn.o_proj.weight", "attn_output.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},
      {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.down_proj.weight", "ffn_down.weight"},
  };
  const std::string prefix = "model.layers.";
  if (hf.rfind(prefix, 0) == 0) {
    size_t dot = hf.find('.', prefix.size());
    std::string layer = hf.substr(prefix.size(), dot - prefix.size());
    std::string rest = hf.substr(dot + 1);
    for (const auto& [from, to] : kLayer) {
      if (rest == from) return "blk." + layer + "." + to;
    }
  }
  return hf;
}

namespace {

class GgufWeights final : public WeightSource {
 public:
  GgufWeights(std::unique_ptr<GgufFile> file, ModelConfig config)
      : file_(std::move(file)), config_(std::move(config)) {}

  std::string Describe() const override { return fmt::format("GGUF file {}", file_->path()); }
  bool Has(const std::string& name) const override {
    return file_->Find(GgufTensorName(name)) != nullptr;
  }

  Status Read(const std::string& name, const std::vector<int64_t>& shape, int64_t row_begin,
              int64_t rows, int64_t col_begin, int64_t cols, DType dtype, void* dst) override {
    const std::string gguf_name = GgufTensorName(name);
    const TensorInfo* info = file_->Find(gguf_name);
    if (info == nullptr) {
      return NotFound("{}: tensor '{}' (for {}) is missing", file_->path(), gguf_name, name);
    }
    BE_RETURN_IF_ERROR(CheckShape(file_->path(), gguf_name, shape, info->shape));
    int64_t total_rows, total_cols;
    Split2D(info->shape, &total_rows, &total_cols);
    // llama.cpp's converter stores Llama Q and K rows permuted for its interleaved RoPE: within
    // each head, HF row (half i, index j) is stored at row 2j + i.
    int64_t heads = 0;
    if (config_.architecture != "qwen2" && shape.size() == 2) {
      if (EndsWith(name, "self_attn.q_proj.weight")) heads = config_.num_heads;
      if (EndsWith(name, "self_attn.k_proj.weight")) heads = config_.num_kv_heads;
    }
    if (heads == 0) {
      CopyBlock(file_->Data(*info), info->dtype, total_cols, row_begin, rows, col_begin, cols,
                dtype, dst, [](int64_t r) { return r; });
    } else {
      const int64_t hd = total_rows / heads, half = hd / 2;
      CopyBlock(file_->Data(*info), info->dtype, total_cols, row_begin, rows, col_begin, cols,
                dtype, dst, [hd, half](int64_t r) {
                  int64_t in_head = r % hd;
                  return r - in_head + 2 * (in_head % half) + in_head / half;
                });
    }
    return Status::Ok();
  }

  const GgufFile& file() const { return *file_; }

 private:
  std::unique_ptr<GgufFile> file_;
  ModelConfig config_;
};

Result<ModelConfig> ConfigFromGguf(const GgufFile& f) {
  BE_ASSIGN_OR_RETURN(std::string arch, f.GetString("general.architecture"));
  ModelConfig c;
  c.name = f.path();
  if (arch == "llama") {
    c.architecture = "llama";
  } else if (arch == "qwen2") {
    c.architecture = "qwen2";
    c.qkv_bias = true;
  } else {
    return InvalidArgument("{}: general.architecture '{}' is not supported (llama, qwen2 are)",
                           f.path(), arch);
  }
  auto key = [&](const char* k) { return arch + "." + k; };
  auto as_int = [](Result<uint64_t> r) -> Result<int64_t> {
    if (!r.ok()) return r.status();
    return static_cast<int64_t>(*r);
  };
  BE_ASSIGN_OR_RETURN(c.hidden_size, as_int(f.GetUInt(key("embedding_length"))));
  BE_ASSIGN_OR_RETURN(c.intermediate_size, as_int(f.GetUInt(key("feed_forward_length"))));
  BE_ASSIGN_OR_RETURN(c.num_layers, as_int(f.GetUInt(key("block_count"))));
  BE_ASSIGN_OR_RETURN(c.num_heads, as_int(f.GetUInt(key("attention.head_count"))));
  c.num_kv_heads = c.num_heads;
  if (f.Get(key("attention.head_count_kv"))) {
    BE_ASSIGN_OR_RETURN(c.num_kv_heads, as_int(f.GetUInt(key("attention.head_count_kv"))));
  }
  c.head_dim = c.num_heads > 0 ? c.hidden_size / c.num_heads : 0;
  if (f.Get(key("attention.key_length"))) {
    BE_ASSIGN_OR_RETURN(c.head_dim, as_int(f.GetUInt(key("attention.key_length"))));
  }
  BE_ASSIGN_OR_RETURN(c.max_position_embeddings, as_int(f.GetUInt(key("context_length"))));
  if (f.Get(key("rope.freq_base"))) {
    BE_ASSIGN_OR_RETURN(c.rope_theta, f.GetFloat(key("rope.freq_base")));
  }
  BE_ASSIGN_OR_RETURN(c.rms_norm_eps, f.GetFloat(key("attention.layer_norm_rms_epsilon")));
  const TensorInfo* embed = f.Find("token_embd.weight");
  if (embed == nullptr || embed->shape.size() != 2) {
    return InvalidArgument("{}: tensor 'token_embd.weight' is missing or not 2-D", f.path());
  }
  c.vocab_size = embed->shape[0];
  c.tie_word_embeddings = f.Find("output.weight") == nullptr;
  if (f.Get("tokenizer.ggml.bos_token_id")) {
    BE_ASSIGN_OR_RETURN(uint64_t bos, f.GetUInt("tokenizer.ggml.bos_token_id"));
    c.bos_token_id = static_cast<int32_t>(bos);
  }
  if (f.Get("tokenizer.ggml.eos_token_id")) {
    BE_ASSIGN_OR_RETURN(uint64_t eos, f.GetUInt("tokenizer.ggml.eos_token_id"));
    c.eos_token_ids = {static_cast<int32_t>(eos)};
  }
  // Llama-3 RoPE scaling travels as a tensor of per-frequency divisors.
  if (const TensorInfo* freqs = f.Find("rope_freqs.weight")) {
    if (freqs->shape != std::vector<int64_t>{c.head_dim / 2} || freqs->dtype != DType::kF32) {
      return InvalidArgument("{}: tensor 'rope_freqs.weight': expected {} of f32, found {} of {}",
                             f.path(), c.head_dim / 2, ShapeString(freqs->shape),
                             DTypeName(freqs->dtype));
    }
    c.rope_freq_factors.resize(static_cast<size_t>(c.head_dim / 2));
    std::memcpy(c.rope_freq_factors.data(), f.Data(*freqs), c.rope_freq_factors.size() * 4);
  }
  BE_RETURN_IF_ERROR(c.Validate());
  return c;
}

}  // namespace

std::string LayerTensor(int64_t layer, const char* suffix) {
  return fmt::format("model.layers.{}.{}", layer, suffix);
}

kernels::UniformFill DummyFill(uint64_t seed, const std::string& name,
                               const std::vector<int64_t>& shape) {
  kernels::UniformFill f;
  f.key = SplitMix64(seed ^ Fnv1a(name));
  f.full_cols = shape.size() > 1 ? shape[1] : shape[0];
  if (name.find("norm") != std::string::npos) {
    f.offset = 1.0f;
    f.scale = 0.1f;
  } else if (EndsWith(name, ".bias")) {
    f.scale = 0.1f;
  } else if (name == kEmbedTokens || name == kLmHead) {
    f.scale = 0.5f;
  } else {
    f.scale = std::sqrt(3.0f / static_cast<float>(f.full_cols));
  }
  return f;
}

float DummyValue(uint64_t seed, const std::string& name, const std::vector<int64_t>& shape,
                 int64_t row, int64_t col) {
  const kernels::UniformFill f = DummyFill(seed, name, shape);
  uint64_t index = static_cast<uint64_t>(row * f.full_cols + col);
  uint64_t bits = SplitMix64(f.key + index);
  float u = static_cast<float>(static_cast<double>(bits >> 11) * 0x1.0p-53 * 2.0 - 1.0);
  // Rounded multiply, then add (offset 0 adds nothing): what FillUniform does on a device.
  volatile float scaled = f.scale * u;
  return f.offset + scaled;
}

std::unique_ptr<WeightSource> MakeDummyWeights(const ModelConfig& config, uint64_t seed) {
  return std::make_unique<DummyWeights>(config, seed);
}

Result<std::unique_ptr<WeightSource>> OpenHfDirectory(const std::string& dir, ModelConfig* config) {
  BE_ASSIGN_OR_RETURN(*config, LoadHfConfig(dir + "/config.json"));
  BE_ASSIGN_OR_RETURN(auto w, HfDirectory::Open(dir));
  return std::unique_ptr<WeightSource>(std::move(w));
}

Result<std::unique_ptr<WeightSource>> OpenGguf(const std::string& path, ModelConfig* config) {
  BE_ASSIGN_OR_RETURN(auto file, GgufFile::Open(path));
  BE_ASSIGN_OR_RETURN(*config, ConfigFromGguf(*file));
  return std::unique_ptr<WeightSource>(new GgufWeights(std::move(file), *config));
}

Result<std::unique_ptr<WeightSource>> OpenWeights(const std::string& spec, const std::string& model,
                                                  uint64_t seed, ModelConfig* config) {
  if (spec == "dummy") {
    BE_ASSIGN_OR_RETURN(*config, FindModel(model));
    return MakeDummyWeights(*config, seed);
  }
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(spec, ec)) return OpenHfDirectory(spec, config);
  if (fs::is_regular_file(spec, ec)) {
    if (EndsWith(spec, ".gguf")) return OpenGguf(spec, config);
    return InvalidArgument("--weights: '{}' is neither a model directory nor a .gguf file", spec);
  }
  return NotFound(
      "--weights: '{}' does not exist (expected dummy, a model directory or a .gguf "
      "file)",
      spec);
}

}  // namespace breakeven::engine
