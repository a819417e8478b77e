// The executor end to end on small models: generation against the reference, preemption, n
// samples, cancellation, bad requests, and tensor parallelism through the executor.
#include "engine/executor.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <thread>

#include "tests/engine/engine_harness.h"
#include "tests/engine/reference_model.h"

namespace breakeven::engine {
namespace {

using testing::RunRanks;
constexpr uint64_t kSeed = 99;

std::vector<int32_t> Prompt(int n, int salt) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) t[i] = static_cast<int32_t>((i * 53 + 7 + salt * 31) % 290 + 3);
  return t;
}

struct Output {
  std::vector<int32_t> tokens;
  FinishReason reason = FinishReason::kNone;
};
using Outputs = std::map<std::pair<RequestId, int>, Output>;

// Enqueues every request, collects responses until all samples finished.
Outputs Generate(Executor& ex, const std::vector<GenerationRequest>& requests,
                 std::vector<RequestId>* ids = nullptr) {
  Outputs out;
  int expected = 0;
  auto enqueued = ex.Enqueue(requests);  // all at once: they meet in the same steps
  EXPECT_TRUE(enqueued.ok()) << enqueued.status().ToString();
  if (!enqueued.ok()) return out;
  if (ids) *ids = *enqueued;
  for (const auto& r : requests) expected += r.sampling.n;
  int finished = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (finished < expected && std::chrono::steady_clock::now() < deadline) {
    for (Response& r : ex.AwaitResponses(std::chrono::milliseconds(200))) {
      Output& o = out[{r.request, r.sample}];
      o.tokens.insert(o.tokens.end(), r.tokens.begin(), r.tokens.end());
      if (r.finished) {
        o.reason = r.reason;
        ++finished;
      }
    }
    EXPECT_TRUE(ex.status().ok()) << ex.status().ToString();
    if (!ex.status().ok()) break;
  }
  EXPECT_EQ(finished, expected);
  return out;
}

// Runs `body` with an executor on rank 0 of a tp group (followers run RunFollower).
void WithExecutor(const ModelConfig& c, int tp, ModelOptions options, EngineConfig ec,
                  const std::function<void(Executor&)>& body,
                  Millis collective_timeout = std::chrono::seconds(30)) {
  Status s = RunRanks(
      c, tp, [c] { return MakeDummyWeights(c, kSeed); }, options,
      [&](int rank, LlamaModel& model, Communicator& comm) -> Status {
        if (rank != 0) return RunFollower(model, comm);
        BE_ASSIGN_OR_RETURN(auto ex, Executor::Start(model, comm, ec));
        body(*ex);
        return ex->Shutdown();
      },
      collective_timeout);
  ASSERT_TRUE(s.ok()) << s.ToString();
}

EngineConfig SmallEngine() { return {/*max_num_batched_tokens=*/256, /*max_num_seqs=*/32}; }

GenerationRequest Greedy(std::vector<int32_t> prompt, int max_tokens) {
  GenerationRequest r;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  r.sampling.ignore_eos = true;
  return r;
}

// The reference's greedy continuation: argmax of the last row, appended, repeated.
std::vector<int32_t> ReferenceGreedy(const ModelConfig& c, std::vector<int32_t> tokens, int n) {
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    std::vector<double> logits = testing::ReferenceLogits(c, testing::DummyTensors(kSeed), tokens);
    const double* last = logits.data() + (tokens.size() - 1) * c.vocab_size;
    int32_t best = static_cast<int32_t>(std::max_element(last, last + c.vocab_size) - last);
    out.push_back(best);
    tokens.push_back(best);
  }
  return out;
}

TEST(Executor, GreedyGenerationFollowsTheReference) {
  const ModelConfig c = testing::SmallLlama();
  std::vector<int32_t> prompt = Prompt(21, 0);
  WithExecutor(c, 1, testing::SmallOptions(), SmallEngine(), [&](Executor& ex) {
    Outputs out = Generate(ex, {Greedy(prompt, 12)});
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out.begin()->second.tokens, ReferenceGreedy(c, prompt, 12));
    EXPECT_EQ(out.begin()->second.reason, FinishReason::kLength);
  });
}

TEST(Executor, ABatchGivesTheSameTokensAsEachRequestAlone) {
  const ModelConfig c = testing::SmallQwen2();
  std::vector<GenerationRequest> requests;
  for (int i = 0; i < 5; ++i) requests.push_back(Greedy(Prompt(7 + 9 * i, i), 10));
  std::vector<std::vector<int32_t>> alone, together;
  WithExecutor(c, 1, testing::SmallOptions(), SmallEngine(), [&](Executor& ex) {
    for (const auto& r : requests) alone.push_back(Generate(ex, {r}).begin()->second.tokens);
    for (auto& [key, o] : Generate(ex, requests)) together.push_back(o.tokens);
  });
  EXPECT_EQ(alone, together);
}

TEST(Executor, PreemptedRequestsResumeWithTheSameTokens) {
  const ModelConfig c = testing::SmallMha();
  std::vector<GenerationRequest> requests;
  for (int i = 0; i < 6; ++i) requests.push_back(Greedy(Prompt(30, i), 24));
  std::vector<std::vector<int32_t>> roomy, tight;
  WithExecutor(c, 1, testing::SmallOptions(), SmallEngine(), [&](Executor& ex) {
    for (auto& [key, o] : Generate(ex, requests)) roomy.push_back(o.tokens);
    EXPECT_EQ(ex.stats().preemptions, 0);
  });
  // 10 blocks of 16 tokens: six sequences of up to 54 tokens (4 blocks each) cannot all fit,
  // nor can any three of them, however their starts are staggered.
  ModelOptions small = testing::SmallOptions();
  small.num_kv_blocks = 10;
  int64_t preemptions = 0;
  WithExecutor(c, 1, small, SmallEngine(), [&](Executor& ex) {
    for (auto& [key, o] : Generate(ex, requests)) tight.push_back(o.tokens);
    preemptions = ex.stats().preemptions;
  });
  EXPECT_GT(preemptions, 0) << "the test did not exercise preemption";
  EXPECT_EQ(roomy, tight);
}

TEST(Executor, NSamplesShareThePromptAndAreReproducible) {
  const ModelConfig c = testing::SmallLlama();
  GenerationRequest r;
  r.prompt = Prompt(64, 3);  // 4 full blocks
  r.max_tokens = 6;
  r.sampling.n = 4;
  r.sampling.temperature = 1.0f;
  r.sampling.seed = 42;
  r.sampling.ignore_eos = true;
  std::vector<std::vector<int32_t>> first, second;
  int64_t peak_blocks = 0;
  WithExecutor(c, 1, testing::SmallOptions(), SmallEngine(), [&](Executor& ex) {
    for (auto& [key, o] : Generate(ex, {r})) first.push_back(o.tokens);
    peak_blocks = ex.stats().peak_kv_blocks;
    for (auto& [key, o] : Generate(ex, {r})) second.push_back(o.tokens);
  });
  ASSERT_EQ(first.size(), 4u);
  EXPECT_EQ(first, second) << "one seed, the same samples";
  std::set<std::vector<int32_t>> distinct(first.begin(), first.end());
  EXPECT_GT(distinct.size(), 1u) << "temperature 1 samples should differ";
  // 4 prompt blocks shared + one block of new tokens per sample = 8, not 4 x 5 = 20.
  EXPECT_LE(peak_blocks, 8);
}

TEST(Executor, EosStopsASampleAndCancelStopsARequest) {
  ModelConfig c = testing::SmallMha();
  std::vector<int32_t> prompt = Prompt(12, 5);
  std::vector<int32_t> greedy = ReferenceGreedy(c, prompt, 8);
  // The last new token of the greedy continuation is made EOS: generation stops right there.
  size_t stop = 0;
  for (size_t i = 1; i < greedy.size(); ++i) {
    if (std::find(greedy.begin(), greedy.begin() + i, greedy[i]) == greedy.begin() + i) stop = i;
  }
  c.eos_token_ids = {greedy[stop]};
  WithExecutor(c, 1, testing::SmallOptions(), SmallEngine(), [&](Executor& ex) {
    GenerationRequest r = Greedy(prompt, 20);
    r.sampling.ignore_eos = false;
    Outputs out = Generate(ex, {r});
    EXPECT_EQ(out.begin()->second.reason, FinishReason::kEos);
    EXPECT_EQ(out.begin()->second.tokens.size(), stop + 1);

    auto id = ex.Enqueue(Greedy(prompt, 400));
    ASSERT_TRUE(id.ok());
    ex.Cancel(*id);
    bool cancelled = false;
    for (int i = 0; i < 100 && !cancelled; ++i) {
      for (const Response& resp : ex.AwaitResponses(std::chrono::milliseconds(100))) {
        if (resp.finished) {
          cancelled = resp.reason == FinishReason::kCancelled;
        }
      }
    }
    EXPECT_TRUE(cancelled);
  });
}

TEST(Executor, BadRequestsAreRefusedWithTheLimitNamed) {
  const ModelConfig c = testing::SmallMha();
  WithExecutor(c, 1, testing::SmallOptions(), SmallEngine(), [&](Executor& ex) {
    auto too_long = ex.Enqueue(Greedy(Prompt(500, 0), 20));
    ASSERT_FALSE(too_long.ok());
    EXPECT_NE(too_long.status().message().find("512"), std::string::npos)
        << too_long.status().message();
    auto bad_token = ex.Enqueue(Greedy({1, 2, 300}, 2));
    ASSERT_FALSE(bad_token.ok());
    EXPECT_NE(bad_token.status().message().find("300"), std::string::npos);
    EXPECT_FALSE(ex.Enqueue(Greedy({}, 2)).ok());
    GenerationRequest many = Greedy({1, 2}, 2);
    many.sampling.n = 1000;
    EXPECT_FALSE(ex.Enqueue(many).ok());
    // The engine goes on serving after refusals.
    EXPECT_EQ(Generate(ex, {Greedy({5, 6, 7}, 3)}).begin()->second.tokens.size(), 3u);
  });
}

TEST(Executor, TensorParallelGroupsGenerateTheSameTokens) {
  const ModelConfig c = testing::SmallLlama();
  std::vector<GenerationRequest> requests = {Greedy(Prompt(19, 1), 9), Greedy(Prompt(33, 2), 9)};
  std::vector<std::vector<int32_t>> tp1, tp2, tp4;
  for (auto [tp, out] : {std::pair{1, &tp1}, std::pair{2, &tp2}, std::pair{4, &tp4}}) {
    WithExecutor(c, tp, testing::SmallOptions(), SmallEngine(), [&](Executor& ex) {
      for (auto& [key, o] : Generate(ex, requests)) out->push_back(o.tokens);
    });
  }
  EXPECT_EQ(tp1, tp2);
  EXPECT_EQ(tp1, tp4);
}

TEST(Executor, IdleFollowersDoNotTimeOut) {
  // With a 1.5 s collective deadline, an engine idle for 4 s would lose its followers if rank 0
  // did not beat while idle.
  const ModelConfig c = testing::SmallMha();
  WithExecutor(
      c, 2, testing::SmallOptions(), SmallEngine(),
      [&](Executor& ex) {
        std::this_thread::sleep_for(std::chrono::milliseconds(4000));
        EXPECT_EQ(Generate(ex, {Greedy({4, 5, 6}, 2)}).begin()->second.tokens.size(), 2u);
      },
      std::chrono::milliseconds(1500));
}

}  // namespace
}  // namespace breakeven::engine
