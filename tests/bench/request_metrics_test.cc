// Serving metrics on synthetic timelines whose answers are worked out by hand in the comments.
// Times are written in milliseconds from an arbitrary origin.
#include "bench/request_metrics.h"

#include <gtest/gtest.h>

#include <cmath>

namespace breakeven::bench {
namespace {

int64_t Ns(double ms) { return std::llround(ms * 1e6); }

// `count` tokens, the first at `first_ms`, then one every `gap_ms`.
std::vector<int64_t> Tokens(double first_ms, double gap_ms, int count) {
  std::vector<int64_t> t;
  for (int i = 0; i < count; ++i) t.push_back(Ns(first_ms + gap_ms * i));
  return t;
}

// A successful request with one sample: its output tokens are its token times.
RequestRecord Request(double arrival_ms, std::vector<int64_t> times, int64_t input_tokens = 10) {
  RequestRecord r;
  r.arrival_ns = r.sent_ns = Ns(arrival_ms);
  r.input_tokens = input_tokens;
  r.output_tokens = static_cast<int64_t>(times.size());
  r.token_times_ns = std::move(times);
  return r;
}

Slo MustParse(const char* text) {
  Result<Slo> slo = ParseSlo(text);
  EXPECT_TRUE(slo.ok()) << slo.status().message();
  return slo.ok() ? *slo : Slo{};
}

TEST(RequestMetrics, LatencyCountsFromTheScheduledArrivalNotTheSendTime) {
  // Scheduled at 0, sent 30 ms late (a busy sender), tokens at 100, 110, 120, 130.
  RequestRecord r = Request(0, Tokens(100, 10, 4));
  r.sent_ns = Ns(30);
  ServingMetrics m = ComputeMetrics({r});
  EXPECT_DOUBLE_EQ(m.ttft_ms.mean, 100);  // 100 - 0, not 100 - 30
  EXPECT_DOUBLE_EQ(m.e2e_ms.mean, 130);   // 130 - 0
  EXPECT_DOUBLE_EQ(m.tpot_ms.mean, 10);   // (130 - 100) / (4 - 1)
  EXPECT_EQ(m.itl_ms.count, 3u);          // gaps 10, 10, 10
  EXPECT_DOUBLE_EQ(m.itl_ms.mean, 10);
}

TEST(RequestMetrics, TpotExcludesOneTokenRequests) {
  // A: one token at 50 -> TTFT 50, no TPOT, no gap. B: tokens at 20, 40, 60 -> TTFT 20,
  // TPOT (60 - 20) / 2 = 20, gaps 20 and 20.
  ServingMetrics m = ComputeMetrics({Request(0, {Ns(50)}), Request(0, Tokens(20, 20, 3))});
  EXPECT_EQ(m.ttft_ms.count, 2u);
  EXPECT_DOUBLE_EQ(m.ttft_ms.mean, 35);  // (50 + 20) / 2
  EXPECT_EQ(m.tpot_ms.count, 1u);
  EXPECT_DOUBLE_EQ(m.tpot_ms.mean, 20);
  EXPECT_EQ(m.itl_ms.count, 2u);
  EXPECT_DOUBLE_EQ(m.itl_ms.mean, 20);
}

TEST(RequestMetrics, ItlCountsGapsBetweenChunksTpotCountsTokens) {
  // A: a chunk of 1 token at 100, of 3 at 130, of 2 at 190 (six tokens, three chunks).
  //    TPOT = (190 - 100) / (6 - 1) = 18; chunk gaps 30 and 60.
  // B: arrival 10, one token at 20, a chunk of 2 at 30: TPOT = (30 - 20) / 2 = 5; gap 10.
  RequestRecord a = Request(0, {Ns(100), Ns(130), Ns(130), Ns(130), Ns(190), Ns(190)});
  RequestRecord b = Request(10, {Ns(20), Ns(30), Ns(30)});
  EXPECT_EQ(a.chunks(), 3);
  EXPECT_EQ(b.chunks(), 2);
  ServingMetrics m = ComputeMetrics({a, b});
  // ITL pooled over both: {10, 30, 60}. Mean 100/3; p50 = 30; p90: h = 2 x 0.9 = 1.8,
  // 30 + 0.8 x (60 - 30) = 54.
  EXPECT_EQ(m.itl_ms.count, 3u);
  EXPECT_DOUBLE_EQ(m.itl_ms.mean, 100.0 / 3);
  EXPECT_DOUBLE_EQ(m.itl_ms.p50, 30);
  EXPECT_DOUBLE_EQ(m.itl_ms.p90, 54);
  EXPECT_DOUBLE_EQ(m.itl_ms.max, 60);
  // TPOT {5, 18}: mean 11.5, p50 = 5 + 0.5 x 13 = 11.5.
  EXPECT_EQ(m.tpot_ms.count, 2u);
  EXPECT_DOUBLE_EQ(m.tpot_ms.mean, 11.5);
  EXPECT_DOUBLE_EQ(m.tpot_ms.min, 5);
  EXPECT_DOUBLE_EQ(m.tpot_ms.max, 18);
  // TTFT {100, 10}; E2E {190, 20}. Output tokens 6 + 3 = 9, counted as tokens, not chunks.
  EXPECT_DOUBLE_EQ(m.ttft_ms.min, 10);
  EXPECT_DOUBLE_EQ(m.e2e_ms.max, 190);
  EXPECT_EQ(m.output_tokens, 9);
}

TEST(RequestMetrics, RatesDivideByFirstArrivalToLastToken) {
  // R1: arrival 1000, 100 input tokens, 9 output tokens from 1100 every 50 -> last at 1500.
  // R2: arrival 1200, 50 input tokens, 18 output tokens from 1300 every 100 -> last at 3000.
  // Duration = 3000 - 1000 = 2000 ms = 2 s.
  ServingMetrics m = ComputeMetrics(
      {Request(1000, Tokens(1100, 50, 9), 100), Request(1200, Tokens(1300, 100, 18), 50)});
  EXPECT_EQ(m.requests, 2);
  EXPECT_EQ(m.failed, 0);
  EXPECT_EQ(m.input_tokens, 150);
  EXPECT_EQ(m.output_tokens, 27);
  EXPECT_DOUBLE_EQ(m.duration_s, 2);
  EXPECT_DOUBLE_EQ(m.output_tokens_per_s, 13.5);  // 27 / 2
  EXPECT_DOUBLE_EQ(m.total_tokens_per_s, 88.5);   // (150 + 27) / 2
  EXPECT_DOUBLE_EQ(m.requests_per_s, 1);          // 2 / 2
  // No SLO: every successful request is good.
  EXPECT_DOUBLE_EQ(m.goodput_requests_per_s, m.requests_per_s);
  EXPECT_DOUBLE_EQ(m.slo_attainment, 1);
  EXPECT_TRUE(m.meets_slo);
}

TEST(RequestMetrics, FailedRequestsCountOnlyAsRequestsAndInTheSpan) {
  // R1 (ok): arrival 100, 10 input, tokens 200, 210, 220, 230, 240 -> TTFT 100.
  // R2 (failed, 2 tokens at 180 and 190): no latencies, no tokens counted.
  // R3 (no token at all, arrival 0): failed; its arrival opens the span.
  // Duration = 240 - 0 = 0.24 s; successful requests/s = 1 / 0.24; output 5 / 0.24.
  RequestRecord r2 = Request(150, {Ns(180), Ns(190)});
  r2.ok = false;
  RequestRecord r3 = Request(0, {});
  ServingMetrics m = ComputeMetrics({Request(100, Tokens(200, 10, 5)), r2, r3});
  EXPECT_EQ(m.requests, 3);
  EXPECT_EQ(m.failed, 2);
  EXPECT_EQ(m.input_tokens, 10);
  EXPECT_EQ(m.output_tokens, 5);
  EXPECT_EQ(m.ttft_ms.count, 1u);
  EXPECT_DOUBLE_EQ(m.ttft_ms.mean, 100);
  EXPECT_DOUBLE_EQ(m.duration_s, 0.24);
  EXPECT_DOUBLE_EQ(m.requests_per_s, 1 / 0.24);
  EXPECT_DOUBLE_EQ(m.output_tokens_per_s, 5 / 0.24);
  EXPECT_DOUBLE_EQ(m.total_tokens_per_s, 15 / 0.24);
  // Failed requests are never good, and count in attainment's denominator; a point with a
  // failure never meets its SLO, even an empty one.
  EXPECT_DOUBLE_EQ(m.goodput_requests_per_s, 1 / 0.24);
  EXPECT_DOUBLE_EQ(m.slo_attainment, 1.0 / 3);
  EXPECT_FALSE(m.meets_slo);
}

// Ten requests arriving every 100 ms; request i has TTFT 10 (i + 1) ms and a second token 5 ms
// later, so TTFT = {10, 20, ..., 100} and E2E = TTFT + 5. The last token is at 900 + 100 + 5,
// so the duration is 1.005 s.
std::vector<RequestRecord> TenRequests() {
  std::vector<RequestRecord> rs;
  for (int i = 0; i < 10; ++i) {
    double arrival = 100.0 * i, ttft = 10.0 * (i + 1);
    rs.push_back(Request(arrival, {Ns(arrival + ttft), Ns(arrival + ttft + 5)}));
  }
  return rs;
}

TEST(RequestMetrics, GoodputIsPerRequestMeetsSloIsPerPercentile) {
  // ttft_p50 <= 55ms. Per request: TTFT 10..50 meet it, 60..100 do not: 5 good of 10.
  // Over the point: p50 of {10..100}, h = 9 x 0.5 = 4.5 -> 50 + 0.5 x 10 = 55 <= 55: meets.
  ServingMetrics p50 = ComputeMetrics(TenRequests(), MustParse("ttft_p50=55ms"));
  EXPECT_DOUBLE_EQ(p50.duration_s, 1.005);
  EXPECT_DOUBLE_EQ(p50.requests_per_s, 10 / 1.005);
  EXPECT_DOUBLE_EQ(p50.goodput_requests_per_s, 5 / 1.005);
  EXPECT_DOUBLE_EQ(p50.slo_attainment, 0.5);
  EXPECT_TRUE(p50.meets_slo);
  EXPECT_DOUBLE_EQ(SloValue(p50, MustParse("ttft_p50=55ms").terms[0]), 55);

  // ttft_p90 <= 55ms: the per-request test is the same (a request has one TTFT), so 5 good;
  // the point's p90, h = 8.1 -> 90 + 0.1 x 10 = 91 > 55: fails.
  ServingMetrics p90 = ComputeMetrics(TenRequests(), MustParse("ttft_p90=55ms"));
  EXPECT_DOUBLE_EQ(p90.slo_attainment, 0.5);
  EXPECT_DOUBLE_EQ(p90.goodput_requests_per_s, 5 / 1.005);
  EXPECT_FALSE(p90.meets_slo);
  EXPECT_DOUBLE_EQ(SloValue(p90, MustParse("ttft_p90=55ms").terms[0]), 91);

  // Every term must hold: with e2e_p50 <= 40ms too, a request needs TTFT <= 55 and
  // TTFT + 5 <= 40, so TTFT in {10, 20, 30}: 3 good. The point's E2E p50 is 60 > 40.
  ServingMetrics both = ComputeMetrics(TenRequests(), MustParse("ttft_p50=55ms,e2e_p50=40ms"));
  EXPECT_DOUBLE_EQ(both.slo_attainment, 0.3);
  EXPECT_DOUBLE_EQ(both.goodput_requests_per_s, 3 / 1.005);
  EXPECT_FALSE(both.meets_slo);
}

TEST(RequestMetrics, MeanTerm) {
  // Mean TTFT of {10, ..., 100} = 55: a limit of 55 holds, 54.9 does not. Per request the mean
  // of one value is that value: 5 of 10 are within 54.9.
  ServingMetrics at = ComputeMetrics(TenRequests(), MustParse("ttft_mean=55ms"));
  EXPECT_TRUE(at.meets_slo);
  EXPECT_DOUBLE_EQ(SloValue(at, MustParse("ttft_mean=1ms").terms[0]), 55);
  ServingMetrics below = ComputeMetrics(TenRequests(), MustParse("ttft_mean=54.9ms"));
  EXPECT_FALSE(below.meets_slo);
  EXPECT_DOUBLE_EQ(below.slo_attainment, 0.5);
}

TEST(RequestMetrics, TpotTermHoldsForOneTokenRequests) {
  // A: one token (TTFT 10, no TPOT) meets tpot_p50 <= 20ms vacuously. B: tokens 10, 40, 70:
  // TPOT 30 > 20. Attainment 1/2; the point's TPOT p50 is over {30} alone: fails.
  ServingMetrics m = ComputeMetrics({Request(0, {Ns(10)}), Request(0, Tokens(10, 30, 3))},
                                    MustParse("tpot_p50=20ms"));
  EXPECT_DOUBLE_EQ(m.slo_attainment, 0.5);
  EXPECT_EQ(m.tpot_ms.count, 1u);
  EXPECT_FALSE(m.meets_slo);
}

TEST(RequestMetrics, ItlTermUsesTheRequestsOwnGaps) {
  // A: tokens 10, 20, 30, 130: gaps {10, 10, 100}. B: tokens 10, 20, 30, 40: gaps {10, 10, 10}.
  std::vector<RequestRecord> rs = {Request(0, {Ns(10), Ns(20), Ns(30), Ns(130)}),
                                   Request(0, Tokens(10, 10, 4))};
  // itl_p50 <= 20ms: A's own p50 is 10, B's 10: both good. Pooled gaps {10 x 5, 100}: p50 10.
  ServingMetrics p50 = ComputeMetrics(rs, MustParse("itl_p50=20ms"));
  EXPECT_DOUBLE_EQ(p50.slo_attainment, 1);
  EXPECT_TRUE(p50.meets_slo);
  // itl_p99 <= 50ms: A's p99, h = 2 x 0.99 = 1.98 -> 10 + 0.98 x 90 = 98.2 > 50: not good; B's
  // is 10. Pooled p99, h = 5 x 0.99 = 4.95 -> 10 + 0.95 x 90 = 95.5 > 50: the point fails.
  ServingMetrics p99 = ComputeMetrics(rs, MustParse("itl_p99=50ms"));
  EXPECT_DOUBLE_EQ(p99.slo_attainment, 0.5);
  EXPECT_DOUBLE_EQ(p99.itl_ms.p99, 95.5);
  EXPECT_FALSE(p99.meets_slo);
  // A request delivered in one chunk has no gap: it meets any ITL term.
  ServingMetrics one_chunk =
      ComputeMetrics({Request(0, {Ns(10), Ns(10), Ns(10)})}, MustParse("itl_p99=1ms"));
  EXPECT_EQ(one_chunk.itl_ms.count, 0u);
  EXPECT_DOUBLE_EQ(one_chunk.slo_attainment, 1);
}

TEST(RequestMetrics, SamplesAddOutputTokensButOnlySampleZeroIsTimed) {
  // n = 3 samples of 4 tokens: 12 output tokens; sample 0's tokens at 10, 20, 30, 40 time it.
  // TPOT = (40 - 10) / (4 - 1) = 10, not / 11. Duration 0.04 s: 12 / 0.04 = 300 tokens/s.
  RequestRecord r = Request(0, Tokens(10, 10, 4));
  r.output_tokens = 12;
  ServingMetrics m = ComputeMetrics({r});
  EXPECT_EQ(m.output_tokens, 12);
  EXPECT_DOUBLE_EQ(m.tpot_ms.mean, 10);
  EXPECT_DOUBLE_EQ(m.output_tokens_per_s, 300);
  EXPECT_DOUBLE_EQ(m.requests_per_s, 25);  // one request in 0.04 s
}

TEST(RequestMetrics, EmptyInputIsAllZerosAndMeetsNothing) {
  ServingMetrics m = ComputeMetrics({}, MustParse("ttft_p95=1s"));
  EXPECT_EQ(m.requests, 0);
  EXPECT_EQ(m.failed, 0);
  EXPECT_EQ(m.output_tokens, 0);
  EXPECT_EQ(m.duration_s, 0);
  EXPECT_EQ(m.output_tokens_per_s, 0);
  EXPECT_EQ(m.total_tokens_per_s, 0);
  EXPECT_EQ(m.requests_per_s, 0);
  EXPECT_EQ(m.goodput_requests_per_s, 0);
  EXPECT_EQ(m.slo_attainment, 0);
  EXPECT_EQ(m.ttft_ms.count, 0u);
  EXPECT_EQ(m.itl_ms.count, 0u);
  // Nothing completed, so nothing shows the SLO holds (slo-search must not climb on it).
  EXPECT_FALSE(m.meets_slo);
}

TEST(RequestMetrics, AllFailedHasNoRates) {
  RequestRecord r = Request(0, {});
  ServingMetrics m = ComputeMetrics({r, r});
  EXPECT_EQ(m.requests, 2);
  EXPECT_EQ(m.failed, 2);
  EXPECT_EQ(m.duration_s, 0);
  EXPECT_EQ(m.requests_per_s, 0);
  EXPECT_EQ(m.slo_attainment, 0);
  EXPECT_FALSE(m.meets_slo);
}

}  // namespace
}  // namespace breakeven::bench
