// Continuous batching as a specification: budgets, order, chunking, preemption, sharing.
#include "engine/batcher.h"

#include <gtest/gtest.h>

namespace breakeven::engine {
namespace {

std::unique_ptr<Sequence> Seq(uint64_t id, int prompt, int max_new = 100) {
  auto s = std::make_unique<Sequence>();
  s->id = id;
  s->request_id = id;
  s->tokens.assign(static_cast<size_t>(prompt), 5);
  s->prompt_len = prompt;
  s->max_new_tokens = max_new;
  return s;
}

// Runs a step without a model: commit the schedule, then append one generated token to every
// sequence that sampled.
void Advance(Batcher& b, const Schedule& s) {
  b.Commit(s);
  for (const ScheduledChunk& c : s.chunks) {
    if (c.samples) c.seq->tokens.push_back(7);
  }
}

int64_t Count(const Schedule& s, const Sequence* seq) {
  for (const ScheduledChunk& c : s.chunks) {
    if (c.seq == seq) return c.count;
  }
  return 0;
}

TEST(Batcher, PrefillIsChunkedUnderTheTokenBudget) {
  Batcher b(
      {/*max_num_batched_tokens=*/32, /*max_num_seqs=*/8, /*block_size=*/16, /*num_blocks=*/64});
  auto owned = Seq(1, 80);
  Sequence* s = owned.get();
  b.Add(std::move(owned));
  std::vector<int64_t> chunks;
  for (int step = 0; step < 3; ++step) {
    Schedule sch = b.Next();
    ASSERT_EQ(sch.chunks.size(), 1u);
    EXPECT_LE(sch.num_tokens, 32);
    chunks.push_back(sch.chunks[0].count);
    EXPECT_EQ(sch.chunks[0].samples, step == 2) << "only the chunk reaching the end samples";
    Advance(b, sch);
  }
  EXPECT_EQ(chunks, (std::vector<int64_t>{32, 32, 16}));
  EXPECT_EQ(s->num_computed, 80);
  EXPECT_EQ(s->block_table.size(), 5u);  // 80 tokens / 16
}

TEST(Batcher, DecodesGoFirstAndPrefillsFillTheRest) {
  Batcher b({40, 8, 16, 64});
  auto a = Seq(1, 10), c = Seq(2, 100);
  Sequence *sa = a.get(), *sc = c.get();
  b.Add(std::move(a));
  Advance(b, b.Next());  // a: whole prompt, samples
  b.Add(std::move(c));
  Schedule s = b.Next();
  EXPECT_EQ(s.chunks[0].seq, sa) << "the decode comes first";
  EXPECT_EQ(Count(s, sa), 1);
  EXPECT_EQ(Count(s, sc), 39) << "the new prompt takes what the budget leaves";
}

TEST(Batcher, SequenceLimitIsRespected) {
  Batcher b({1000, 3, 16, 64});
  for (uint64_t i = 1; i <= 5; ++i) b.Add(Seq(i, 4));
  Schedule s = b.Next();
  EXPECT_EQ(s.chunks.size(), 3u);
  EXPECT_EQ(b.waiting(), 2u);
}

TEST(Batcher, OutOfBlocksPreemptsTheNewestAndResumesItFromScratch) {
  // 4 blocks of 4 tokens; two sequences of 7 tokens take 2 blocks each.
  Batcher b({100, 8, 4, 4});
  auto first = Seq(1, 7), second = Seq(2, 7);
  Sequence *s1 = first.get(), *s2 = second.get();
  b.Add(std::move(first));
  b.Add(std::move(second));
  Advance(b, b.Next());  // both prefilled: 8 tokens each after sampling, 2 blocks each, 0 free
  EXPECT_EQ(b.blocks().free_blocks(), 0);

  // Position 7 fits in each one's second block; position 8 needs a third block.
  Advance(b, b.Next());
  Schedule s = b.Next();
  EXPECT_EQ(s.preempted, 1);
  EXPECT_EQ(Count(s, s1), 1) << "the older sequence keeps running";
  EXPECT_EQ(Count(s, s2), 0);
  EXPECT_EQ(s2->num_computed, 0) << "the preempted one recomputes later";
  EXPECT_EQ(s2->preemptions, 1);
  EXPECT_EQ(s2->tokens.size(), 9u) << "nothing it generated is lost";
  EXPECT_EQ(b.waiting(), 1u);
  Advance(b, s);

  // Once the first finishes, the second comes back and recomputes all 9 tokens in one chunk.
  b.Finish(s1, FinishReason::kLength);
  Schedule back = b.Next();
  ASSERT_EQ(back.chunks.size(), 1u);
  EXPECT_EQ(back.chunks[0].seq, s2);
  EXPECT_EQ(back.chunks[0].count, 9);
  EXPECT_TRUE(back.chunks[0].samples);
}

TEST(Batcher, ForkedSamplesShareBlocksAndCopyOnFirstWrite) {
  Batcher b({100, 8, 4, 16});
  auto parent_owned = Seq(1, 6);  // 2 blocks; the second is half full
  Sequence* parent = parent_owned.get();
  b.Add(std::move(parent_owned));
  Schedule prefill = b.Next();
  b.Commit(prefill);
  uint64_t next_id = 100;
  std::vector<Sequence*> children = b.Fork(parent, 3, &next_id);
  ASSERT_EQ(children.size(), 2u);
  EXPECT_EQ(b.blocks().used_blocks(), 2) << "three samples, one copy of the prompt";
  for (Sequence* c : children) EXPECT_EQ(c->block_table, parent->block_table);
  EXPECT_EQ(b.blocks().refcount(parent->block_table[1]), 3);

  for (Sequence* s : {parent, children[0], children[1]}) s->tokens.push_back(9);
  Schedule decode = b.Next();
  // Two of the three write position 6 into a copy of the shared half-full block; the last one
  // finds it no longer shared and writes in place.
  EXPECT_EQ(decode.block_copies.size(), 2u);
  EXPECT_EQ(b.blocks().used_blocks(), 4);
  EXPECT_EQ(b.blocks().refcount(parent->block_table[0]), 3) << "full blocks stay shared";
  EXPECT_NE(children[0]->block_table[1], children[1]->block_table[1]);
}

TEST(Batcher, FinishingEverythingReturnsEveryBlock) {
  Batcher b({100, 8, 4, 16});
  auto p = Seq(1, 6);
  Sequence* parent = p.get();
  b.Add(std::move(p));
  b.Commit(b.Next());
  uint64_t next_id = 10;
  std::vector<Sequence*> kids = b.Fork(parent, 4, &next_id);
  for (Sequence* s : {parent, kids[0], kids[1], kids[2]}) s->tokens.push_back(1);
  Advance(b, b.Next());
  for (Sequence* s : {kids[2], parent, kids[0], kids[1]}) b.Finish(s, FinishReason::kLength);
  EXPECT_EQ(b.blocks().free_blocks(), 16);
  EXPECT_FALSE(b.HasWork());
}

TEST(Batcher, AdmissionNeverPreempts) {
  Batcher b({100, 8, 4, 3});
  auto big = Seq(1, 8);  // 2 blocks
  b.Add(std::move(big));
  Advance(b, b.Next());
  b.Add(Seq(2, 8));  // needs 2 blocks; 1 is free
  Schedule s = b.Next();
  EXPECT_EQ(s.preempted, 0);
  EXPECT_EQ(s.chunks.size(), 1u);
  EXPECT_EQ(b.waiting(), 1u);
}

}  // namespace
}  // namespace breakeven::engine
