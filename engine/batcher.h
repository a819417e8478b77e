// Continuous batching: which tokens of which sequences go into the next forward step.
//
// Every step packs, under a token budget (max_num_batched_tokens) and a sequence limit
// (max_num_seqs):
//   1. one decode token for every running sequence that has its whole context cached;
//   2. the next chunk of every running sequence still prefilling (chunked prefill);
//   3. new sequences from the waiting queue, oldest first, while budget, seats and free KV blocks
//      last (admission never preempts).
// A sequence whose next token needs a KV block when none is free preempts the most recently
// admitted running sequence: that one gives back its blocks and waits at the front of the queue
// to recompute its tokens (prompt and generated so far) later. Nothing is dropped.
//
// Single-threaded; owned by the executor on rank 0.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <vector>

#include "engine/kv_cache.h"
#include "engine/sampler.h"

namespace breakeven::engine {

enum class FinishReason { kNone, kLength, kEos, kCancelled };

struct Sequence {
  uint64_t id = 0;
  uint64_t request_id = 0;
  int sample_index = 0;
  std::vector<int32_t> tokens;  // prompt, then generated tokens
  int64_t prompt_len = 0;
  int64_t num_computed = 0;  // tokens whose K/V are in the cache
  int64_t max_new_tokens = 0;
  SamplingParams sampling;
  std::mt19937_64 rng;
  std::vector<int32_t> block_table;
  int64_t admitted_order = -1;  // set when first admitted; preemption takes the newest
  bool fork_pending = false;    // n > 1: forks into n samples once the prompt is cached
  int preemptions = 0;
  FinishReason finish = FinishReason::kNone;

  int64_t generated() const { return static_cast<int64_t>(tokens.size()) - prompt_len; }
  int64_t uncomputed() const { return static_cast<int64_t>(tokens.size()) - num_computed; }
};

struct ScheduledChunk {
  Sequence* seq = nullptr;
  int64_t start = 0;     // first position fed this step (== seq->num_computed before the step)
  int64_t count = 0;     // tokens fed this step
  bool samples = false;  // reaches the end of the known tokens: its last row yields logits
};

struct Schedule {
  std::vector<ScheduledChunk> chunks;
  std::vector<std::pair<int32_t, int32_t>> block_copies;  // (src, dst), to run before the step
  int64_t num_tokens = 0;
  int preempted = 0;
  bool empty() const { return chunks.empty(); }
};

struct BatcherConfig {
  int64_t max_num_batched_tokens = 2048;
  int64_t max_num_seqs = 64;
  int64_t block_size = 16;
  int64_t num_blocks = 0;
};

class Batcher {
 public:
  explicit Batcher(const BatcherConfig& config);

  // Blocks a sequence of `tokens` tokens needs.
  int64_t BlocksFor(int64_t tokens) const;

  // Queues a new sequence.
  void Add(std::unique_ptr<Sequence> seq);
  Schedule Next();
  // After a step ran: the scheduled chunks' tokens are in the cache.
  void Commit(const Schedule& schedule);
  // Forks `parent` (whose prompt is now cached) into n samples sharing its blocks; returns the
  // n - 1 new sequences (the parent is sample 0).
  std::vector<Sequence*> Fork(Sequence* parent, int n, uint64_t* next_id);
  // Removes a running or waiting sequence and frees its blocks.
  void Finish(Sequence* seq, FinishReason reason);
  // Every sequence of the request, waiting or running.
  std::vector<Sequence*> SequencesOf(uint64_t request_id);

  bool HasWork() const { return !waiting_.empty() || !running_.empty(); }
  size_t running() const { return running_.size(); }
  size_t waiting() const { return waiting_.size(); }
  const BlockAllocator& blocks() const { return blocks_; }
  int64_t preemptions() const { return preemptions_; }

 private:
  // Makes sure positions [num_computed, num_computed + count) have blocks, copying a shared
  // block that would be written. False when the blocks are not there.
  bool Reserve(Sequence& seq, int64_t count, Schedule* schedule);
  void Preempt(Sequence& seq);
  void ReleaseBlocks(Sequence& seq);

  BatcherConfig config_;
  BlockAllocator blocks_;
  std::deque<std::unique_ptr<Sequence>> waiting_;   // oldest first; preempted ones at the front
  std::vector<std::unique_ptr<Sequence>> running_;  // admission order
  int64_t next_admission_ = 0;
  int64_t preemptions_ = 0;
};

}  // namespace breakeven::engine
