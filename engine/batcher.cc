#include "engine/batcher.h"

#include <algorithm>

namespace breakeven::engine {

Batcher::Batcher(const BatcherConfig& config) : config_(config), blocks_(config.num_blocks) {}

int64_t Batcher::BlocksFor(int64_t tokens) const {
  return (tokens + config_.block_size - 1) / config_.block_size;
}

void Batcher::Add(std::unique_ptr<Sequence> seq) { waiting_.push_back(std::move(seq)); }

bool Batcher::Reserve(Sequence& seq, int64_t count, Schedule* schedule) {
  const int64_t first = seq.num_computed;
  const int64_t needed = BlocksFor(first + count) - static_cast<int64_t>(seq.block_table.size());
  // The first block written may be shared with another sample: it is copied before writing.
  const int64_t first_block = first / config_.block_size;
  const bool copy = first_block < static_cast<int64_t>(seq.block_table.size()) &&
                    blocks_.refcount(seq.block_table[static_cast<size_t>(first_block)]) > 1;
  if (blocks_.free_blocks() < needed + (copy ? 1 : 0)) return false;
  if (copy) {
    int32_t& slot = seq.block_table[static_cast<size_t>(first_block)];
    int32_t fresh = *blocks_.Allocate();
    schedule->block_copies.emplace_back(slot, fresh);
    blocks_.Release(slot);
    slot = fresh;
  }
  for (int64_t i = 0; i < needed; ++i) seq.block_table.push_back(*blocks_.Allocate());
  return true;
}

void Batcher::ReleaseBlocks(Sequence& seq) {
  for (int32_t b : seq.block_table) blocks_.Release(b);
  seq.block_table.clear();
}

void Batcher::Preempt(Sequence& seq) {
  ReleaseBlocks(seq);
  seq.num_computed = 0;
  ++seq.preemptions;
  ++preemptions_;
}

Schedule Batcher::Next() {
  Schedule out;
  int64_t budget = config_.max_num_batched_tokens;
  auto scheduled = [&](const Sequence* s) {
    return std::any_of(out.chunks.begin(), out.chunks.end(),
                       [&](const ScheduledChunk& c) { return c.seq == s; });
  };

  // Running sequences in admission order: decodes (one token each) in the first pass, prefills
  // still in progress in the second. running_ is in admission order, so the newest sequence not
  // yet in this step is always at or after index i: preempting it never disturbs the walk.
  for (int pass = 0; pass < 2; ++pass) {
    size_t i = 0;
    while (i < running_.size() && budget > 0) {
      Sequence* seq = running_[i].get();
      if ((seq->uncomputed() == 1) != (pass == 0) || scheduled(seq)) {
        ++i;
        continue;
      }
      const int64_t count = std::min(seq->uncomputed(), budget);
      bool preempted_self = false;
      while (!Reserve(*seq, count, &out)) {
        size_t v = running_.size() - 1;
        while (scheduled(running_[v].get())) --v;
        Sequence* victim = running_[v].get();
        Preempt(*victim);
        ++out.preempted;
        std::unique_ptr<Sequence> owned = std::move(running_[v]);
        running_.erase(running_.begin() + static_cast<std::ptrdiff_t>(v));
        // Back to the waiting queue, ahead of everything admitted after it.
        auto pos = std::find_if(waiting_.begin(), waiting_.end(), [&](const auto& w) {
          return w->admitted_order < 0 || w->admitted_order > owned->admitted_order;
        });
        waiting_.insert(pos, std::move(owned));
        if (victim == seq) {
          preempted_self = true;
          break;
        }
      }
      if (preempted_self) continue;  // running_[i] is now the next sequence
      out.chunks.push_back({seq, seq->num_computed, count, count == seq->uncomputed()});
      budget -= count;
      ++i;
    }
  }

  // Admit waiting sequences while there is room; never preempt for them, and not in a step that
  // had to preempt (the freed blocks would only be fought over again).
  while (out.preempted == 0 && !waiting_.empty() && budget > 0 &&
         static_cast<int64_t>(running_.size()) < config_.max_num_seqs) {
    Sequence& seq = *waiting_.front();
    int64_t count = std::min(seq.uncomputed(), budget);
    if (!Reserve(seq, count, &out)) break;
    if (seq.admitted_order < 0) seq.admitted_order = next_admission_++;
    out.chunks.push_back({&seq, seq.num_computed, count, count == seq.uncomputed()});
    budget -= count;
    // Keep running_ in admission order (a resumed sequence goes back to its place).
    auto pos = std::find_if(running_.begin(), running_.end(),
                            [&](const auto& r) { return r->admitted_order > seq.admitted_order; });
    running_.insert(pos, std::move(waiting_.front()));
    waiting_.pop_front();
  }
  for (const ScheduledChunk& c : out.chunks) out.num_tokens += c.count;
  return out;
}

void Batcher::Commit(const Schedule& schedule) {
  for (const ScheduledChunk& c : schedule.chunks) c.seq->num_computed += c.count;
}

std::vector<Sequence*> Batcher::Fork(Sequence* parent, int n, uint64_t* next_id) {
  std::vector<Sequence*> children;
  auto it = std::find_if(running_.begin(), running_.end(),
                         [&](const auto& r) { return r.get() == parent; });
  parent->fork_pending = false;
  for (int i = 1; i < n; ++i) {
    auto child = std::make_unique<Sequence>();
    child->id = (*next_id)++;
    child->request_id = parent->request_id;
    child->sample_index = i;
    child->tokens = parent->tokens;
    child->prompt_len = parent->prompt_len;
    child->num_computed = parent->num_computed;
    child->max_new_tokens = parent->max_new_tokens;
    child->sampling = parent->sampling;
    child->rng = SampleRng(parent->sampling.seed, i);
    child->block_table = parent->block_table;
    for (int32_t b : child->block_table) blocks_.Retain(b);
    child->admitted_order = parent->admitted_order;
    children.push_back(child.get());
    it = running_.insert(it + 1, std::move(child));
  }
  return children;
}

void Batcher::Finish(Sequence* seq, FinishReason reason) {
  seq->finish = reason;
  ReleaseBlocks(*seq);
  auto in_running =
      std::find_if(running_.begin(), running_.end(), [&](const auto& r) { return r.get() == seq; });
  if (in_running != running_.end()) {
    running_.erase(in_running);
    return;
  }
  auto in_waiting =
      std::find_if(waiting_.begin(), waiting_.end(), [&](const auto& w) { return w.get() == seq; });
  if (in_waiting != waiting_.end()) waiting_.erase(in_waiting);
}

std::vector<Sequence*> Batcher::SequencesOf(uint64_t request_id) {
  std::vector<Sequence*> out;
  for (auto& s : running_) {
    if (s->request_id == request_id) out.push_back(s.get());
  }
  for (auto& s : waiting_) {
    if (s->request_id == request_id) out.push_back(s.get());
  }
  return out;
}

}  // namespace breakeven::engine
