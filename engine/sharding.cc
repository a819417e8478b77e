#include "engine/sharding.h"

#include <algorithm>

namespace breakeven::engine {

Result<ShardPlan> ShardPlan::Make(const ModelConfig& c, int tp, int rank) {
  if (tp < 1) return InvalidArgument("tp must be at least 1 (got {})", tp);
  if (rank < 0 || rank >= tp) return InvalidArgument("rank {} is outside tp {}", rank, tp);
  if (c.num_heads % tp != 0) {
    return InvalidArgument("tp {} does not divide the {} attention heads of {}", tp, c.num_heads,
                           c.name);
  }
  if (c.num_kv_heads % tp != 0 && tp % c.num_kv_heads != 0) {
    return InvalidArgument(
        "tp {} and the {} key/value heads of {}: one must be a multiple of the other", tp,
        c.num_kv_heads, c.name);
  }
  if (c.intermediate_size % tp != 0) {
    return InvalidArgument("tp {} does not divide the intermediate size {} of {}", tp,
                           c.intermediate_size, c.name);
  }
  ShardPlan p;
  p.tp = tp;
  p.rank = rank;
  p.num_heads = c.num_heads / tp;
  p.head_begin = rank * p.num_heads;
  if (tp <= c.num_kv_heads) {
    p.num_kv_heads = c.num_kv_heads / tp;
    p.kv_head_begin = rank * p.num_kv_heads;
  } else {
    p.kv_replicas = tp / c.num_kv_heads;
    p.num_kv_heads = 1;
    p.kv_head_begin = rank / p.kv_replicas;
  }
  p.intermediate = c.intermediate_size / tp;
  p.inter_begin = rank * p.intermediate;
  p.vocab_stride = (c.vocab_size + tp - 1) / tp;
  p.vocab_begin = std::min<int64_t>(rank * p.vocab_stride, c.vocab_size);
  p.vocab = std::min<int64_t>(p.vocab_stride, c.vocab_size - p.vocab_begin);
  return p;
}

}  // namespace breakeven::engine
