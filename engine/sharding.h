// Megatron-style tensor parallelism: which slice of each weight a rank holds.
//
//   q/k/v_proj, gate/up_proj   column-parallel: split by output rows (heads / MLP columns)
//   o_proj, down_proj          row-parallel: split by input columns; partial sums all-reduced
//   embed_tokens, lm_head      vocab-parallel: split by vocabulary rows
//
// Query heads divide evenly. KV heads divide when tp <= num_kv_heads; when tp > num_kv_heads each
// KV head is replicated on tp / num_kv_heads adjacent ranks (as vLLM and TensorRT-LLM do), so
// tp must be a multiple of num_kv_heads. The vocabulary is split in ceil(vocab / tp) rows per
// rank; the last rank's slice may be shorter (its padding rows are not computed).
#pragma once

#include <cstdint>

#include "common/status.h"
#include "engine/model_config.h"

namespace breakeven::engine {

struct ShardPlan {
  int tp = 1;
  int rank = 0;
  int64_t head_begin = 0, num_heads = 0;        // query heads of this rank
  int64_t kv_head_begin = 0, num_kv_heads = 0;  // KV heads of this rank
  int64_t kv_replicas = 1;                      // ranks sharing each KV head
  int64_t inter_begin = 0, intermediate = 0;    // MLP columns of this rank
  int64_t vocab_begin = 0, vocab = 0;           // vocabulary rows of this rank (may be short)
  int64_t vocab_stride = 0;                     // rows per rank before the cut: ceil(V / tp)

  // Errors name the limit: "tp 3 does not divide the 32 attention heads of llama-3.1-8b".
  static Result<ShardPlan> Make(const ModelConfig& config, int tp, int rank);
};

}  // namespace breakeven::engine
