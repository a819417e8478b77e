#include "engine/model.h"

#include <cmath>
#include <functional>
#include <limits>

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
  const int64_t nq = shard_.num_heads * hd, nkv = shard_.num_kv_heads * hd;
  const float eps = static_cast<float>(config_.rms_norm_eps);

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

  Tensor x = x_.Rows(0, t), h = h_.Rows(0, t), qkv = qkv_.Rows(0, t), attn = attn_.Rows(0, t);
  Tensor proj = proj_.Rows(0, t), gate_up = gate_up_.Rows(0, t), act = act_.Rows(0, t);
  Tensor cos = cos_.Rows(0, t), sin = sin_.Rows(0, t);
  auto reduce = [&](const Tensor& partial) -> Status {
    if (comm_->world_size() == 1) return Status::Ok();
    be.Synchronize();
    return comm_->AllReduceSum(partial.f32(), static_cast<size_t>(partial.rows * partial.cols));
  };

  be.Embedding(embed_, ids_, t, shard_.vocab_begin, x);
  BE_RETURN_IF_ERROR(reduce(x));
  be.RmsNorm(x, layers_[0].attn_norm, eps, h);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& w = layers_[l];
    be.MatMul(h, w.wqkv, w.bqkv, qkv);
    Tensor q = qkv.Cols(0, nq), k = qkv.Cols(nq, nkv), v = qkv.Cols(nq + nkv, nkv);
    be.Rope(q, k, cos, sin, hd);
    be.WriteKv(k, v, slots_, kv_->layer(static_cast<int64_t>(l)));
    be.PagedAttention(q, kv_->layer(static_cast<int64_t>(l)), batch, shard_.num_heads, scale, attn);
    be.MatMul(attn, w.wo, nullptr, proj);
    BE_RETURN_IF_ERROR(reduce(proj));
    be.AddRmsNorm(x, proj, w.mlp_norm, eps, h);
    be.MatMul(h, w.wgate_up, nullptr, gate_up);
    be.SiluMul(gate_up, act);
    be.MatMul(act, w.wdown, nullptr, proj);
    BE_RETURN_IF_ERROR(reduce(proj));
    const float* next_norm = l + 1 < layers_.size() ? layers_[l + 1].attn_norm : final_norm_;
    be.AddRmsNorm(x, proj, next_norm, eps, h);
  }

  // Logits of the rows that sample: gather them, project onto this rank's vocabulary slice,
  // all-gather the slices.
  const int64_t rows = static_cast<int64_t>(plan.logit_rows.size());
  if (rows == 0) return Status::Ok();
  const int64_t stride = shard_.vocab_stride, tp = shard_.tp;
  if (hsel_.rows < rows) {
    BE_ASSIGN_OR_RETURN(auto hb, be.Allocate(static_cast<size_t>(rows * config_.hidden_size) * 4));
    BE_ASSIGN_OR_RETURN(auto lb, be.Allocate(static_cast<size_t>(rows * stride) * 4));
    hsel_ = Tensor::F32(static_cast<float*>(hb->data()), rows, config_.hidden_size);
    logits_ = Tensor::F32(static_cast<float*>(lb->data()), rows, stride);
    buffers_.push_back(std::move(hb));
    buffers_.push_back(std::move(lb));
  }
  Tensor hsel = hsel_.Rows(0, rows), local = logits_.Rows(0, rows);
  copy_ints(logit_rows_, plan.logit_rows);
  be.GatherRows(h, logit_rows_, rows, hsel);
  be.MatMul(hsel, lm_head_, nullptr, local.Cols(0, shard_.vocab));
  be.Synchronize();
  gathered_.resize(static_cast<size_t>(tp * rows * stride));
  std::vector<float> host_local(static_cast<size_t>(rows * stride), 0.0f);
  be.CopyToHost(host_local.data(), local.data, host_local.size() * sizeof(float));
  if (tp == 1) {
    gathered_.swap(host_local);
  } else {
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

}  // namespace breakeven::engine
