// The rank-0 worker's /metrics (docs/observability.md, "Worker"): what the engine is doing while
// a benchmark runs, for live dashboards. The benchmark's own results (every request's timings)
// still travel to the scheduler as load points; these series are their live, approximate view.
//
// Two sources feed it. The executor calls OnStep after every engine step (batch size, KV
// blocks, step time, preemptions) on its step thread. The load generator's target is wrapped by
// Instrument, which sees every request go in and every response come out: prompt and generated
// tokens, requests in flight, time to first token and inter-token latency, each observed as the
// response carrying the token is polled. TTFT counts from the moment the request was handed to
// the engine (not from an open loop's scheduled arrival, which the stored results use).
//
// Every series carries the labels run_id, attempt and model. All updates are atomics; the
// wrapper's only lock guards a list of newly submitted requests and is held for a push or a swap,
// so the open-loop sender and the polling thread never wait on each other for long.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bench/load_generator.h"
#include "common/metrics.h"
#include "engine/executor.h"

namespace breakeven::node {

class WorkerMetrics {
 public:
  // Standalone runs use run_id "local" and attempt "0".
  WorkerMetrics(const std::string& run_id, const std::string& attempt, const std::string& model);

  metrics::Registry& registry() { return registry_; }

  // One engine step (EngineConfig::on_step).
  void OnStep(const engine::StepStats& step);

  // `inner` with every request and response counted here. This object must outlive the result.
  std::unique_ptr<bench::LoadTarget> Instrument(std::unique_ptr<bench::LoadTarget> inner);

  // What the families hold now, for tests.
  double requests_in_flight() const { return in_flight_.value(); }
  double prompt_tokens() const { return prompt_tokens_.value(); }
  double generated_tokens() const { return generated_tokens_.value(); }
  metrics::Histogram::Snapshot ttft() const { return ttft_.Read(); }
  metrics::Histogram::Snapshot inter_token_latency() const { return itl_.Read(); }

 private:
  friend class InstrumentedTarget;

  metrics::Registry registry_;
  std::vector<std::string> labels_;  // run_id, attempt, model
  metrics::Gauge& in_flight_;
  metrics::Counter& prompt_tokens_;
  metrics::Counter& generated_tokens_;
  metrics::Histogram& ttft_;
  metrics::Histogram& itl_;
  metrics::Gauge& batch_size_;
  metrics::Family<metrics::Gauge>& kv_blocks_;
  metrics::Gauge& kv_used_;
  metrics::Gauge& kv_free_;
  metrics::Histogram& step_seconds_;
  metrics::Counter& preemptions_;
};

}  // namespace breakeven::node
