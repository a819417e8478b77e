#include "engine/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

namespace breakeven::engine {
namespace {

TEST(Sampler, GreedyTakesTheLargestLogitAndTheLowestIdOnATie) {
  Sampler s;
  std::mt19937_64 rng = SampleRng(1, 0);
  std::vector<float> logits = {0.1f, 3.0f, -2.0f, 3.0f, 1.0f};
  EXPECT_EQ(s.Sample(logits.data(), 5, {}, rng), 1);
}

TEST(Sampler, TopKOneAndTinyTopPAreGreedy) {
  Sampler s;
  std::mt19937_64 rng = SampleRng(7, 0);
  std::vector<float> logits = {0.5f, 0.2f, 2.5f, 2.4f};
  SamplingParams k1;
  k1.temperature = 1.0f;
  k1.top_k = 1;
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_p = 0.01f;
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(s.Sample(logits.data(), 4, k1, rng), 2);
    EXPECT_EQ(s.Sample(logits.data(), 4, p, rng), 2);
  }
}

TEST(Sampler, TemperatureSamplingFollowsTheSoftmax) {
  Sampler s;
  std::mt19937_64 rng = SampleRng(3, 0);
  std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
  SamplingParams t;
  t.temperature = 1.0f;
  std::map<int32_t, int> counts;
  const int n = 20000;
  for (int i = 0; i < n; ++i) ++counts[s.Sample(logits.data(), 3, t, rng)];
  // Standard error of a proportion near 0.5 with n = 20000 is 0.0035: allow 5 of them.
  EXPECT_NEAR(counts[0] / double(n), 0.5, 0.018);
  EXPECT_NEAR(counts[1] / double(n), 0.3, 0.018);
  EXPECT_NEAR(counts[2] / double(n), 0.2, 0.018);
}

TEST(Sampler, TopKAndTopPCutTheTail) {
  Sampler s;
  std::mt19937_64 rng = SampleRng(5, 0);
  std::vector<float> logits = {std::log(0.4f), std::log(0.3f), std::log(0.2f), std::log(0.1f)};
  SamplingParams k2;
  k2.temperature = 1.0f;
  k2.top_k = 2;
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_p = 0.65f;  // 0.4 + 0.3 reaches it: the nucleus is {0, 1}
  for (int i = 0; i < 2000; ++i) {
    EXPECT_LT(s.Sample(logits.data(), 4, k2, rng), 2);
    EXPECT_LT(s.Sample(logits.data(), 4, p, rng), 2);
  }
}

TEST(Sampler, TheSameSeedAndIndexGiveTheSameStream) {
  Sampler s;
  std::vector<float> logits(100);
  for (int i = 0; i < 100; ++i) logits[i] = std::sin(i * 0.7f);
  SamplingParams t;
  t.temperature = 0.8f;
  auto draw = [&](uint64_t seed, int index) {
    std::mt19937_64 rng = SampleRng(seed, index);
    std::vector<int32_t> out;
    for (int i = 0; i < 30; ++i) out.push_back(s.Sample(logits.data(), 100, t, rng));
    return out;
  };
  EXPECT_EQ(draw(11, 0), draw(11, 0));
  EXPECT_NE(draw(11, 0), draw(11, 1));
  EXPECT_NE(draw(11, 0), draw(12, 0));
}

}  // namespace
}  // namespace breakeven::engine
