#include "node/worker_metrics.h"

#include <mutex>
#include <unordered_map>

#include "common/clock.h"
#include "common/version.h"

namespace breakeven::node {

namespace {

const std::vector<std::string> kLabels = {"run_id", "attempt", "model"};

std::vector<std::string> With(std::vector<std::string> labels, std::string extra) {
  labels.push_back(std::move(extra));
  return labels;
}

}  // namespace

// Submit may run on the open-loop sender's thread and Poll on the generator's: a submitted
// request is queued under a short lock and picked up by the next Poll, which owns everything
// else. A response can be polled before its Submit has queued the request (the engine is fast,
// the sender was preempted): it waits in `early_` until the request shows up.
class InstrumentedTarget : public bench::LoadTarget {
 public:
  InstrumentedTarget(WorkerMetrics& m, std::unique_ptr<bench::LoadTarget> inner)
      : m_(m), inner_(std::move(inner)) {}

  Result<engine::RequestId> Submit(engine::GenerationRequest request) override {
    const int64_t submitted_ns = SteadyNowNs();
    const auto prompt = static_cast<double>(request.prompt.size());
    const int samples = std::max(1, request.sampling.n);
    Result<engine::RequestId> id = inner_->Submit(std::move(request));
    if (!id.ok()) return id;
    m_.prompt_tokens_.Inc(prompt);
    m_.in_flight_.Inc();
    std::lock_guard lock(mu_);
    submitted_.push_back({*id, submitted_ns, samples});
    return id;
  }

  std::vector<engine::Response> Poll(Millis timeout) override {
    std::vector<engine::Response> responses = inner_->Poll(timeout);
    std::vector<Submitted> fresh;
    {
      std::lock_guard lock(mu_);
      fresh.swap(submitted_);
    }
    for (const Submitted& s : fresh) {
      Request& r = requests_[s.id];
      r.submitted_ns = s.submitted_ns;
      r.samples = s.samples;
      r.last_token_ns.assign(static_cast<size_t>(s.samples), 0);
      if (auto it = early_.find(s.id); it != early_.end()) {
        std::vector<engine::Response> waiting = std::move(it->second);
        early_.erase(it);
        for (const engine::Response& e : waiting) Count(e);
      }
    }
    for (const engine::Response& e : responses) {
      if (requests_.count(e.request)) {
        Count(e);
      } else {
        early_[e.request].push_back(e);
      }
    }
    return responses;
  }

  void Cancel(engine::RequestId id) override { inner_->Cancel(id); }
  Status status() override { return inner_->status(); }

 private:
  struct Submitted {
    engine::RequestId id;
    int64_t submitted_ns;
    int samples;
  };
  struct Request {
    int64_t submitted_ns = 0;
    int samples = 1;
    int finished = 0;
    bool first_token_seen = false;
    std::vector<int64_t> last_token_ns;  // per sample; 0 before its first token
  };

  void Count(const engine::Response& e) {
    auto it = requests_.find(e.request);
    Request& r = it->second;
    m_.generated_tokens_.Inc(static_cast<double>(e.tokens.size()));
    const size_t sample = static_cast<size_t>(std::max(0, e.sample));
    if (sample >= r.last_token_ns.size()) r.last_token_ns.resize(sample + 1, 0);
    int64_t& last = r.last_token_ns[sample];
    for (int64_t t : e.token_times_ns) {
      if (!r.first_token_seen) {
        r.first_token_seen = true;
        m_.ttft_.Observe(static_cast<double>(t - r.submitted_ns) / 1e9);
      } else if (last > 0) {
        m_.itl_.Observe(static_cast<double>(t - last) / 1e9);
      }
      last = t;
    }
    if (e.finished && ++r.finished >= r.samples) {
      m_.in_flight_.Dec();
      requests_.erase(it);
    }
  }

  WorkerMetrics& m_;
  std::unique_ptr<bench::LoadTarget> inner_;
  std::mutex mu_;
  std::vector<Submitted> submitted_;  // under mu_
  // Poll's thread only.
  std::unordered_map<engine::RequestId, Request> requests_;
  std::unordered_map<engine::RequestId, std::vector<engine::Response>> early_;
};

WorkerMetrics::WorkerMetrics(const std::string& run_id, const std::string& attempt,
                             const std::string& model)
    : labels_{run_id, attempt, model},
      in_flight_(registry_
                     .AddGauge("breakeven_worker_requests_in_flight",
                               "Requests handed to the engine whose samples have not all "
                               "finished.",
                               kLabels)
                     .WithLabels(labels_)),
      prompt_tokens_(registry_
                         .AddCounter("breakeven_worker_prompt_tokens_total",
                                     "Prompt tokens of the requests handed to the engine.", kLabels)
                         .WithLabels(labels_)),
      generated_tokens_(registry_
                            .AddCounter("breakeven_worker_generated_tokens_total",
                                        "Tokens generated (every sample's).", kLabels)
                            .WithLabels(labels_)),
      ttft_(registry_
                .AddHistogram("breakeven_worker_ttft_seconds",
                              "Time from handing a request to the engine to its first token.",
                              metrics::LatencyBuckets(), kLabels)
                .WithLabels(labels_)),
      itl_(registry_
               .AddHistogram("breakeven_worker_inter_token_latency_seconds",
                             "Time between consecutive tokens of one sample.",
                             metrics::LatencyBuckets(), kLabels)
               .WithLabels(labels_)),
      batch_size_(registry_
                      .AddGauge("breakeven_worker_batch_size", "Sequences in the last engine step.",
                                kLabels)
                      .WithLabels(labels_)),
      kv_blocks_(
          registry_.AddGauge("breakeven_worker_kv_blocks",
                             "KV cache blocks after the last engine step, by state (used, free).",
                             With(kLabels, "state"))),
      kv_used_(kv_blocks_.WithLabels(With(labels_, "used"))),
      kv_free_(kv_blocks_.WithLabels(With(labels_, "free"))),
      step_seconds_(registry_
                        .AddHistogram("breakeven_worker_step_duration_seconds",
                                      "Engine step time: the forward pass and sampling.",
                                      metrics::LatencyBuckets(), kLabels)
                        .WithLabels(labels_)),
      preemptions_(registry_
                       .AddCounter("breakeven_worker_preemptions_total",
                                   "Sequences preempted (KV blocks given back, recomputed later).",
                                   kLabels)
                       .WithLabels(labels_)) {
  registry_
      .AddGauge("breakeven_build_info", "Constant 1, labelled with the program and its version.",
                {"component", "version"})
      .WithLabels({"worker", std::string(kVersion)})
      .Set(1);
}

void WorkerMetrics::OnStep(const engine::StepStats& step) {
  batch_size_.Set(static_cast<double>(step.sequences));
  kv_used_.Set(static_cast<double>(step.kv_blocks_used));
  kv_free_.Set(static_cast<double>(step.kv_blocks_total - step.kv_blocks_used));
  step_seconds_.Observe(step.seconds);
  if (step.preempted > 0) preemptions_.Inc(static_cast<double>(step.preempted));
}

std::unique_ptr<bench::LoadTarget> WorkerMetrics::Instrument(
    std::unique_ptr<bench::LoadTarget> inner) {
  return std::make_unique<InstrumentedTarget>(*this, std::move(inner));
}

}  // namespace breakeven::node
