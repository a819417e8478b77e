// The cost model: every expected value is worked out by hand in the comments (docs/cost.md uses
// the same example: one H100 at $3.95/h serving 2,000 output tokens/s of a 1024/128 workload).
#include "bench/cost.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace breakeven::bench {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

const ApiPrice kGpt4oMini{"OpenAI", "gpt-4o-mini", 0.15, 0.60};

TEST(DeviceSecondsTest, OneDeviceOneMinute) {
  // 2,000 output tokens/s at 1024/128 is 15.625 requests/s, so in 60 s: 937.5 requests,
  // 960,000 input and 120,000 output tokens (1,080,000 in all).
  DeviceSeconds d = DeviceSecondsPerMtok(1, 60, 960'000, 120'000);
  EXPECT_DOUBLE_EQ(d.per_mtok_output, 500);      // 60 / 120,000 x 1e6
  EXPECT_DOUBLE_EQ(d.per_mtok_input, 62.5);      // 60 / 960,000 x 1e6
  EXPECT_NEAR(d.per_mtok_total, 55.5556, 1e-4);  // 60 / 1,080,000 x 1e6 = 55.5...
}

TEST(DeviceSecondsTest, ScalesWithDevices) {
  // Two devices for the same 60 s and tokens: twice the device-seconds.
  DeviceSeconds d = DeviceSecondsPerMtok(2, 60, 960'000, 120'000);
  EXPECT_DOUBLE_EQ(d.per_mtok_output, 1000);
  EXPECT_DOUBLE_EQ(d.per_mtok_input, 125);
  EXPECT_NEAR(d.per_mtok_total, 111.1111, 1e-4);
}

TEST(DeviceSecondsTest, ZeroTokensGiveZero) {
  // No input tokens: that figure is 0; output 10 / 500 x 1e6 = 20,000; total the same.
  DeviceSeconds d = DeviceSecondsPerMtok(1, 10, 0, 500);
  EXPECT_EQ(d.per_mtok_input, 0);
  EXPECT_DOUBLE_EQ(d.per_mtok_output, 20'000);
  EXPECT_DOUBLE_EQ(d.per_mtok_total, 20'000);
  DeviceSeconds none = DeviceSecondsPerMtok(1, 10, 0, 0);
  EXPECT_EQ(none.per_mtok_total, 0);
}

TEST(UsdPerMtokTest, FullAndPartialUse) {
  // 500 device-s per Mtok x $3.95/h / 3600 = $0.548611 per Mtok at full use.
  EXPECT_NEAR(UsdPerMtok(500, 3.95, 1.0), 0.548611, 1e-6);
  // At 30% utilization the same tokens carry 1 / 0.3 of the paid hours: 0.548611 / 0.3.
  EXPECT_NEAR(UsdPerMtok(500, 3.95, 0.3), 1.828704, 1e-6);
  // 3600 device-s (one device-hour) per Mtok at $2/h: $2 per Mtok; at 50%: $4.
  EXPECT_DOUBLE_EQ(UsdPerMtok(3600, 2, 1), 2);
  EXPECT_DOUBLE_EQ(UsdPerMtok(3600, 2, 0.5), 4);
}

TEST(UsdPerMtokTest, UtilizationOutsideRange) {
  // No utilization: no token carries the paid hours.
  EXPECT_EQ(UsdPerMtok(500, 3.95, 0), kInf);
  EXPECT_EQ(UsdPerMtok(500, 3.95, -0.5), kInf);
  EXPECT_EQ(UsdPerMtok(500, 3.95, std::nan("")), kInf);
  // Above 1 counts as 1.
  EXPECT_DOUBLE_EQ(UsdPerMtok(3600, 2, 1.7), 2);
}

TEST(BlendedApiTest, WeightsByTokenCounts) {
  // gpt-4o-mini at 1024 in / 128 out: (1024 x 0.15 + 128 x 0.60) / 1152 = 230.4 / 1152 = 0.20.
  EXPECT_NEAR(BlendedApiUsdPerMtok(kGpt4oMini, 1024, 128), 0.20, 1e-12);
  // Reversed, 128 in / 1024 out: (19.2 + 614.4) / 1152 = 0.55.
  EXPECT_NEAR(BlendedApiUsdPerMtok(kGpt4oMini, 128, 1024), 0.55, 1e-12);
  // Output only: the output price.
  EXPECT_DOUBLE_EQ(BlendedApiUsdPerMtok(kGpt4oMini, 0, 100), 0.60);
  EXPECT_EQ(BlendedApiUsdPerMtok(kGpt4oMini, 0, 0), 0);
}

TEST(BreakEvenTest, H100AgainstGpt4oMini) {
  // One H100 at $3.95/h serving 18,000 tokens/s (16,000 in + 2,000 out) against $0.20/Mtok.
  BreakEven b = ComputeBreakEven(3.95, 18'000, 0.20);
  // 3.95 / (18,000 x 3600) x 1e6 = 3.95 / 64.8 = 0.0609568 $/Mtok at full use.
  EXPECT_NEAR(b.self_usd_per_mtok_full_use, 0.0609568, 1e-7);
  EXPECT_DOUBLE_EQ(b.api_usd_per_mtok, 0.20);
  // u* = 0.0609568 / 0.20 = 0.304784: the H100 must be busy 30.5% of its paid hours.
  EXPECT_NEAR(b.utilization, 0.304784, 1e-6);
  // V* = 3.95 x 730 / (0.20 / 1e6) = 2883.5 / 2e-7 = 1.44175e10 tokens per month.
  EXPECT_NEAR(b.monthly_tokens, 1.44175e10, 1);
  // Capacity: 18,000 x 3600 x 730 = 4.7304e10 tokens per month; V* / capacity = u*.
  EXPECT_NEAR(b.monthly_capacity_tokens, 4.7304e10, 1);
  EXPECT_NEAR(b.monthly_tokens / b.monthly_capacity_tokens, b.utilization, 1e-12);
}

TEST(BreakEvenTest, ApiCheaperThanFullUse) {
  // $10/h serving 1,000 tokens/s: 10 / 3.6 = $2.7778/Mtok at full use, against $1/Mtok:
  // u* = 2.78 > 1, self-hosting never wins.
  BreakEven b = ComputeBreakEven(10, 1000, 1);
  EXPECT_NEAR(b.self_usd_per_mtok_full_use, 2.777778, 1e-6);
  EXPECT_NEAR(b.utilization, 2.777778, 1e-6);
  // V* = 10 x 730 / 1e-6 = 7.3e9, above the capacity 1000 x 3600 x 730 = 2.628e9.
  EXPECT_NEAR(b.monthly_tokens, 7.3e9, 1);
  EXPECT_NEAR(b.monthly_capacity_tokens, 2.628e9, 1);
}

TEST(BreakEvenTest, FreeApiIsNeverBeaten) {
  BreakEven b = ComputeBreakEven(3.95, 18'000, 0);
  EXPECT_EQ(b.utilization, kInf);
  EXPECT_EQ(b.monthly_tokens, kInf);
  EXPECT_NEAR(b.self_usd_per_mtok_full_use, 0.0609568, 1e-7);
}

PlanCandidate Candidate(std::string device, int tp, double max_rate, double usd_per_device_hour) {
  PlanCandidate c;
  c.device_type = std::move(device);
  c.tp = tp;
  c.max_rate_per_replica = max_rate;
  c.usd_per_device_hour = usd_per_device_hour;
  c.provider = "test";
  return c;
}

TEST(RankPlansTest, CheapestFirstTiesByDevices) {
  // 10 requests/s of 1000 in / 200 out (1,200 tokens per request).
  std::vector<PlanCandidate> candidates = {
      Candidate("H100", 1, 4, 4),    // ceil(10 / 4) = 3 replicas x 1 x $4 = $12/h
      Candidate("H200", 2, 12, 3),   // 1 replica x 2 devices x $3 = $6/h, 2 devices
      Candidate("L4", 1, 0, 0.5),    // serves nothing under the SLO: left out
      Candidate("A100", 1, 2.5, 2),  // 10 / 2.5 = 4 replicas exactly x $2 = $8/h
      Candidate("B200", 1, 10, 6),   // 1 replica x $6 = $6/h, 1 device: before the H200
      Candidate("MI300", 1, -1, 1),  // negative: left out
  };
  std::vector<PlanOption> plans = RankPlans(candidates, 10, 1000, 200, kGpt4oMini);
  ASSERT_EQ(plans.size(), 4u);
  EXPECT_EQ(plans[0].candidate.device_type, "B200");
  EXPECT_EQ(plans[1].candidate.device_type, "H200");
  EXPECT_EQ(plans[2].candidate.device_type, "A100");
  EXPECT_EQ(plans[3].candidate.device_type, "H100");

  EXPECT_EQ(plans[0].replicas, 1);
  EXPECT_DOUBLE_EQ(plans[0].usd_per_hour, 6);
  // Tokens per hour: 10 x 1200 x 3600 = 43.2M; $6 / 43.2 = $0.138889 per Mtok.
  EXPECT_NEAR(plans[0].usd_per_mtok, 0.138889, 1e-6);
  // API bill: 10 x 3600 x (1000 x 0.15 + 200 x 0.60) / 1e6 = 36,000 x 270 / 1e6 = $9.72/h.
  EXPECT_NEAR(plans[0].api_usd_per_hour, 9.72, 1e-9);
  EXPECT_NEAR(plans[3].api_usd_per_hour, 9.72, 1e-9);  // the same traffic for every option
  EXPECT_NEAR(plans[0].headroom, 0, 1e-12);            // 1 x 10 / 10 - 1

  EXPECT_EQ(plans[1].replicas, 1);
  EXPECT_DOUBLE_EQ(plans[1].usd_per_hour, 6);  // 1 x tp 2 x $3
  EXPECT_NEAR(plans[1].headroom, 0.2, 1e-12);  // 1 x 12 / 10 - 1

  EXPECT_EQ(plans[2].replicas, 4);  // exactly 4, not 5
  EXPECT_DOUBLE_EQ(plans[2].usd_per_hour, 8);
  EXPECT_NEAR(plans[2].headroom, 0, 1e-12);  // 4 x 2.5 / 10 - 1

  EXPECT_EQ(plans[3].replicas, 3);  // 2.5 rounds up
  EXPECT_DOUBLE_EQ(plans[3].usd_per_hour, 12);
  EXPECT_NEAR(plans[3].headroom, 0.2, 1e-12);  // 3 x 4 / 10 - 1
  // $12 / 43.2 = $0.277778 per Mtok.
  EXPECT_NEAR(plans[3].usd_per_mtok, 0.277778, 1e-6);
}

TEST(RankPlansTest, ReplicasRoundUp) {
  // 10 / 3 = 3.33: 4 replicas, headroom 4 x 3 / 10 - 1 = 0.2.
  std::vector<PlanOption> plans = RankPlans({Candidate("X", 1, 3, 1)}, 10, 100, 100, std::nullopt);
  ASSERT_EQ(plans.size(), 1u);
  EXPECT_EQ(plans[0].replicas, 4);
  EXPECT_NEAR(plans[0].headroom, 0.2, 1e-12);
  EXPECT_EQ(plans[0].api_usd_per_hour, 0);  // no API price given

  // Below one replica's capacity: still one replica. 0.5 / 2 = 0.25; headroom 2 / 0.5 - 1 = 3.
  plans = RankPlans({Candidate("X", 1, 2, 1)}, 0.5, 100, 100, std::nullopt);
  ASSERT_EQ(plans.size(), 1u);
  EXPECT_EQ(plans[0].replicas, 1);
  EXPECT_NEAR(plans[0].headroom, 3, 1e-12);

  // 1.1 / 0.1 is 11.000000000000002 in doubles: 11 replicas, not 12.
  plans = RankPlans({Candidate("X", 1, 0.1, 1)}, 1.1, 100, 100, std::nullopt);
  ASSERT_EQ(plans.size(), 1u);
  EXPECT_EQ(plans[0].replicas, 11);
  // Tensor parallelism multiplies the devices paid: 11 replicas x tp 4 x $1 = $44/h.
  plans = RankPlans({Candidate("X", 4, 0.1, 1)}, 1.1, 100, 100, std::nullopt);
  ASSERT_EQ(plans.size(), 1u);
  EXPECT_DOUBLE_EQ(plans[0].usd_per_hour, 44);
}

TEST(RankPlansTest, NothingFeasible) {
  EXPECT_TRUE(RankPlans({Candidate("X", 1, 0, 1), Candidate("Y", 1, -2, 1)}, 5, 10, 10, kGpt4oMini)
                  .empty());
  EXPECT_TRUE(RankPlans({}, 5, 10, 10, kGpt4oMini).empty());
}

TEST(RankPlansTest, TieOnPriceAndDevicesKeepsInputOrder) {
  // Both $2/h on 2 devices: the order given is kept.
  std::vector<PlanOption> plans = RankPlans(
      {Candidate("first", 2, 5, 1), Candidate("second", 1, 2.5, 1)}, 5, 10, 10, std::nullopt);
  ASSERT_EQ(plans.size(), 2u);
  // "first": 1 replica x tp 2 x $1; "second": ceil(5 / 2.5) = 2 replicas x tp 1 x $1.
  EXPECT_EQ(plans[0].candidate.device_type, "first");
  EXPECT_EQ(plans[1].candidate.device_type, "second");
  EXPECT_EQ(plans[1].replicas, 2);
}

}  // namespace
}  // namespace breakeven::bench
