#include "bench/load_generator.h"

#include <pthread.h>
#include <sched.h>

#include "common/clock.h"
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <thread>

namespace breakeven::bench {

namespace {

using Clock = std::chrono::steady_clock;

// Sleeps until `t_ns` on the steady clock: the OS sleep until shortly before (in slices, so
// that `stop` is seen within one), then a short spin for the timer's wake-up latency. Returns
// false when stopped. The spin is kept short on purpose: a sender that spins most of the time is
// a CPU-bound thread to the kernel, and on a busy machine it is preempted for milliseconds; one
// that mostly sleeps is woken promptly (bench/RESULTS.md, "Load generator").
bool SleepUntil(int64_t t_ns, const std::atomic<bool>& stop) {
  constexpr int64_t kSpinNs = 20'000;
  constexpr int64_t kSliceNs = 20'000'000;
  for (;;) {
    if (stop.load(std::memory_order_relaxed)) return false;
    const int64_t sleep_ns = t_ns - SteadyNowNs() - kSpinNs;
    if (sleep_ns <= 0) break;
    std::this_thread::sleep_for(std::chrono::nanoseconds(std::min(sleep_ns, kSliceNs)));
  }
  while (SteadyNowNs() < t_ns) {
  }
  return true;
}

// Makes the calling (sender) thread wake on time: the least timer slack (Linux wakes a sleeper
// up to its slack late, 50 us by default), and real-time priority (SCHED_FIFO 1) where the
// process may take it (root, CAP_SYS_NICE or RLIMIT_RTPRIO); otherwise it stays at normal
// priority. The thread sleeps between arrivals, so at real-time priority it delays others by
// microseconds per request, and it ends with the load point.
void PrepareSenderThread() {
#ifdef __linux__
  prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  sched_param param{};
  param.sched_priority = 1;
  pthread_setschedparam(pthread_self(), SCHED_FIFO, &param);  // best effort
#endif
}

class ExecutorTarget final : public LoadTarget {
 public:
  explicit ExecutorTarget(engine::Executor& ex) : ex_(ex) {}
  Result<engine::RequestId> Submit(engine::GenerationRequest r) override {
    return ex_.Enqueue(std::move(r));
  }
  std::vector<engine::Response> Poll(Millis timeout) override {
    return ex_.AwaitResponses(timeout);
  }
  void Cancel(engine::RequestId id) override { ex_.Cancel(id); }
  Status status() override { return ex_.status(); }

 private:
  engine::Executor& ex_;
};

// Builds its responses outside its lock and holds the lock only to append or to swap the list
// out: the sender may run at real-time priority, and must not wait long behind a poller that was
// preempted while holding it.
class InstantTarget final : public LoadTarget {
 public:
  Result<engine::RequestId> Submit(engine::GenerationRequest r) override {
    const int64_t now = SteadyNowNs();
    const engine::RequestId id = next_.fetch_add(1);
    std::vector<engine::Response> made;
    for (int s = 0; s < r.sampling.n; ++s) {
      engine::Response resp;
      resp.request = id;
      resp.sample = s;
      resp.tokens.assign(static_cast<size_t>(r.max_tokens), 1);
      resp.token_times_ns.assign(static_cast<size_t>(r.max_tokens), now);
      resp.finished = true;
      resp.reason = engine::FinishReason::kLength;
      made.push_back(std::move(resp));
    }
    {
      std::lock_guard lock(mu_);
      for (engine::Response& resp : made) ready_.push_back(std::move(resp));
    }
    cv_.notify_one();
    return id;
  }
  std::vector<engine::Response> Poll(Millis timeout) override {
    std::vector<engine::Response> out;
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return !ready_.empty(); });
    out.swap(ready_);
    return out;
  }
  void Cancel(engine::RequestId) override {}
  Status status() override { return Status::Ok(); }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<engine::Response> ready_;
  std::atomic<engine::RequestId> next_{1};
};

// Requests in flight: which record each belongs to and how many samples are still running.
struct InFlight {
  size_t record = 0;
  int samples_left = 0;
};

// Applies responses to records. Responses of requests not in `flight` go to `unknown` when it is
// given (else are dropped). Returns the number of requests that finished.
int Absorb(std::vector<engine::Response>& responses, std::map<engine::RequestId, InFlight>* flight,
           std::vector<RequestRecord>* records, std::vector<engine::Response>* unknown = nullptr) {
  int finished = 0;
  for (engine::Response& resp : responses) {
    auto it = flight->find(resp.request);
    if (it == flight->end()) {
      if (unknown) unknown->push_back(std::move(resp));
      continue;
    }
    RequestRecord& rec = (*records)[it->second.record];
    rec.output_tokens += static_cast<int64_t>(resp.tokens.size());
    if (resp.sample == 0) {
      rec.token_times_ns.insert(rec.token_times_ns.end(), resp.token_times_ns.begin(),
                                resp.token_times_ns.end());
    }
    if (resp.finished) {
      if (resp.reason != engine::FinishReason::kLength) rec.ok = false;
      if (--it->second.samples_left == 0) {
        flight->erase(it);
        ++finished;
      }
    }
  }
  return finished;
}

void CancelAll(LoadTarget& target, const std::map<engine::RequestId, InFlight>& flight) {
  for (const auto& [id, f] : flight) target.Cancel(id);
}

// The point's counted records (arrivals after warm-up) and send-time errors; RunPoint adds the
// metrics.
PointRun Finish(PointSpec spec, std::vector<RequestRecord> all, int64_t window_start) {
  PointRun run;
  run.spec = spec;
  run.window_start_ns = window_start;
  std::vector<double> errors;
  for (RequestRecord& r : all) {
    if (r.arrival_ns < window_start) {
      ++run.warmup_requests;
      continue;
    }
    errors.push_back(static_cast<double>(r.sent_ns - r.arrival_ns) / 1e6);
    if (!r.token_times_ns.empty())
      run.window_end_ns = std::max(run.window_end_ns, r.token_times_ns.back());
    run.records.push_back(std::move(r));
  }
  run.send_error_ms = Summarize(std::move(errors));
  return run;
}

}  // namespace

std::unique_ptr<LoadTarget> MakeExecutorTarget(engine::Executor& executor) {
  return std::make_unique<ExecutorTarget>(executor);
}

std::unique_ptr<LoadTarget> MakeInstantTarget() { return std::make_unique<InstantTarget>(); }

std::string_view PointKindName(PointKind kind) {
  switch (kind) {
    case PointKind::kSync:
      return "sync";
    case PointKind::kConcurrency:
      return "concurrency";
    case PointKind::kRate:
      return "rate";
    case PointKind::kThroughput:
      return "throughput";
  }
  return "?";
}

LoadGenerator::LoadGenerator(LoadTarget& target, const WorkloadSpec& workload, int64_t vocab_size,
                             engine::SamplingParams sampling, uint64_t seed)
    : target_(target),
      workload_(workload),
      sampling_(sampling),
      prompts_(workload, vocab_size, seed),
      seed_(seed) {
  sampling_.n = workload.samples;
  sampling_.ignore_eos = true;
}

engine::GenerationRequest LoadGenerator::NextRequest() {
  engine::GenerationRequest r;
  r.prompt = prompts_.Next();
  r.max_tokens = workload_.output_tokens;
  r.sampling = sampling_;
  r.sampling.seed = seed_ * 1000003 + issued_total_++;
  return r;
}

Result<PointRun> LoadGenerator::RunPoint(const PointSpec& spec, const Slo& slo) {
  if (!(spec.target > 0) || !std::isfinite(spec.target)) {
    return InvalidArgument("load point target must be a positive number (got {})", spec.target);
  }
  BE_ASSIGN_OR_RETURN(PointRun run,
                      spec.kind == PointKind::kRate ? RunOpenLoop(spec) : RunClosedLoop(spec));
  if (run.records.empty()) {
    // A point without a single measured request would be stored as zero throughput. (Closed
    // loops extend their window until one is measured, so this is an open loop whose schedule
    // put no arrival in the window, or a request budget spent in warm-up.)
    return FailedPrecondition(
        "{} point at {:g}: no request arrived in the {:g} s measurement window after {:g} s of "
        "warm-up ({} ran during warm-up); raise duration_s (or max_requests, or the rate)",
        PointKindName(spec.kind), spec.target, spec.duration_s, spec.warmup_s, run.warmup_requests);
  }
  run.metrics = ComputeMetrics(run.records, slo);
  return run;
}

Result<PointRun> LoadGenerator::RunClosedLoop(const PointSpec& spec) {
  const int64_t in_flight_cap = std::max<int64_t>(1, static_cast<int64_t>(spec.target));
  const int64_t start = SteadyNowNs();
  const int64_t window_start = start + static_cast<int64_t>(spec.warmup_s * 1e9);
  const int64_t stop_arrivals = window_start + static_cast<int64_t>(spec.duration_s * 1e9);
  std::vector<RequestRecord> records;
  std::map<engine::RequestId, InFlight> flight;
  int64_t drain_deadline = 0;

  // Arrivals are open until the duration or the request budget runs out. issue() sends one
  // request, or closes arrivals instead; the time is checked when the request is stamped, so
  // none arrives at or after stop_arrivals, except that a point whose requests all started in
  // warm-up (requests slower than the window) goes on until one is measured: the duration is
  // the least time measured, not a cap that leaves the point empty.
  bool open = true;
  bool measured = false;  // a request has arrived after warm-up
  auto issue = [&]() -> Status {
    if (static_cast<int64_t>(records.size()) >= spec.max_requests) {
      open = false;
      return Status::Ok();
    }
    engine::GenerationRequest r = NextRequest();
    RequestRecord rec;
    rec.input_tokens = static_cast<int64_t>(r.prompt.size());
    const int samples = r.sampling.n;
    rec.arrival_ns = rec.sent_ns = SteadyNowNs();
    if (rec.arrival_ns >= stop_arrivals && measured) {
      open = false;
      return Status::Ok();
    }
    measured |= rec.arrival_ns >= window_start;
    BE_ASSIGN_OR_RETURN(engine::RequestId id, target_.Submit(std::move(r)));
    flight[id] = {records.size(), samples};
    records.push_back(std::move(rec));
    return Status::Ok();
  };

  // Fill to the cap, then replace each request as it finishes; on any error the requests still
  // running are cancelled.
  Status s = [&]() -> Status {
    while (open && static_cast<int64_t>(flight.size()) < in_flight_cap) {
      BE_RETURN_IF_ERROR(issue());
    }
    while (!flight.empty()) {
      std::vector<engine::Response> responses = target_.Poll(Millis(20));
      const int finished = Absorb(responses, &flight, &records);
      for (int i = 0; i < finished && open; ++i) BE_RETURN_IF_ERROR(issue());
      BE_RETURN_IF_ERROR(target_.status());
      if (open && measured && SteadyNowNs() >= stop_arrivals) open = false;
      if (!open && drain_deadline == 0) {
        drain_deadline = SteadyNowNs() + static_cast<int64_t>(spec.drain_limit_s * 1e9);
      }
      if (drain_deadline != 0 && SteadyNowNs() > drain_deadline) {
        return DeadlineExceeded("{} requests still running {:g} s after the last arrival",
                                flight.size(), spec.drain_limit_s);
      }
    }
    return Status::Ok();
  }();
  if (!s.ok()) {
    CancelAll(target_, flight);
    return s;
  }
  return Finish(spec, std::move(records), window_start);
}

Result<PointRun> LoadGenerator::RunOpenLoop(const PointSpec& spec) {
  const int64_t start = SteadyNowNs() + 1'000'000;  // first arrival no earlier than 1 ms from now
  const int64_t window_start = start + static_cast<int64_t>(spec.warmup_s * 1e9);
  const int64_t stop_arrivals = window_start + static_cast<int64_t>(spec.duration_s * 1e9);

  // The whole schedule, drawn up front, and every record's arrival with it.
  std::mt19937_64 rng(seed_ ^ (issued_total_ * 0x9e3779b97f4a7c15ull));
  std::exponential_distribution<double> gap(spec.target);
  // As in the closed loop, the duration is the least time measured: when no arrival falls in
  // the window, the process runs on to its first arrival after warm-up, up to ten windows long
  // (a rate too low even for that fails the point).
  const int64_t extended_stop = window_start + static_cast<int64_t>(10 * spec.duration_s * 1e9);
  std::vector<int64_t> arrivals;
  bool measured = false;
  for (double t = gap(rng); static_cast<int64_t>(arrivals.size()) < spec.max_requests;
       t += gap(rng)) {
    int64_t at = start + static_cast<int64_t>(t * 1e9);
    if (at >= (measured ? stop_arrivals : extended_stop)) break;
    arrivals.push_back(at);
    measured |= at >= window_start;
  }
  const size_t n = arrivals.size();
  std::vector<engine::GenerationRequest> requests;
  std::vector<RequestRecord> records(n);
  std::vector<int> samples(n);
  requests.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    requests.push_back(NextRequest());
    records[i].arrival_ns = arrivals[i];
    records[i].input_tokens = static_cast<int64_t>(requests[i].prompt.size());
    samples[i] = requests[i].sampling.n;
  }

  // The sender shares no lock with this thread: it writes records[i].sent_ns and ids[i], then
  // publishes i + 1. This thread reads ids below `published`, and writes only the fields of a
  // record that Absorb fills; sent_ns is read after the sender has joined.
  std::vector<engine::RequestId> ids(n);
  std::atomic<size_t> published{0};
  std::atomic<bool> stop{false};
  std::atomic<bool> send_failed{false};
  Status send_error;

  std::thread sender([&] {
    PrepareSenderThread();
    for (size_t i = 0; i < n; ++i) {
      if (!SleepUntil(arrivals[i], stop)) return;
      records[i].sent_ns = SteadyNowNs();
      Result<engine::RequestId> id = target_.Submit(std::move(requests[i]));
      if (!id.ok()) {
        send_error = id.status();
        send_failed.store(true, std::memory_order_release);
        return;
      }
      ids[i] = *id;
      published.store(i + 1, std::memory_order_release);
    }
  });

  std::map<engine::RequestId, InFlight> flight;
  size_t known = 0;  // requests whose ids this thread has taken into `flight`
  auto learn_ids = [&] {
    for (const size_t now = published.load(std::memory_order_acquire); known < now; ++known) {
      flight[ids[known]] = {known, samples[known]};
    }
  };
  // A response can come before its id is published (Submit has returned, the sender has not
  // stored the id yet): such responses wait one round, in order.
  std::vector<engine::Response> early;
  Status failure;
  int64_t drain_deadline = 0;
  for (;;) {
    std::vector<engine::Response> responses = target_.Poll(Millis(5));
    learn_ids();
    if (!early.empty()) {
      responses.insert(responses.begin(), std::make_move_iterator(early.begin()),
                       std::make_move_iterator(early.end()));
      early.clear();
    }
    Absorb(responses, &flight, &records, &early);
    if (send_failed.load(std::memory_order_acquire)) {
      failure = send_error;
      break;
    }
    if (Status s = target_.status(); !s.ok()) {
      failure = s;
      break;
    }
    if (known == n) {
      early.clear();  // every id is known: these are an earlier point's stragglers
      if (flight.empty()) break;
      if (drain_deadline == 0) {
        drain_deadline = SteadyNowNs() + static_cast<int64_t>(spec.drain_limit_s * 1e9);
      }
      if (SteadyNowNs() > drain_deadline) {
        failure = DeadlineExceeded("{} requests still running {:g} s after the last arrival",
                                   flight.size(), spec.drain_limit_s);
        break;
      }
    }
  }
  stop.store(true);
  sender.join();
  if (!failure.ok()) {
    learn_ids();
    CancelAll(target_, flight);
    return failure;
  }
  return Finish(spec, std::move(records), window_start);
}

int PlannedPoints(const LoadPlan& plan) {
  switch (plan.pattern) {
    case LoadPattern::kSync:
      return 1;
    case LoadPattern::kConcurrency:
      return static_cast<int>(plan.concurrency.size());
    case LoadPattern::kRate:
      return static_cast<int>(plan.rates.size());
    case LoadPattern::kSweep:
      return 2 + plan.sweep_points;
    case LoadPattern::kSloSearch:
      return 2 + plan.search_steps;
  }
  return 1;
}

Result<std::vector<PointRun>> RunPlan(LoadGenerator& gen, const LoadPlan& plan, const Slo& slo,
                                      const std::function<void(const PointRun&, int)>& on_point) {
  std::vector<PointRun> runs;
  auto point = [&](PointKind kind, double target) -> Result<const PointRun*> {
    PointSpec spec;
    spec.kind = kind;
    spec.target = target;
    spec.warmup_s = plan.warmup_s;
    spec.duration_s = plan.duration_s;
    spec.max_requests = plan.max_requests;
    BE_ASSIGN_OR_RETURN(PointRun run, gen.RunPoint(spec, slo));
    runs.push_back(std::move(run));
    if (on_point) on_point(runs.back(), static_cast<int>(runs.size()) - 1);
    return &runs.back();
  };
  switch (plan.pattern) {
    case LoadPattern::kSync: {
      BE_RETURN_IF_ERROR(point(PointKind::kSync, 1).status());
      break;
    }
    case LoadPattern::kConcurrency: {
      for (int64_t c : plan.concurrency) {
        BE_RETURN_IF_ERROR(point(PointKind::kConcurrency, static_cast<double>(c)).status());
      }
      break;
    }
    case LoadPattern::kRate: {
      for (double r : plan.rates) BE_RETURN_IF_ERROR(point(PointKind::kRate, r).status());
      break;
    }
    case LoadPattern::kSweep:
    case LoadPattern::kSloSearch: {
      BE_ASSIGN_OR_RETURN(const PointRun* sync, point(PointKind::kSync, 1));
      const double low = sync->metrics.requests_per_s;
      const bool sync_meets = sync->metrics.meets_slo;
      BE_ASSIGN_OR_RETURN(const PointRun* max,
                          point(PointKind::kThroughput, static_cast<double>(plan.max_concurrency)));
      const double high = max->metrics.requests_per_s;
      const bool max_meets = max->metrics.meets_slo;
      if (low <= 0 || high <= 0) break;  // nothing completed: nothing to interpolate
      if (plan.pattern == LoadPattern::kSweep) {
        for (int i = 1; i <= plan.sweep_points; ++i) {
          double rate = low + (high - low) * i / (plan.sweep_points + 1);
          BE_RETURN_IF_ERROR(point(PointKind::kRate, rate).status());
        }
        break;
      }
      // slo-search: the SLO holds at `lo` and fails at `hi`; bisect on the Poisson rate.
      if (!sync_meets || max_meets) break;  // nothing meets it, or everything does
      double lo = low, hi = high;
      for (int step = 0; step < plan.search_steps; ++step) {
        const double mid = (lo + hi) / 2;
        BE_ASSIGN_OR_RETURN(const PointRun* probe, point(PointKind::kRate, mid));
        (probe->metrics.meets_slo ? lo : hi) = mid;
      }
      break;
    }
  }
  return runs;
}

}  // namespace breakeven::bench
