// StepPlan: everything a rank needs to run one forward step, built by rank 0 from the batcher's
// schedule and broadcast to the other ranks, which run the same step on their shards.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "engine/batcher.h"

namespace breakeven::engine {

struct StepPlan {
  // kIdle: nothing to run; rank 0 is alive (keeps followers' collective deadlines from expiring
  // while the engine waits for requests).
  enum class Kind : int32_t { kForward = 1, kStop = 2, kIdle = 3 };
  Kind kind = Kind::kForward;
  int32_t max_blocks_per_seq = 0;
  std::vector<int32_t> token_ids;     // (T)
  std::vector<int32_t> positions;     // (T)
  std::vector<int32_t> slots;         // (T) block * block_size + offset
  std::vector<int32_t> query_start;   // (S + 1)
  std::vector<int32_t> context_lens;  // (S)
  std::vector<int32_t> block_tables;  // (S * max_blocks_per_seq)
  std::vector<int32_t> logit_rows;    // token rows whose logits rank 0 samples from
  std::vector<int32_t> copy_src;      // KV blocks to copy before the step
  std::vector<int32_t> copy_dst;

  int64_t num_tokens() const { return static_cast<int64_t>(token_ids.size()); }
  int64_t num_seqs() const { return static_cast<int64_t>(context_lens.size()); }

  static StepPlan Stop();
  static StepPlan Idle();
  // From the batcher's schedule (rank 0). Chunks that sample contribute their last row to
  // logit_rows, in chunk order.
  static StepPlan FromSchedule(const Schedule& schedule, int64_t block_size);

  std::string Encode() const;
  // Checks every index against the cache geometry, so a corrupt plan is an error, not an
  // out-of-bounds write.
  static Result<StepPlan> Decode(std::string_view bytes, int64_t num_blocks, int64_t block_size,
                                 int64_t vocab_size);
};

}  // namespace breakeven::engine
