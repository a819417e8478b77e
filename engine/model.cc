#include "engine/model.h"

#include <cmath>
#include <functional>
#include <limits>
#include <map>

#include "engine/rope.h"

namespace breakeven::engine {

using kernels::Tensor;

struct LlamaModel::Layer {
  Tensor wqkv;                  // (nq + 2 nkv) hd x hidden: this rank's q rows, then k, then v
  Tensor wo;                    // hidden x nq hd
  Tensor wgate_up;              // 2 inter x hidden: gate rows, then up rows
  Tensor wdown;                 // hidden x inter
  const float* bqkv = nullptr;  // (nq + 2 nkv) hd, Qwen2 only
  const float* attn_norm = nullptr;
  const float* mlp_norm = nullptr;
};

LlamaModel::~LlamaModel() = default;

namespace {

// Reads blocks of tensors into one host staging area, then into device memory.
class ShardLoader {
 public:
  ShardLoader(WeightSource& source, kernels::Backend& backend, DType dtype,
              std::vector<std::unique_ptr<kernels::Buffer>>* owned, int64_t* bytes)
      : source_(source), backend_(backend), dtype_(dtype), owned_(owned), bytes_(bytes) {}

  struct Part {
    std::string name;
    std::vector<int64_t> shape;
    int64_t row_begin, rows, col_begin, cols;
  };

  // Stacks the parts vertically (they must have equal cols) into one (sum rows) x cols matrix.
  Result<Tensor> Matrix(const std::vector<Part>& parts, DType dtype) {
    const int64_t cols = parts[0].cols;
    int64_t rows = 0;
    for (const Part& p : parts) rows += p.rows;
    const size_t elem = DTypeSize(dtype);
    if (Tensor t; FillOnDevice(parts, dtype, rows, cols, &t)) return t;
    std::vector<uint8_t> staging(static_cast<size_t>(rows * cols) * elem);
    int64_t at = 0;
    for (const Part& p : parts) {
      BE_RETURN_IF_ERROR(source_.Read(p.name, p.shape, p.row_begin, p.rows, p.col_begin, p.cols,
                                      dtype,
                                      staging.data() + static_cast<size_t>(at * cols) * elem));
      at += p.rows;
    }
    BE_ASSIGN_OR_RETURN(auto buffer, backend_.Allocate(staging.size()));
    backend_.CopyToDevice(buffer->data(), staging.data(), staging.size());
    Tensor t{buffer->data(), dtype, rows, cols, cols};
    owned_->push_back(std::move(buffer));
    *bytes_ += static_cast<int64_t>(staging.size());
    return t;
  }

  Result<Tensor> Matrix(const std::vector<Part>& parts) { return Matrix(parts, dtype_); }

  // Dummy weights made by the backend where they live (no host copy of the model), when both
  // the source and the backend can.
  bool FillOnDevice(const std::vector<Part>& parts, DType dtype, int64_t rows, int64_t cols,
                    Tensor* out) {
    std::vector<kernels::UniformFill> fills;
    for (const Part& p : parts) {
      if (!source_.Has(p.name)) return false;
      auto fill = source_.DeviceFill(p.name, p.shape, p.row_begin, p.col_begin);
      if (!fill) return false;
      fills.push_back(*fill);
    }
    const size_t elem = DTypeSize(dtype);
    auto buffer = backend_.Allocate(static_cast<size_t>(rows * cols) * elem);
    if (!buffer.ok()) return false;  // the host path reports the error
    int64_t at = 0;
    for (size_t i = 0; i < parts.size(); ++i) {
      void* dst = static_cast<uint8_t*>((*buffer)->data()) + static_cast<size_t>(at * cols) * elem;
      if (!backend_.FillUniform(dst, dtype, parts[i].rows, cols, fills[i])) return false;
      at += parts[i].rows;
    }
    *out = Tensor{(*buffer)->data(), dtype, rows, cols, cols};
    owned_->push_back(std::move(buffer).value());
    *bytes_ += static_cast<int64_t>(rows * cols) * static_cast<int64_t>(elem);
    return true;
  }

  // A vector (norm weight or bias slice), always fp32.
  Result<const float*> Vector(const std::vector<Part>& parts) {
    std::vector<Part> as_rows;
    int64_t n = 0;
    for (const Part& p : parts) n += p.cols;
    std::vector<float> staging(static_cast<size_t>(n));
    int64_t at = 0;
    for (const Part& p : parts) {
      BE_RETURN_IF_ERROR(source_.Read(p.name, p.shape, 0, 1, p.col_begin, p.cols, DType::kF32,
                                      staging.data() + at));
      at += p.cols;
    }
    BE_ASSIGN_OR_RETURN(auto buffer, backend_.Allocate(staging.size() * sizeof(float)));
    backend_.CopyToDevice(buffer->data(), staging.data(), staging.size() * sizeof(float));
    const float* p = static_cast<const float*>(buffer->data());
    owned_->push_back(std::move(buffer));
    *bytes_ += n * 4;
    return p;
  }

 private:
  WeightSource& source_;
  kernels::Backend& backend_;
  DType dtype_;
  std::vector<std::unique_ptr<kernels::Buffer>>* owned_;
  int64_t* bytes_;
};

}  // namespace

Result<std::unique_ptr<LlamaModel>> LlamaModel::Load(const ModelConfig& config,
                                                     const ShardPlan& shard, WeightSource& source,
                                                     kernels::Backend& backend, Communicator& comm,
                                                     const ModelOptions& options) {
  std::unique_ptr<LlamaModel> m(new LlamaModel);
  m->config_ = config;
  m->shard_ = shard;
  m->options_ = options;
  m->backend_ = &backend;
  m->comm_ = &comm;
  m->inv_freq_ = RopeInverseFrequencies(config);

  const int64_t hidden = config.hidden_size, hd = config.head_dim;
  const int64_t q_rows = config.num_heads * hd, kv_rows = config.num_kv_heads * hd;
  const int64_t q0 = shard.head_begin * hd, nq = shard.num_heads * hd;
  const int64_t k0 = shard.kv_head_begin * hd, nkv = shard.num_kv_heads * hd;
  const int64_t i0 = shard.inter_begin, ni = shard.intermediate;
  const std::vector<int64_t> hidden_vec{hidden};
  ShardLoader load(source, backend, options.weight_dtype, &m->buffers_, &m->weight_bytes_);

  for (int64_t l = 0; l < config.num_layers; ++l) {
    auto name = [&](const char* suffix) { return LayerTensor(l, suffix); };
    Layer layer;
    BE_ASSIGN_OR_RETURN(
        layer.wqkv,
        load.Matrix({{name("self_attn.q_proj.weight"), {q_rows, hidden}, q0, nq, 0, hidden},
                     {name("self_attn.k_proj.weight"), {kv_rows, hidden}, k0, nkv, 0, hidden},
                     {name("self_attn.v_proj.weight"), {kv_rows, hidden}, k0, nkv, 0, hidden}}));
    if (config.qkv_bias) {
      BE_ASSIGN_OR_RETURN(layer.bqkv,
                          load.Vector({{name("self_attn.q_proj.bias"), {q_rows}, 0, 1, q0, nq},
                                       {name("self_attn.k_proj.bias"), {kv_rows}, 0, 1, k0, nkv},
                                       {name("self_attn.v_proj.bias"), {kv_rows}, 0, 1, k0, nkv}}));
    }
    BE_ASSIGN_OR_RETURN(
        layer.wo,
        load.Matrix({{name("self_attn.o_proj.weight"), {hidden, q_rows}, 0, hidden, q0, nq}}));
    BE_ASSIGN_OR_RETURN(
        layer.wgate_up,
        load.Matrix(
            {{name("mlp.gate_proj.weight"), {config.intermediate_size, hidden}, i0, ni, 0, hidden},
             {name("mlp.up_proj.weight"), {config.intermediate_size, hidden}, i0, ni, 0, hidden}}));
    BE_ASSIGN_OR_RETURN(layer.wdown, load.Matrix({{name("mlp.down_proj.weight"),
                                                   {hidden, config.intermediate_size},
                                                   0,
                                                   hidden,
                                                   i0,
                                                   ni}}));
    BE_ASSIGN_OR_RETURN(
        layer.attn_norm,
        load.Vector({{name("input_layernorm.weight"), hidden_vec, 0, 1, 0, hidden}}));
    BE_ASSIGN_OR_RETURN(
        layer.mlp_norm,
        load.Vector({{name("post_attention_layernorm.weight"), hidden_vec, 0, 1, 0, hidden}}));
    m->layers_.push_back(layer);
  }
  BE_ASSIGN_OR_RETURN(m->final_norm_, load.Vector({{kFinalNorm, hidden_vec, 0, 1, 0, hidden}}));

  const std::vector<int64_t> vocab_shape{config.vocab_size, hidden};
  const int64_t before_embed = m->weight_bytes_;
  BE_ASSIGN_OR_RETURN(
      m->embed_,
      load.Matrix({{kEmbedTokens, vocab_shape, shard.vocab_begin, shard.vocab, 0, hidden}}));
  if (config.tie_word_embeddings) {
    m->lm_head_ = m->embed_;
  } else {
    m->untied_embed_bytes_ = m->weight_bytes_ - before_embed;
    BE_ASSIGN_OR_RETURN(
        m->lm_head_,
        load.Matrix({{kLmHead, vocab_shape, shard.vocab_begin, shard.vocab, 0, hidden}}));
  }

  BE_ASSIGN_OR_RETURN(m->kv_,
                      KvCacheStorage::Create(backend, config.num_layers, options.num_kv_blocks,
                                             options.block_size, shard.num_kv_heads, hd));
  BE_RETURN_IF_ERROR(m->Allocate());
  return m;
}

Status LlamaModel::Allocate() {
  const int64_t t = options_.max_tokens_per_step;
  const int64_t hidden = config_.hidden_size, hd = config_.head_dim;
  const int64_t nq = shard_.num_heads * hd, nkv = shard_.num_kv_heads * hd;
  const int64_t max_blocks =
      (options_.max_model_len + options_.block_size - 1) / options_.block_size;
  auto floats = [&](int64_t rows, int64_t cols, Tensor* out) -> Status {
    BE_ASSIGN_OR_RETURN(auto b,
                        backend_->Allocate(static_cast<size_t>(rows * cols) * sizeof(float)));
    *out = Tensor::F32(static_cast<float*>(b->data()), rows, cols);
    buffers_.push_back(std::move(b));
    return Status::Ok();
  };
  auto ints = [&](int64_t n, int32_t** out) -> Status {
    BE_ASSIGN_OR_RETURN(auto b, backend_->Allocate(static_cast<size_t>(n) * sizeof(int32_t)));
    *out = static_cast<int32_t*>(b->data());
    buffers_.push_back(std::move(b));
    return Status::Ok();
  };
  BE_RETURN_IF_ERROR(floats(t, hidden, &x_));
  BE_RETURN_IF_ERROR(floats(t, hidden, &h_));
  BE_RETURN_IF_ERROR(floats(t, nq + 2 * nkv, &qkv_));
  BE_RETURN_IF_ERROR(floats(t, nq, &attn_));
  BE_RETURN_IF_ERROR(floats(t, hidden, &proj_));
  BE_RETURN_IF_ERROR(floats(t, 2 * shard_.intermediate, &gate_up_));
  BE_RETURN_IF_ERROR(floats(t, shard_.intermediate, &act_));
  BE_RETURN_IF_ERROR(floats(t, hd / 2, &cos_));
  BE_RETURN_IF_ERROR(floats(t, hd / 2, &sin_));
  BE_RETURN_IF_ERROR(ints(t, &ids_));
  BE_RETURN_IF_ERROR(ints(t, &slots_));
  BE_RETURN_IF_ERROR(ints(t, &logit_rows_));
  BE_RETURN_IF_ERROR(ints(t + 1, &query_start_));
  BE_RETURN_IF_ERROR(ints(t, &context_lens_));
  BE_RETURN_IF_ERROR(ints(t * max_blocks, &block_tables_));
  BE_RETURN_IF_ERROR(ints(options_.num_kv_blocks, &copy_src_));
  BE_RETURN_IF_ERROR(ints(options_.num_kv_blocks, &copy_dst_));
  host_cos_.resize(static_cast<size_t>(t * hd / 2));
  host_sin_.resize(static_cast<size_t>(t * hd / 2));
  return Status::Ok();
}

Status LlamaModel::Reduce(const Tensor& partial) {
  if (comm_->world_size() == 1) return Status::Ok();
  const size_t n = static_cast<size_t>(partial.rows * partial.cols);
  if (comm_->device_memory()) return comm_->AllReduceSum(partial.f32(), n);
  backend_->Synchronize();
  if (backend_->host_addressable()) return comm_->AllReduceSum(partial.f32(), n);
  // A host group for a device backend: through host memory.
  staging_.resize(n);
  backend_->CopyToHost(staging_.data(), partial.data, n * sizeof(float));
  BE_RETURN_IF_ERROR(comm_->AllReduceSum(staging_.data(), n));
  backend_->CopyToDevice(partial.data, staging_.data(), n * sizeof(float));
  return Status::Ok();
}

Status LlamaModel::Layers(int64_t t, const kernels::AttentionBatch& batch) {
  kernels::Backend& be = *backend_;
  const int64_t hd = config_.head_dim;
  const int64_t nq = shard_.num_heads * hd, nkv = shard_.num_kv_heads * hd;
  const float eps = static_cast<float>(config_.rms_norm_eps);
  Tensor x = x_.Rows(0, t), h = h_.Rows(0, t), qkv = qkv_.Rows(0, t), attn = attn_.Rows(0, t);
  Tensor proj = proj_.Rows(0, t), gate_up = gate_up_.Rows(0, t), act = act_.Rows(0, t);
  Tensor cos = cos_.Rows(0, t), sin = sin_.Rows(0, t);

  be.Embedding(embed_, ids_, t, shard_.vocab_begin, x);
  BE_RETURN_IF_ERROR(Reduce(x));
  be.RmsNorm(x, layers_[0].attn_norm, eps, h);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& w = layers_[l];
    be.MatMul(h, w.wqkv, w.bqkv, qkv);
    Tensor q = qkv.Cols(0, nq), k = qkv.Cols(nq, nkv), v = qkv.Cols(nq + nkv, nkv);
    be.RopeWriteKv(q, k, v, cos, sin, hd, slots_, kv_->layer(static_cast<int64_t>(l)));
    be.PagedAttention(q, kv_->layer(static_cast<int64_t>(l)), batch, shard_.num_heads, scale, attn);
    be.MatMul(attn, w.wo, nullptr, proj);
    BE_RETURN_IF_ERROR(Reduce(proj));
    be.AddRmsNorm(x, proj, w.mlp_norm, eps, h);
    be.MatMul(h, w.wgate_up, nullptr, gate_up);
    be.SiluMul(gate_up, act);
    be.MatMul(act, w.wdown, nullptr, proj);
    BE_RETURN_IF_ERROR(Reduce(proj));
    const float* next_norm = l + 1 < layers_.size() ? layers_[l + 1].attn_norm : final_norm_;
    be.AddRmsNorm(x, proj, next_norm, eps, h);
  }
  return Status::Ok();
}

Status LlamaModel::EnsureLogitRows(int64_t rows) {
  if (hsel_.rows >= rows) return Status::Ok();
  kernels::Backend& be = *backend_;
  const int64_t stride = shard_.vocab_stride;
  BE_ASSIGN_OR_RETURN(auto hb, be.Allocate(static_cast<size_t>(rows * config_.hidden_size) * 4));
  BE_ASSIGN_OR_RETURN(auto lb, be.Allocate(static_cast<size_t>(rows * stride) * 4));
  hsel_ = Tensor::F32(static_cast<float*>(hb->data()), rows, config_.hidden_size);
  logits_ = Tensor::F32(static_cast<float*>(lb->data()), rows, stride);
  buffers_.push_back(std::move(hb));
  buffers_.push_back(std::move(lb));
  graphs_.clear();  // captured graphs point at the old buffers
  return Status::Ok();
}

void LlamaModel::ProjectLogits(int64_t rows) {
  backend_->GatherRows(h_, logit_rows_, rows, hsel_.Rows(0, rows));
  backend_->MatMul(hsel_.Rows(0, rows), lm_head_, nullptr,
                   logits_.Rows(0, rows).Cols(0, shard_.vocab));
}

bool LlamaModel::samples_on_device() const {
  return shard_.tp == 1 && !backend_->host_addressable();
}

int64_t LlamaModel::GraphBucket(const StepPlan& plan) const {
  const int64_t t = plan.num_tokens(), s = plan.num_seqs();
  if (!options_.graphs || !backend_->SupportsGraphs()) return 0;
  if (comm_->world_size() > 1 && !comm_->device_memory()) return 0;
  if (t != s || !plan.copy_src.empty() || static_cast<int64_t>(plan.logit_rows.size()) != s) {
    return 0;  // not a pure decode step
  }
  for (int64_t b : {1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256}) {
    if (b >= s) return b <= options_.max_tokens_per_step ? b : 0;
  }
  return 0;
}

Status LlamaModel::ForwardGraph(const StepPlan& plan, int64_t bucket) {
  kernels::Backend& be = *backend_;
  const int64_t s = plan.num_seqs(), hd = config_.head_dim;
  const int64_t width = (options_.max_model_len + options_.block_size - 1) / options_.block_size;
  if (plan.max_blocks_per_seq > width) {
    return InvalidArgument("step plan block tables are wider than the model length allows");
  }
  // Fixed shapes: `bucket` rows; padding rows have no context and write no KV.
  std::vector<int32_t> ids(static_cast<size_t>(bucket), 0), slots(static_cast<size_t>(bucket), -1);
  std::vector<int32_t> positions(static_cast<size_t>(bucket), 0);
  std::vector<int32_t> query_start(static_cast<size_t>(bucket + 1));
  std::vector<int32_t> context(static_cast<size_t>(bucket), 0), rows(static_cast<size_t>(bucket));
  std::vector<int32_t> tables(static_cast<size_t>(bucket * width), 0);
  for (int64_t i = 0; i <= bucket; ++i)
    query_start[static_cast<size_t>(i)] = static_cast<int32_t>(i);
  for (int64_t i = 0; i < bucket; ++i) rows[static_cast<size_t>(i)] = static_cast<int32_t>(i);
  for (int64_t i = 0; i < s; ++i) {
    const auto u = static_cast<size_t>(i);
    ids[u] = plan.token_ids[u];
    slots[u] = plan.slots[u];
    positions[u] = plan.positions[u];
    context[u] = plan.context_lens[u];
    // Plan rows run in logit_rows order, which for a decode step is row order.
    std::copy_n(plan.block_tables.begin() + i * plan.max_blocks_per_seq, plan.max_blocks_per_seq,
                tables.begin() + i * width);
  }
  auto put = [&](int32_t* dst, const std::vector<int32_t>& src) {
    be.CopyToDevice(dst, src.data(), src.size() * sizeof(int32_t));
  };
  put(ids_, ids);
  put(slots_, slots);
  put(query_start_, query_start);
  put(context_lens_, context);
  put(block_tables_, tables);
  put(logit_rows_, rows);
  RopeAngles(inv_freq_, positions.data(), bucket, host_cos_.data(), host_sin_.data());
  be.CopyToDevice(cos_.data, host_cos_.data(),
                  static_cast<size_t>(bucket * hd / 2) * sizeof(float));
  be.CopyToDevice(sin_.data, host_sin_.data(),
                  static_cast<size_t>(bucket * hd / 2) * sizeof(float));
  BE_RETURN_IF_ERROR(EnsureLogitRows(bucket));

  kernels::AttentionBatch batch;
  batch.num_seqs = bucket;
  batch.query_start = query_start_;
  batch.context_lens = context_lens_;
  batch.block_tables = block_tables_;
  batch.max_blocks_per_seq = width;
  batch.max_query_len = 1;
  batch.max_context_len = options_.max_model_len;  // fixed, so the grid is too

  auto it = graphs_.find(bucket);
  if (it != graphs_.end()) return be.Replay(it->second);
  // First step of this size: run it eagerly (which also sizes the backend's scratch), then
  // record the same ops for the next ones.
  BE_RETURN_IF_ERROR(Layers(bucket, batch));
  ProjectLogits(bucket);
  BE_RETURN_IF_ERROR(be.BeginCapture());
  Status captured = Layers(bucket, batch);
  if (captured.ok()) ProjectLogits(bucket);
  auto graph = be.EndCapture();
  BE_RETURN_IF_ERROR(captured);
  if (!graph.ok()) return graph.status();
  graphs_[bucket] = *graph;
  return Status::Ok();
}

Status LlamaModel::Forward(const StepPlan& plan, std::vector<float>* logits) {
  const int64_t t = plan.num_tokens(), s = plan.num_seqs();
  if (t > options_.max_tokens_per_step) {
    return InvalidArgument("step of {} tokens exceeds max_tokens_per_step {}", t,
                           options_.max_tokens_per_step);
  }
  if (plan.max_blocks_per_seq * options_.block_size >
      options_.max_model_len + options_.block_size) {
    return InvalidArgument("step plan block tables are wider than the model length allows");
  }
  kernels::Backend& be = *backend_;
  const int64_t hd = config_.head_dim;
  const int64_t rows = static_cast<int64_t>(plan.logit_rows.size());

  if (const int64_t bucket = GraphBucket(plan); bucket > 0) {
    BE_RETURN_IF_ERROR(ForwardGraph(plan, bucket));
  } else {
    // Inputs to the device.
    auto copy_ints = [&](int32_t* dst, const std::vector<int32_t>& src) {
      if (!src.empty()) be.CopyToDevice(dst, src.data(), src.size() * sizeof(int32_t));
    };
    copy_ints(ids_, plan.token_ids);
    copy_ints(slots_, plan.slots);
    copy_ints(query_start_, plan.query_start);
    copy_ints(context_lens_, plan.context_lens);
    copy_ints(block_tables_, plan.block_tables);
    RopeAngles(inv_freq_, plan.positions.data(), t, host_cos_.data(), host_sin_.data());
    be.CopyToDevice(cos_.data, host_cos_.data(), static_cast<size_t>(t * hd / 2) * sizeof(float));
    be.CopyToDevice(sin_.data, host_sin_.data(), static_cast<size_t>(t * hd / 2) * sizeof(float));
    if (!plan.copy_src.empty()) {
      copy_ints(copy_src_, plan.copy_src);
      copy_ints(copy_dst_, plan.copy_dst);
      for (int64_t l = 0; l < config_.num_layers; ++l) {
        be.CopyBlocks(kv_->layer(l), copy_src_, copy_dst_,
                      static_cast<int64_t>(plan.copy_src.size()));
      }
    }

    kernels::AttentionBatch batch;
    batch.num_seqs = s;
    batch.query_start = query_start_;
    batch.context_lens = context_lens_;
    batch.block_tables = block_tables_;
    batch.max_blocks_per_seq = plan.max_blocks_per_seq;
    for (int64_t i = 0; i < s; ++i) {
      batch.max_query_len =
          std::max<int64_t>(batch.max_query_len, plan.query_start[i + 1] - plan.query_start[i]);
      batch.max_context_len = std::max<int64_t>(batch.max_context_len, plan.context_lens[i]);
    }
    BE_RETURN_IF_ERROR(Layers(t, batch));
    if (rows == 0) return Status::Ok();
    // Logits of the rows that sample: gather them, project onto this rank's vocabulary slice.
    BE_RETURN_IF_ERROR(EnsureLogitRows(rows));
    copy_ints(logit_rows_, plan.logit_rows);
    ProjectLogits(rows);
  }
  if (rows == 0) return Status::Ok();
  // Sampling on the device reads the logits where they are.
  if (samples_on_device() && logits == nullptr) return Status::Ok();

  // All-gather the vocabulary slices to the host.
  const int64_t stride = shard_.vocab_stride, tp = shard_.tp;
  Tensor local = logits_.Rows(0, rows);
  be.Synchronize();
  gathered_.resize(static_cast<size_t>(tp * rows * stride));
  std::vector<float> host_local(static_cast<size_t>(rows * stride), 0.0f);
  if (tp == 1) {
    be.CopyToHost(gathered_.data(), local.data, host_local.size() * sizeof(float));
  } else if (comm_->device_memory()) {
    BE_ASSIGN_OR_RETURN(auto all, be.Allocate(gathered_.size() * sizeof(float)));
    BE_RETURN_IF_ERROR(
        comm_->AllGather(local.f32(), host_local.size(), static_cast<float*>(all->data())));
    be.CopyToHost(gathered_.data(), all->data(), gathered_.size() * sizeof(float));
  } else {
    be.CopyToHost(host_local.data(), local.data, host_local.size() * sizeof(float));
    BE_RETURN_IF_ERROR(comm_->AllGather(host_local.data(), host_local.size(), gathered_.data()));
  }
  if (logits != nullptr) {
    const int64_t vocab = config_.vocab_size;
    logits->resize(static_cast<size_t>(rows * vocab));
    for (int64_t r = 0; r < tp; ++r) {
      const int64_t begin = std::min(r * stride, vocab);
      const int64_t n = std::min(stride, vocab - begin);
      for (int64_t i = 0; i < rows; ++i) {
        std::memcpy(logits->data() + i * vocab + begin, gathered_.data() + (r * rows + i) * stride,
                    static_cast<size_t>(n) * sizeof(float));
      }
    }
  }
  return Status::Ok();
}

Status LlamaModel::Sample(const std::vector<kernels::SampleSpec>& specs,
                          std::vector<int32_t>* tokens) {
  kernels::Backend& be = *backend_;
  const int64_t n = static_cast<int64_t>(specs.size());
  tokens->resize(specs.size());
  if (n == 0) return Status::Ok();
  if (sample_capacity_ < n) {
    BE_ASSIGN_OR_RETURN(auto sb, be.Allocate(specs.size() * sizeof(kernels::SampleSpec)));
    BE_ASSIGN_OR_RETURN(auto tb, be.Allocate(specs.size() * sizeof(int32_t)));
    specs_dev_ = static_cast<kernels::SampleSpec*>(sb->data());
    tokens_dev_ = static_cast<int32_t*>(tb->data());
    buffers_.push_back(std::move(sb));
    buffers_.push_back(std::move(tb));
    sample_capacity_ = n;
  }
  for (const kernels::SampleSpec& spec : specs) {
    if (spec.row < 0 || spec.row >= hsel_.rows) {
      return InvalidArgument("sample of logits row {}: only {} rows", spec.row, hsel_.rows);
    }
  }
  be.CopyToDevice(specs_dev_, specs.data(), specs.size() * sizeof(kernels::SampleSpec));
  be.Sample(logits_.Cols(0, shard_.vocab), specs_dev_, n, tokens_dev_);
  be.CopyToHost(tokens->data(), tokens_dev_, specs.size() * sizeof(int32_t));
  return Status::Ok();
}

}  // namespace breakeven::engine
