#include "engine/executor.h"

#include <algorithm>

#include "common/clock.h"

namespace breakeven::engine {

namespace {

// Rank 0 tells idle followers it is alive this often, well inside any collective deadline.
constexpr auto kIdleBeat = std::chrono::milliseconds(500);

}  // namespace

Executor::Executor(LlamaModel& model, Communicator& comm, const EngineConfig& config)
    : model_(model),
      comm_(comm),
      config_(config),
      batcher_(BatcherConfig{config.max_num_batched_tokens, config.max_num_seqs,
                             model.options().block_size, model.options().num_kv_blocks}),
      eos_(model.config().eos_token_ids) {}

Result<std::unique_ptr<Executor>> Executor::Start(LlamaModel& model, Communicator& comm,
                                                  const EngineConfig& config) {
  if (comm.rank() != 0) return FailedPrecondition("the executor runs on rank 0");
  if (config.max_num_batched_tokens > model.options().max_tokens_per_step) {
    return InvalidArgument("max_num_batched_tokens {} exceeds the model's step buffers ({})",
                           config.max_num_batched_tokens, model.options().max_tokens_per_step);
  }
  if (config.max_num_seqs < 1 || config.max_num_batched_tokens < 1) {
    return InvalidArgument("max_num_seqs and max_num_batched_tokens must be positive");
  }
  std::unique_ptr<Executor> e(new Executor(model, comm, config));
  e->thread_ = std::thread([p = e.get()] { p->Loop(); });
  return e;
}

Executor::~Executor() { (void)Shutdown(); }

Result<std::unique_ptr<Sequence>> Executor::Admit(GenerationRequest request) const {
  const ModelConfig& mc = model_.config();
  const int64_t max_len = model_.options().max_model_len;
  const int64_t prompt = static_cast<int64_t>(request.prompt.size());
  if (prompt == 0) return InvalidArgument("request has an empty prompt");
  for (int32_t t : request.prompt) {
    if (t < 0 || t >= mc.vocab_size) {
      return InvalidArgument("prompt token {} is outside the vocabulary of {} ({} tokens)", t,
                             mc.name, mc.vocab_size);
    }
  }
  if (request.max_tokens < 1) return InvalidArgument("max_tokens must be at least 1");
  if (prompt + request.max_tokens > max_len) {
    return InvalidArgument(
        "prompt of {} tokens plus {} to generate exceeds the context limit of {} tokens "
        "(max_model_len)",
        prompt, request.max_tokens, max_len);
  }
  if (request.sampling.n < 1 || request.sampling.n > config_.max_num_seqs) {
    return InvalidArgument("n = {} samples: must be between 1 and max_num_seqs ({})",
                           request.sampling.n, config_.max_num_seqs);
  }
  const int64_t blocks = batcher_.BlocksFor(prompt + request.max_tokens);
  if (blocks > model_.options().num_kv_blocks) {
    return ResourceExhausted("request needs {} KV blocks; the cache has {}", blocks,
                             model_.options().num_kv_blocks);
  }
  auto seq = std::make_unique<Sequence>();
  seq->tokens = std::move(request.prompt);
  seq->prompt_len = prompt;
  seq->max_new_tokens = request.max_tokens;
  seq->sampling = request.sampling;
  seq->rng = SampleRng(request.sampling.seed, 0);
  seq->fork_pending = request.sampling.n > 1;
  return seq;
}

Result<RequestId> Executor::Enqueue(GenerationRequest request) {
  std::vector<GenerationRequest> one;
  one.push_back(std::move(request));
  BE_ASSIGN_OR_RETURN(std::vector<RequestId> ids, Enqueue(std::move(one)));
  return ids[0];
}

Result<std::vector<RequestId>> Executor::Enqueue(std::vector<GenerationRequest> requests) {
  std::vector<std::unique_ptr<Sequence>> seqs;
  for (GenerationRequest& r : requests) {
    BE_ASSIGN_OR_RETURN(auto seq, Admit(std::move(r)));
    seqs.push_back(std::move(seq));
  }
  std::lock_guard lock(mu_);
  if (stop_ || !failure_.ok()) {
    return Unavailable("the engine has stopped{}", failure_.ok() ? "" : ": " + failure_.message());
  }
  std::vector<RequestId> ids;
  for (auto& seq : seqs) {
    seq->request_id = next_request_++;
    ids.push_back(seq->request_id);
    incoming_.push_back(std::move(seq));
  }
  work_cv_.notify_one();
  return ids;
}

std::vector<Response> Executor::AwaitResponses(Millis timeout) {
  std::unique_lock lock(mu_);
  response_cv_.wait_for(lock, timeout, [&] { return !ready_.empty() || stop_ || !failure_.ok(); });
  std::vector<Response> out;
  out.reserve(ready_.size());
  for (auto& [key, r] : ready_) out.push_back(std::move(r));
  ready_.clear();
  return out;
}

void Executor::Cancel(RequestId id) {
  std::lock_guard lock(mu_);
  cancels_.push_back(id);
  work_cv_.notify_one();
}

Status Executor::Shutdown() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  response_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mu_);
  return failure_;
}

EngineStats Executor::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

Status Executor::status() const {
  std::lock_guard lock(mu_);
  return failure_;
}

void Executor::Fail(const Status& status) {
  std::lock_guard lock(mu_);
  if (failure_.ok()) failure_ = status;
  response_cv_.notify_all();
}

void Executor::Loop() {
  bool followers_released = false;
  const bool group = comm_.world_size() > 1;
  for (;;) {
    std::vector<RequestId> cancels;
    {
      std::unique_lock lock(mu_);
      auto has_work = [&] {
        return stop_ || !incoming_.empty() || !cancels_.empty() || batcher_.HasWork();
      };
      bool woke = work_cv_.wait_for(lock, kIdleBeat, has_work);
      if (stop_) break;
      while (!incoming_.empty()) {
        batcher_.Add(std::move(incoming_.front()));
        incoming_.pop_front();
      }
      cancels.swap(cancels_);
      if (!woke && group) {
        // Idle: tell the followers rank 0 is still here.
        lock.unlock();
        std::string idle = StepPlan::Idle().Encode();
        if (Status s = comm_.BroadcastString(&idle, 0); !s.ok()) {
          Fail(s.WithContext("rank 0: idle beat"));
          followers_released = true;  // they are gone or will time out
          break;
        }
        continue;
      }
    }
    for (RequestId id : cancels) {
      for (Sequence* seq : batcher_.SequencesOf(id)) EmitFinished(*seq, FinishReason::kCancelled);
    }
    if (!batcher_.HasWork()) continue;
    if (Status s = Step(); !s.ok()) {
      Fail(s);
      followers_released = true;  // a failed collective leaves the group unusable
      break;
    }
  }
  if (group && !followers_released) {
    std::string stop = StepPlan::Stop().Encode();
    (void)comm_.BroadcastString(&stop, 0);
  }
  std::lock_guard lock(mu_);
  stop_ = true;
  response_cv_.notify_all();
}

Status Executor::Step() {
  Schedule schedule = batcher_.Next();
  if (schedule.empty()) return Status::Ok();
  StepPlan plan = StepPlan::FromSchedule(schedule, model_.options().block_size);
  if (comm_.world_size() > 1) {
    std::string bytes = plan.Encode();
    BE_RETURN_IF_ERROR(comm_.BroadcastString(&bytes, 0).WithContext("rank 0: step plan"));
  }
  const bool on_device = model_.samples_on_device();
  auto t0 = std::chrono::steady_clock::now();
  BE_RETURN_IF_ERROR(model_.Forward(plan, on_device ? nullptr : &logits_));
  batcher_.Commit(schedule);

  // Who samples from which logits row: each sampling chunk's sequence, and the samples it
  // forks on its first token.
  const int64_t vocab = model_.config().vocab_size;
  std::vector<std::pair<Sequence*, int32_t>> samples;
  int32_t row = 0;
  for (const ScheduledChunk& chunk : schedule.chunks) {
    if (!chunk.samples) continue;
    samples.emplace_back(chunk.seq, row);
    if (chunk.seq->fork_pending) {
      for (Sequence* child : batcher_.Fork(chunk.seq, chunk.seq->sampling.n, &next_seq_)) {
        samples.emplace_back(child, row);
      }
    }
    ++row;
  }
  std::vector<int32_t> tokens(samples.size());
  if (on_device) {
    std::vector<kernels::SampleSpec> specs(samples.size());
    for (size_t i = 0; i < samples.size(); ++i) {
      const Sequence& seq = *samples[i].first;
      kernels::SampleSpec& spec = specs[i];
      spec.row = samples[i].second;
      spec.temperature = seq.sampling.temperature;
      spec.top_k = seq.sampling.top_k;
      spec.top_p = seq.sampling.top_p;
      // The same draw the host sampler would make, from the sequence's own generator.
      spec.uniform = spec.temperature > 0 ? UniformDraw(samples[i].first->rng) : 0.0;
    }
    BE_RETURN_IF_ERROR(model_.Sample(specs, &tokens));
  } else {
    for (size_t i = 0; i < samples.size(); ++i) {
      Sequence& seq = *samples[i].first;
      tokens[i] =
          sampler_.Sample(logits_.data() + samples[i].second * vocab, vocab, seq.sampling, seq.rng);
    }
  }
  // The step's time: the forward pass and sampling (a device's work is done once the tokens
  // are on the host).
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const int64_t now = SteadyNowNs();
  std::vector<Sequence*> done;
  for (size_t i = 0; i < samples.size(); ++i) {
    Sequence* seq = samples[i].first;
    const int32_t token = tokens[i];
    seq->tokens.push_back(token);
    Emit(*seq, token, now);
    bool eos =
        !seq->sampling.ignore_eos && std::find(eos_.begin(), eos_.end(), token) != eos_.end();
    if (eos)
      seq->finish = FinishReason::kEos;
    else if (seq->generated() >= seq->max_new_tokens)
      seq->finish = FinishReason::kLength;
    if (seq->finish != FinishReason::kNone) done.push_back(seq);
  }
  for (Sequence* seq : done) EmitFinished(*seq, seq->finish);

  StepStats step;
  step.sequences = static_cast<int64_t>(schedule.chunks.size());
  step.preempted = schedule.preempted;
  for (const ScheduledChunk& c : schedule.chunks) {
    // A decode row feeds the one token sampled last step; everything else is (re)prefill.
    bool decode = c.count == 1 && c.start >= c.seq->prompt_len;
    (decode ? step.decode_tokens : step.prefill_tokens) += c.count;
  }
  step.kv_blocks_used = batcher_.blocks().used_blocks();
  step.kv_blocks_total = batcher_.blocks().num_blocks();
  step.seconds = seconds;
  {
    std::lock_guard lock(mu_);
    ++stats_.steps;
    stats_.step_seconds += seconds;
    stats_.preemptions += schedule.preempted;
    stats_.decode_tokens += step.decode_tokens;
    stats_.prefill_tokens += step.prefill_tokens;
    stats_.peak_running =
        std::max<int64_t>(stats_.peak_running, static_cast<int64_t>(batcher_.running()));
    stats_.peak_kv_blocks = std::max(stats_.peak_kv_blocks, step.kv_blocks_used);
    if (!ready_.empty()) response_cv_.notify_all();
  }
  if (config_.on_step) config_.on_step(step);
  return Status::Ok();
}

void Executor::Emit(Sequence& seq, int32_t token, int64_t now_ns) {
  std::lock_guard lock(mu_);
  Response& r = ready_[{seq.request_id, seq.sample_index}];
  r.request = seq.request_id;
  r.sample = seq.sample_index;
  r.tokens.push_back(token);
  r.token_times_ns.push_back(now_ns);
}

void Executor::EmitFinished(Sequence& seq, FinishReason reason) {
  {
    std::lock_guard lock(mu_);
    Response& r = ready_[{seq.request_id, seq.sample_index}];
    r.request = seq.request_id;
    r.sample = seq.sample_index;
    r.finished = true;
    r.reason = reason;
  }
  batcher_.Finish(&seq, reason);
}

Status RunFollower(LlamaModel& model, Communicator& comm) {
  const ModelOptions& o = model.options();
  for (;;) {
    std::string bytes;
    BE_RETURN_IF_ERROR(comm.BroadcastString(&bytes, 0).WithContext(
        fmt::format("rank {}: waiting for the next step", comm.rank())));
    BE_ASSIGN_OR_RETURN(StepPlan plan, StepPlan::Decode(bytes, o.num_kv_blocks, o.block_size,
                                                        model.config().vocab_size));
    if (plan.kind == StepPlan::Kind::kStop) return Status::Ok();
    if (plan.kind == StepPlan::Kind::kIdle) continue;
    BE_RETURN_IF_ERROR(model.Forward(plan, nullptr));
  }
}

}  // namespace breakeven::engine
