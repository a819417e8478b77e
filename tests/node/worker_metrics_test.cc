// The rank-0 worker's live metrics: what the instrumented load target counts as requests go in
// and responses come out, and what each engine step sets.
#include "node/worker_metrics.h"

#include <gtest/gtest.h>

#include <deque>
#include <functional>

#include "tests/support/cluster.h"

namespace breakeven::node {
namespace {

using testing::MetricSample;

// A target whose responses the test queues; Submit can run a hook (to poll re-entrantly, as a
// racing thread would).
class FakeTarget : public bench::LoadTarget {
 public:
  Result<engine::RequestId> Submit(engine::GenerationRequest) override {
    const engine::RequestId id = next_++;
    if (on_submit) on_submit(id);
    return id;
  }
  std::vector<engine::Response> Poll(Millis) override {
    std::vector<engine::Response> out(queued.begin(), queued.end());
    queued.clear();
    return out;
  }
  void Cancel(engine::RequestId) override {}
  Status status() override { return Status::Ok(); }

  std::deque<engine::Response> queued;
  std::function<void(engine::RequestId)> on_submit;

 private:
  engine::RequestId next_ = 1;
};

engine::Response Tokens(engine::RequestId id, int sample, std::vector<int64_t> times_ns,
                        bool finished = false) {
  engine::Response r;
  r.request = id;
  r.sample = sample;
  r.token_times_ns = std::move(times_ns);
  r.tokens.assign(r.token_times_ns.size(), 7);
  r.finished = finished;
  return r;
}

engine::GenerationRequest Request(int prompt, int n = 1) {
  engine::GenerationRequest r;
  r.prompt.assign(static_cast<size_t>(prompt), 1);
  r.sampling.n = n;
  return r;
}

TEST(WorkerMetrics, TokensLatenciesAndRequestsInFlightAreCountedAsResponsesArrive) {
  WorkerMetrics m("12", "1", "tiny-15m");
  auto owned = std::make_unique<FakeTarget>();
  FakeTarget* fake = owned.get();
  auto target = m.Instrument(std::move(owned));

  const int64_t t0 = SteadyNowNs();
  auto id = target->Submit(Request(32, /*n=*/2));
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(m.requests_in_flight(), 1);
  EXPECT_EQ(m.prompt_tokens(), 32);

  // Both samples' first token in one step, then 10 ms and 30 ms gaps.
  const int64_t first = t0 + 50'000'000;
  fake->queued = {Tokens(*id, 0, {first}), Tokens(*id, 1, {first})};
  target->Poll(Millis(0));
  fake->queued = {Tokens(*id, 0, {first + 10'000'000, first + 40'000'000}, /*finished=*/true)};
  target->Poll(Millis(0));
  EXPECT_EQ(m.generated_tokens(), 4);
  EXPECT_EQ(m.requests_in_flight(), 1) << "sample 1 is still running";
  metrics::Histogram::Snapshot ttft = m.ttft();
  EXPECT_EQ(ttft.count, 1u) << "one first token per request";
  // From the moment Submit handed the request on (just after t0) to the first token.
  EXPECT_LE(ttft.sum, 0.05);
  EXPECT_GT(ttft.sum, 0.04);
  metrics::Histogram::Snapshot itl = m.inter_token_latency();
  EXPECT_EQ(itl.count, 2u);
  EXPECT_NEAR(itl.sum, 0.04, 1e-9);

  fake->queued = {Tokens(*id, 1, {}, /*finished=*/true)};
  target->Poll(Millis(0));
  EXPECT_EQ(m.requests_in_flight(), 0);
}

TEST(WorkerMetrics, AResponsePolledBeforeItsSubmitReturnedStillCounts) {
  WorkerMetrics m("local", "0", "tiny-15m");
  auto owned = std::make_unique<FakeTarget>();
  FakeTarget* fake = owned.get();
  auto target = m.Instrument(std::move(owned));
  // The engine answers, and another thread polls, before Submit has recorded the request.
  fake->on_submit = [&](engine::RequestId id) {
    fake->queued = {Tokens(id, 0, {SteadyNowNs()}, /*finished=*/true)};
    target->Poll(Millis(0));
  };
  ASSERT_TRUE(target->Submit(Request(8)).ok());
  EXPECT_EQ(m.ttft().count, 0u);
  target->Poll(Millis(0));
  EXPECT_EQ(m.ttft().count, 1u);
  EXPECT_EQ(m.generated_tokens(), 1);
  EXPECT_EQ(m.requests_in_flight(), 0);
}

TEST(WorkerMetrics, EngineStepsSetBatchKvAndStepTime) {
  WorkerMetrics m("12", "1", "tiny-15m");
  engine::StepStats step;
  step.sequences = 5;
  step.kv_blocks_used = 30;
  step.kv_blocks_total = 100;
  step.seconds = 0.02;
  step.preempted = 2;
  m.OnStep(step);
  const std::string text = m.registry().Serialize();
  const std::map<std::string, std::string> labels = {
      {"run_id", "12"}, {"attempt", "1"}, {"model", "tiny-15m"}};
  EXPECT_EQ(MetricSample(text, "breakeven_worker_batch_size", labels), 5.0) << text;
  EXPECT_EQ(MetricSample(text, "breakeven_worker_kv_blocks", {{"state", "used"}}), 30.0);
  EXPECT_EQ(MetricSample(text, "breakeven_worker_kv_blocks", {{"state", "free"}}), 70.0);
  EXPECT_EQ(MetricSample(text, "breakeven_worker_step_duration_seconds_count", labels), 1.0);
  EXPECT_EQ(MetricSample(text, "breakeven_worker_preemptions_total", labels), 2.0);
  EXPECT_EQ(MetricSample(text, "breakeven_build_info", {{"component", "worker"}}), 1.0);
  for (const char* family :
       {"breakeven_worker_requests_in_flight", "breakeven_worker_prompt_tokens_total",
        "breakeven_worker_generated_tokens_total", "breakeven_worker_ttft_seconds_count",
        "breakeven_worker_inter_token_latency_seconds_count"}) {
    EXPECT_EQ(MetricSample(text, family, labels), 0.0) << family << " is served from the start";
  }
}

}  // namespace
}  // namespace breakeven::node
