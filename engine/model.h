// LlamaModel: one rank's shard of a Llama-family model and its forward pass.
//
// Per step, on every rank, for the T tokens of the plan (all sequences packed together):
//
//   x = embed(tokens)                         (T, hidden)   vocab-parallel, all-reduce
//   h = rms_norm(x)
//   per layer:
//     qkv = h W_qkv^T (+ b)                   (T, (nq + 2 nkv) hd)   column-parallel by head
//     rope(q, k); kv_cache <- k, v
//     a = paged_attention(q, kv_cache)        (T, nq hd)
//     x += all_reduce(a W_o^T)                (T, hidden)   row-parallel
//     h = rms_norm(x)
//     g = silu(h W_gate^T) * (h W_up^T)       (T, inter / tp)        column-parallel
//     x += all_reduce(g W_down^T)             row-parallel
//     h = rms_norm(x)                         (the next layer's input norm, or the final norm)
//   logits = h[logit rows] W_lm^T             (S, vocab / tp), all-gathered to (S, vocab)
//
// Two all-reduces per layer, as Megatron-LM. nq, nkv and inter are this rank's share
// (ShardPlan). Weights are stored as the chosen dtype; activations and the KV cache are fp32.
#pragma once

#include <map>
#include <memory>
#include <vector>

#include "common/status.h"
#include "engine/communicator.h"
#include "engine/kv_cache.h"
#include "engine/model_config.h"
#include "engine/sharding.h"
#include "engine/step_plan.h"
#include "engine/weights.h"
#include "kernels/backend.h"

namespace breakeven::engine {

struct ModelOptions {
  DType weight_dtype = DType::kF32;
  int64_t num_kv_blocks = 0;
  int64_t block_size = 16;
  int64_t max_tokens_per_step = 2048;  // activation buffers are sized for this many tokens
  int64_t max_model_len = 4096;        // longest sequence (prompt + output)
  bool graphs = true;  // capture decode steps as graphs where the backend can (CUDA graphs)
};

class LlamaModel {
 public:
  // Reads this rank's shard from `source` and allocates the KV cache. Errors name the tensor.
  static Result<std::unique_ptr<LlamaModel>> Load(const ModelConfig& config, const ShardPlan& shard,
                                                  WeightSource& source, kernels::Backend& backend,
                                                  Communicator& comm, const ModelOptions& options);
  ~LlamaModel();

  // Runs one step. Collective: every rank calls it with the same plan. On rank 0, *logits
  // receives (plan.logit_rows.size(), vocab) fp32 values, row i for logit_rows[i]; other ranks
  // may pass null.
  // With samples_on_device() and logits == null, the logits stay on the device for Sample.
  // Pure decode steps run as one graph replay per batch-size bucket (1, 2, 4, 8, 16, 24, 32,
  // 48, 64, ...; padded up) when options().graphs and the backend can capture graphs.
  Status Forward(const StepPlan& plan, std::vector<float>* logits);
  // Whether rank 0 samples on the device from the last Forward's logits (tp 1 on a device
  // backend); otherwise Forward hands the logits to the host.
  bool samples_on_device() const;
  // tokens[i] = the token drawn for specs[i] (rows index the last Forward's logit rows).
  Status Sample(const std::vector<kernels::SampleSpec>& specs, std::vector<int32_t>* tokens);

  const ModelConfig& config() const { return config_; }
  const ShardPlan& shard() const { return shard_; }
  const ModelOptions& options() const { return options_; }
  int64_t weight_bytes() const { return weight_bytes_; }
  int64_t kv_cache_bytes() const { return kv_->bytes(); }
  // Bytes of weights one decode step reads on this rank: every matrix once, plus one embedding
  // row per token (MBU's numerator, with the KV cache read added per token by the caller).
  int64_t decode_weight_bytes() const { return weight_bytes_ - untied_embed_bytes_; }

 private:
  struct Layer;
  LlamaModel() = default;
  Status Allocate();
  Status Reduce(const kernels::Tensor& partial);
  // Embedding, every layer and the final norm over the first t rows of the input buffers.
  Status Layers(int64_t t, const kernels::AttentionBatch& batch);
  Status EnsureLogitRows(int64_t rows);
  void ProjectLogits(int64_t rows);
  // The graph bucket for a plan, or 0 to run it op by op.
  int64_t GraphBucket(const StepPlan& plan) const;
  Status ForwardGraph(const StepPlan& plan, int64_t bucket);

  ModelConfig config_;
  ShardPlan shard_;
  ModelOptions options_;
  kernels::Backend* backend_ = nullptr;
  Communicator* comm_ = nullptr;
  std::vector<std::unique_ptr<kernels::Buffer>> buffers_;
  std::vector<Layer> layers_;
  kernels::Tensor embed_, lm_head_;
  const float* final_norm_ = nullptr;
  std::unique_ptr<KvCacheStorage> kv_;
  std::vector<double> inv_freq_;
  int64_t weight_bytes_ = 0;
  int64_t untied_embed_bytes_ = 0;  // the embedding table when it is not also the LM head

  // Activation and input buffers, sized for max_tokens_per_step.
  kernels::Tensor x_, h_, qkv_, attn_, proj_, gate_up_, act_, hsel_, logits_, cos_, sin_;
  int32_t *ids_ = nullptr, *slots_ = nullptr, *logit_rows_ = nullptr, *query_start_ = nullptr,
          *context_lens_ = nullptr, *block_tables_ = nullptr, *copy_src_ = nullptr,
          *copy_dst_ = nullptr;
  std::vector<float> host_cos_, host_sin_, gathered_, staging_;
  kernels::SampleSpec* specs_dev_ = nullptr;
  int32_t* tokens_dev_ = nullptr;
  int64_t sample_capacity_ = 0;
  std::map<int64_t, int> graphs_;  // bucket -> backend graph id
};

}  // namespace breakeven::engine
