// The forward pass against an independent double-precision reference, and against itself under
// tensor parallelism, incremental decoding, chunked prefill and batching.
#include "engine/model.h"

#include <gtest/gtest.h>

#include <mutex>
#include <numeric>

#include "tests/engine/engine_harness.h"
#include "tests/engine/reference_model.h"

namespace breakeven::engine {
namespace {

using testing::MakePlan;
using testing::RunRanks;
using testing::SeqSpec;
using testing::SmallOptions;

constexpr uint64_t kSeed = 1234;
constexpr int32_t kMaxBlocks = 32;

std::vector<int32_t> Prompt(int n, int32_t vocab, int salt = 0) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) t[i] = static_cast<int32_t>((i * 37 + 11 + salt * 101) % vocab);
  return t;
}

std::vector<int32_t> Blocks(int first, int count) {
  std::vector<int32_t> b(static_cast<size_t>(count));
  std::iota(b.begin(), b.end(), first);
  return b;
}

testing::WeightsFactory Dummy(const ModelConfig& c) {
  return [c] { return MakeDummyWeights(c, kSeed); };
}

// Runs the plans in order on `tp` ranks; returns rank 0's logits of each plan.
std::vector<std::vector<float>> RunPlans(const ModelConfig& c, int tp,
                                         const std::vector<StepPlan>& plans) {
  std::vector<std::vector<float>> out(plans.size());
  Status s = RunRanks(c, tp, Dummy(c), SmallOptions(), [&](int rank, LlamaModel& m, Communicator&) {
    for (size_t i = 0; i < plans.size(); ++i) {
      BE_RETURN_IF_ERROR(m.Forward(plans[i], rank == 0 ? &out[i] : nullptr));
    }
    return Status::Ok();
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

class ModelMatchesReference : public ::testing::TestWithParam<ModelConfig> {};

TEST_P(ModelMatchesReference, LogitsOfEveryPosition) {
  const ModelConfig c = GetParam();
  std::vector<int32_t> prompt = Prompt(37, static_cast<int32_t>(c.vocab_size));  // 3 blocks
  auto logits = RunPlans(c, 1, {MakePlan({{prompt, 0, Blocks(5, 3)}}, 16, kMaxBlocks, true)});
  std::vector<double> ref = testing::ReferenceLogits(c, testing::DummyTensors(kSeed), prompt);
  ASSERT_EQ(logits[0].size(), ref.size());
  EXPECT_LT(testing::RelativeError(ref, logits[0]), 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Shapes, ModelMatchesReference,
                         ::testing::Values(testing::SmallLlama(), testing::SmallQwen2(),
                                           testing::SmallMha()),
                         [](const auto& info) {
                           std::string n = info.param.name;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

TEST(Model, TensorParallelRanksGiveTheSameLogits) {
  for (const ModelConfig& c : {testing::SmallLlama(), testing::SmallMha()}) {
    std::vector<int32_t> prompt = Prompt(29, static_cast<int32_t>(c.vocab_size));
    std::vector<StepPlan> plans = {MakePlan({{prompt, 0, Blocks(0, 2)}}, 16, kMaxBlocks, true),
                                   MakePlan({{{7}, 29, Blocks(0, 2)}}, 16, kMaxBlocks, true)};
    auto tp1 = RunPlans(c, 1, plans);
    // SmallLlama has 4 KV heads: tp 8 replicates each on two ranks.
    std::vector<int> tps = c.num_kv_heads == 4 && c.num_heads == 8 ? std::vector<int>{2, 4, 8}
                                                                   : std::vector<int>{2, 4};
    for (int tp : tps) {
      auto other = RunPlans(c, tp, plans);
      for (size_t i = 0; i < plans.size(); ++i) {
        EXPECT_LT(testing::RelativeError(tp1[i], other[i]), 1e-5) << c.name << " tp " << tp;
      }
    }
  }
}

TEST(Model, IncrementalDecodeEqualsFullPrefill) {
  const ModelConfig c = testing::SmallLlama();
  std::vector<int32_t> prompt = Prompt(40, static_cast<int32_t>(c.vocab_size));
  auto whole = RunPlans(c, 1, {MakePlan({{prompt, 0, Blocks(3, 3)}}, 16, kMaxBlocks, true)});
  std::vector<StepPlan> steps;
  for (int i = 0; i < 40; ++i) {
    steps.push_back(MakePlan({{{prompt[i]}, i, Blocks(3, 3)}}, 16, kMaxBlocks, true));
  }
  auto one_by_one = RunPlans(c, 1, steps);
  const size_t v = static_cast<size_t>(c.vocab_size);
  for (size_t i = 0; i < 40; ++i) {
    std::vector<float> row(whole[0].begin() + i * v, whole[0].begin() + (i + 1) * v);
    EXPECT_LT(testing::RelativeError(row, one_by_one[i]), 1e-5) << "position " << i;
  }
}

TEST(Model, ChunkedPrefillEqualsWholePrefill) {
  const ModelConfig c = testing::SmallQwen2();
  std::vector<int32_t> prompt = Prompt(37, static_cast<int32_t>(c.vocab_size));
  auto whole = RunPlans(c, 1, {MakePlan({{prompt, 0, Blocks(0, 3)}}, 16, kMaxBlocks, true)});
  std::vector<StepPlan> chunks;
  for (int begin : {0, 10, 20}) {
    int end = begin == 20 ? 37 : begin + 10;
    chunks.push_back(MakePlan(
        {{std::vector<int32_t>(prompt.begin() + begin, prompt.begin() + end), begin, Blocks(0, 3)}},
        16, kMaxBlocks, true));
  }
  auto chunked = RunPlans(c, 1, chunks);
  std::vector<float> joined;
  for (const auto& part : chunked) joined.insert(joined.end(), part.begin(), part.end());
  EXPECT_LT(testing::RelativeError(whole[0], joined), 1e-5);
}

TEST(Model, BatchEqualsItsSequencesRunAlone) {
  const ModelConfig c = testing::SmallLlama();
  std::vector<int32_t> a = Prompt(21, static_cast<int32_t>(c.vocab_size), 1);
  std::vector<int32_t> b = Prompt(9, static_cast<int32_t>(c.vocab_size), 2);
  auto together = RunPlans(
      c, 1, {MakePlan({{a, 0, Blocks(0, 2)}, {b, 0, Blocks(10, 1)}}, 16, kMaxBlocks, true)});
  auto alone_a = RunPlans(c, 1, {MakePlan({{a, 0, Blocks(0, 2)}}, 16, kMaxBlocks, true)});
  auto alone_b = RunPlans(c, 1, {MakePlan({{b, 0, Blocks(10, 1)}}, 16, kMaxBlocks, true)});
  const size_t v = static_cast<size_t>(c.vocab_size);
  std::vector<float> first(together[0].begin(), together[0].begin() + 21 * v);
  std::vector<float> second(together[0].begin() + 21 * v, together[0].end());
  EXPECT_LT(testing::RelativeError(alone_a[0], first), 1e-5);
  EXPECT_LT(testing::RelativeError(alone_b[0], second), 1e-5);
}

TEST(Model, KvBlocksCopiedByThePlanCarryTheirTokens) {
  // A block copied before a step must hold exactly what the original held: decoding from the
  // copy gives the same logits as decoding from the original.
  const ModelConfig c = testing::SmallMha();
  std::vector<int32_t> prompt = Prompt(20, static_cast<int32_t>(c.vocab_size));
  StepPlan prefill = MakePlan({{prompt, 0, {4, 5}}}, 16, kMaxBlocks, false);
  StepPlan from_original = MakePlan({{{9}, 20, {4, 5}}}, 16, kMaxBlocks, false);
  StepPlan from_copy = MakePlan({{{9}, 20, {4, 6}}}, 16, kMaxBlocks, false);
  from_copy.copy_src = {5};
  from_copy.copy_dst = {6};
  auto out = RunPlans(c, 1, {prefill, from_original, from_copy});
  EXPECT_LT(testing::RelativeError(out[1], out[2]), 1e-6);
}

}  // namespace
}  // namespace breakeven::engine
