// The sampling rule (kernels/sampling.h): SampleRow on hand-made rows, then every backend's
// Sample held to SampleRow on the same logits and random numbers. The CUDA backend finds its
// thresholds by selection and sums in another order, so it may differ only where the draw lands
// within rounding of a boundary between two tokens: at most one sample in a thousand, and never
// a greedy one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "kernels/sampling.h"

namespace breakeven::kernels {
namespace {

int32_t Sample(const std::vector<float>& logits, float temperature, int top_k, float top_p,
               double uniform) {
  SampleScratch scratch;
  return SampleRow(logits.data(), static_cast<int64_t>(logits.size()), temperature, top_k, top_p,
                   uniform, scratch);
}

// Logits whose probabilities at temperature 1 are proportional to `weights`.
std::vector<float> LogitsOf(const std::vector<double>& weights) {
  std::vector<float> logits;
  for (double w : weights) logits.push_back(static_cast<float>(std::log(w)));
  return logits;
}

TEST(SampleRowTest, GreedyTakesTheLowestIdOfATie) {
  const std::vector<float> logits = {0.5f, 2.0f, -1.0f, 2.0f, 1.0f};
  EXPECT_EQ(Sample(logits, 0, 0, 1, 0.7), 1);
  EXPECT_EQ(Sample(logits, -1, 0, 1, 0.2), 1);
  EXPECT_EQ(Sample(logits, 0, 2, 0.5f, 0.99), 1);  // the cuts do not apply to greedy
}

TEST(SampleRowTest, TopKOfOneIsTheArgmax) {
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0, 3);
  std::vector<float> logits(500);
  for (float& l : logits) l = normal(rng);
  const auto argmax =
      static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  for (double u : {0.0, 0.25, 0.5, 0.75, 0.999999}) {
    EXPECT_EQ(Sample(logits, 1.0f, 1, 1, u), argmax) << "uniform " << u;
    EXPECT_EQ(Sample(logits, 5.0f, 1, 0.9f, u), argmax) << "uniform " << u;
  }
}

TEST(SampleRowTest, TinyTopPIsTheArgmax) {
  const std::vector<float> logits = LogitsOf({0.2, 0.3, 0.4, 0.1});
  for (double u : {0.0, 0.5, 0.999999}) EXPECT_EQ(Sample(logits, 1.0f, 0, 1e-6f, u), 2);
}

TEST(SampleRowTest, UniformPicksAcrossCumulativeBoundaries) {
  // Probabilities 0.2, 0.3, 0.5: boundaries at 0.2 and 0.5 of the mass.
  const std::vector<float> logits = LogitsOf({0.2, 0.3, 0.5});
  const double eps = 1e-6;  // well above the float logits' rounding of the boundaries
  EXPECT_EQ(Sample(logits, 1.0f, 0, 1, 0.0), 0);
  EXPECT_EQ(Sample(logits, 1.0f, 0, 1, 0.2 - eps), 0);
  EXPECT_EQ(Sample(logits, 1.0f, 0, 1, 0.2 + eps), 1);
  EXPECT_EQ(Sample(logits, 1.0f, 0, 1, 0.5 - eps), 1);
  EXPECT_EQ(Sample(logits, 1.0f, 0, 1, 0.5 + eps), 2);
  EXPECT_EQ(Sample(logits, 1.0f, 0, 1, 1 - eps), 2);
}

TEST(SampleRowTest, TopKDropsTheRest) {
  const std::vector<float> logits = LogitsOf({0.3, 0.25, 0.45});  // id 1 is third
  std::mt19937_64 rng(2);
  std::uniform_real_distribution<double> uniform(0, 1);
  int seen[3] = {};
  for (int i = 0; i < 2000; ++i) ++seen[Sample(logits, 1.0f, 2, 1, uniform(rng))];
  EXPECT_EQ(seen[1], 0);
  EXPECT_GT(seen[0], 0);
  EXPECT_GT(seen[2], 0);
}

TEST(SampleRowTest, TopPKeepsTheSmallestSetReachingTheMass) {
  // 0.5 alone falls short of 0.6; 0.5 + 0.3 reaches it, so 0.2 goes.
  const std::vector<float> logits = LogitsOf({0.3, 0.2, 0.5});
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> uniform(0, 1);
  int seen[3] = {};
  for (int i = 0; i < 2000; ++i) ++seen[Sample(logits, 1.0f, 0, 0.6f, uniform(rng))];
  EXPECT_EQ(seen[1], 0);
  EXPECT_GT(seen[0], 0);
  EXPECT_GT(seen[2], 0);
}

TEST(SampleRowTest, FrequenciesFollowTheProbabilities) {
  const std::vector<double> p = {0.1, 0.2, 0.3, 0.4};
  const std::vector<float> logits = LogitsOf(p);
  std::mt19937_64 rng(4);
  std::uniform_real_distribution<double> uniform(0, 1);
  const int draws = 20000;
  std::vector<int> seen(p.size());
  for (int i = 0; i < draws; ++i)
    ++seen[static_cast<size_t>(Sample(logits, 1.0f, 0, 1, uniform(rng)))];
  for (size_t i = 0; i < p.size(); ++i) {
    EXPECT_NEAR(static_cast<double>(seen[i]) / draws, p[i], 0.02) << "token " << i;
  }
}

// ---- backends against SampleRow

// Logits rows of several shapes of distribution, each row `stride` floats apart (the gap holds
// NaN, which no backend may read).
std::vector<float> MakeRows(int64_t rows, int64_t vocab, int64_t stride, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0, 1);
  std::vector<float> out(static_cast<size_t>(rows * stride), NAN);
  for (int64_t r = 0; r < rows; ++r) {
    float* row = out.data() + r * stride;
    switch (r % 4) {
      case 0:  // smooth
        for (int64_t i = 0; i < vocab; ++i) row[i] = 3 * normal(rng);
        break;
      case 1:  // coarse values: long ties at every threshold
        for (int64_t i = 0; i < vocab; ++i) row[i] = std::round(normal(rng)) / 2;
        break;
      case 2:  // one token far ahead, as a confident model's
        for (int64_t i = 0; i < vocab; ++i) row[i] = normal(rng);
        row[rng() % static_cast<uint32_t>(vocab)] = 12;
        break;
      default:  // the maximum twice: greedy must take the lower id
        for (int64_t i = 0; i < vocab; ++i) row[i] = 2 * normal(rng);
        {
          const float top = *std::max_element(row, row + vocab) + 1;
          const auto a = static_cast<int64_t>(rng() % static_cast<uint32_t>(vocab));
          const auto b = static_cast<int64_t>(rng() % static_cast<uint32_t>(vocab));
          row[a] = top;
          row[b] = top;
        }
        break;
    }
  }
  return out;
}

std::vector<SampleSpec> MakeSpecs(int n, int64_t rows, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uniform(0, 1);
  const float temperatures[] = {0, 0, 0.7f, 1, 1.3f};
  // Up to 1000 the device bounds the k-th largest by its threads' maxima; 5000 and 20000 select
  // over the whole row, 20000 on coarse rows inside a tie longer than shared memory holds.
  const int top_ks[] = {0, 0, 1, 2, 50, 1000, 5000, 20000};
  const float top_ps[] = {1, 1, 0.1f, 0.9f};
  std::vector<SampleSpec> specs(static_cast<size_t>(n));
  for (SampleSpec& s : specs) {
    s.row = static_cast<int32_t>(rng() % static_cast<uint64_t>(rows));
    s.temperature = temperatures[rng() % std::size(temperatures)];
    s.top_k = top_ks[rng() % std::size(top_ks)];
    s.top_p = top_ps[rng() % std::size(top_ps)];
    s.uniform = uniform(rng);
  }
  return specs;
}

std::string Describe(const SampleSpec& s) {
  return "row " + std::to_string(s.row) + " temperature " + std::to_string(s.temperature) +
         " top_k " + std::to_string(s.top_k) + " top_p " + std::to_string(s.top_p) + " uniform " +
         std::to_string(s.uniform);
}

class DeviceSampleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cuda = CreateBackend("cuda");
    if (!cuda.ok()) GTEST_SKIP() << "no CUDA backend here: " << cuda.status().message();
    backend_ = std::move(cuda).value();
  }

  // Backend::Sample on a copy of `logits` (rows x vocab, rows `stride` apart).
  std::vector<int32_t> SampleOnDevice(const std::vector<float>& logits, int64_t rows, int64_t vocab,
                                      int64_t stride, const std::vector<SampleSpec>& specs) {
    Backend& b = *backend_;
    auto logits_buf = b.Allocate(logits.size() * sizeof(float));
    auto specs_buf = b.Allocate(specs.size() * sizeof(SampleSpec));
    auto tokens_buf = b.Allocate(specs.size() * sizeof(int32_t));
    EXPECT_TRUE(logits_buf.ok() && specs_buf.ok() && tokens_buf.ok());
    if (!logits_buf.ok() || !specs_buf.ok() || !tokens_buf.ok()) return {};
    b.CopyToDevice((*logits_buf)->data(), logits.data(), logits.size() * sizeof(float));
    b.CopyToDevice((*specs_buf)->data(), specs.data(), specs.size() * sizeof(SampleSpec));
    const Tensor t{(*logits_buf)->data(), DType::kF32, rows, vocab, stride};
    auto* tokens_dev = static_cast<int32_t*>((*tokens_buf)->data());
    b.Sample(t, static_cast<const SampleSpec*>((*specs_buf)->data()),
             static_cast<int64_t>(specs.size()), tokens_dev);
    b.Synchronize();
    std::vector<int32_t> tokens(specs.size(), -1);
    b.CopyToHost(tokens.data(), tokens_dev, tokens.size() * sizeof(int32_t));
    return tokens;
  }

  // Samples `specs` on the device and with SampleRow; checks the agreement.
  void ExpectSameAsSampleRow(int64_t rows, int64_t vocab, int64_t stride, int n, uint32_t seed) {
    const std::vector<float> logits = MakeRows(rows, vocab, stride, seed);
    const std::vector<SampleSpec> specs = MakeSpecs(n, rows, seed + 1);
    const std::vector<int32_t> got = SampleOnDevice(logits, rows, vocab, stride, specs);
    ASSERT_EQ(got.size(), specs.size());
    SampleScratch scratch;
    int mismatches = 0, greedy_mismatches = 0;
    std::string report;
    for (size_t i = 0; i < specs.size(); ++i) {
      const SampleSpec& s = specs[i];
      const int32_t want = SampleRow(logits.data() + s.row * stride, vocab, s.temperature, s.top_k,
                                     s.top_p, s.uniform, scratch);
      if (got[i] == want) continue;
      ++mismatches;
      if (s.temperature <= 0) ++greedy_mismatches;
      report += "\n  sample " + std::to_string(i) + " (" + Describe(s) + "): device " +
                std::to_string(got[i]) + ", SampleRow " + std::to_string(want);
    }
    const std::string shape =
        "vocab " + std::to_string(vocab) + ", stride " + std::to_string(stride);
    EXPECT_EQ(greedy_mismatches, 0) << shape << report;
    // A draw within rounding of a boundary may go either way: one in a thousand at most.
    EXPECT_LE(mismatches, std::max(1, n / 1000)) << shape << report;
    if (mismatches > 0)
      std::printf("%s: %d near-boundary mismatch(es):%s\n", shape.c_str(), mismatches,
                  report.c_str());
  }

  std::unique_ptr<Backend> backend_;
};

TEST_F(DeviceSampleTest, AgreesWithSampleRowAtLlamaVocab) {
  ExpectSameAsSampleRow(/*rows=*/48, /*vocab=*/128256, /*stride=*/128256, /*n=*/1000, 10);
}

TEST_F(DeviceSampleTest, AgreesWithSampleRowOnUnalignedRows) {
  // Odd vocabularies in rows wider than them: most rows do not start on 16 bytes and the last
  // group of four is partial; a vocabulary below a block's thread count leaves threads without
  // a token.
  ExpectSameAsSampleRow(/*rows=*/8, /*vocab=*/50257, /*stride=*/50263, /*n=*/300, 20);
  ExpectSameAsSampleRow(/*rows=*/8, /*vocab=*/1001, /*stride=*/1003, /*n=*/300, 30);
  ExpectSameAsSampleRow(/*rows=*/4, /*vocab=*/7, /*stride=*/9, /*n=*/100, 40);
}

}  // namespace
}  // namespace breakeven::kernels
