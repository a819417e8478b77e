// Executor: the engine's API, in the shape of TensorRT-LLM's executor. Enqueue a request (token
// ids, max tokens, sampling, n samples) and get an id; await responses (new tokens with the time
// each was produced, then a final response per sample); cancel.
//
// Rank 0 runs the executor: a step thread owns the batcher, builds each step's plan, broadcasts
// it to the other ranks (which run RunFollower), runs its own shard of the forward pass, samples
// from the gathered logits and hands out responses. Enqueue, AwaitResponses and Cancel may be
// called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "engine/batcher.h"
#include "engine/communicator.h"
#include "engine/model.h"
#include "engine/sampler.h"

namespace breakeven::engine {

using RequestId = uint64_t;

// What one engine step did, handed to EngineConfig::on_step (live metrics).
struct StepStats {
  int64_t sequences = 0;       // sequences that ran a chunk in the step (the batch size)
  int64_t prefill_tokens = 0;  // prompt (and recomputed) tokens in the step
  int64_t decode_tokens = 0;   // single-token decode rows in the step
  int64_t preempted = 0;       // sequences preempted to make room for the step
  int64_t kv_blocks_used = 0;  // KV cache blocks held after the step
  int64_t kv_blocks_total = 0;
  double seconds = 0;  // the forward pass and sampling
};

struct EngineConfig {
  int64_t max_num_batched_tokens = 2048;  // token budget per step (prefill chunks + decodes)
  int64_t max_num_seqs = 64;              // sequences per step
  // Called on the step thread after every step, outside the executor's lock; it delays the
  // next step by its own running time, so keep it to a few atomic updates. Empty: not called.
  std::function<void(const StepStats&)> on_step;
};

struct GenerationRequest {
  std::vector<int32_t> prompt;
  int64_t max_tokens = 16;  // tokens to generate per sample (fewer if EOS comes first)
  SamplingParams sampling;
};

struct Response {
  RequestId request = 0;
  int sample = 0;
  std::vector<int32_t> tokens;          // produced since this sample's previous response
  std::vector<int64_t> token_times_ns;  // steady-clock time each token was produced
  bool finished = false;
  FinishReason reason = FinishReason::kNone;
};

struct EngineStats {
  int64_t steps = 0;
  int64_t prefill_tokens = 0;  // prompt (and recomputed) tokens run through the model
  int64_t decode_tokens = 0;   // single-token decode rows
  int64_t preemptions = 0;
  double step_seconds = 0;  // time in Forward and sampling, all steps
  int64_t peak_running = 0;
  int64_t peak_kv_blocks = 0;
};

class Executor {
 public:
  // `model` and `comm` must outlive the executor. Rank 0 only.
  static Result<std::unique_ptr<Executor>> Start(LlamaModel& model, Communicator& comm,
                                                 const EngineConfig& config);
  ~Executor();

  // Errors name the limit: an empty prompt, a token id outside the vocabulary, a prompt plus
  // max_tokens longer than the model length, more KV blocks than the cache has, n outside
  // 1..max_num_seqs, or an executor that has stopped.
  Result<RequestId> Enqueue(GenerationRequest request);
  // Enqueues several requests at once: either all are accepted (in order, seen by the same
  // step) or none is.
  Result<std::vector<RequestId>> Enqueue(std::vector<GenerationRequest> requests);
  // Waits until at least one response is ready (or `timeout`), then returns all ready ones.
  std::vector<Response> AwaitResponses(Millis timeout);
  void Cancel(RequestId id);
  // Stops the step thread and releases the other ranks. Returns the error that stopped the
  // engine early, if one did.
  Status Shutdown();

  EngineStats stats() const;
  // Why the step thread stopped, or OK while it runs.
  Status status() const;

 private:
  Executor(LlamaModel& model, Communicator& comm, const EngineConfig& config);
  // Checks a request and turns it into its first sequence (request id not yet set).
  Result<std::unique_ptr<Sequence>> Admit(GenerationRequest request) const;
  void Loop();
  Status Step();
  void Fail(const Status& status);
  void Emit(Sequence& seq, int32_t token, int64_t now_ns);
  void EmitFinished(Sequence& seq, FinishReason reason);

  LlamaModel& model_;
  Communicator& comm_;
  EngineConfig config_;
  Batcher batcher_;  // step thread only
  Sampler sampler_;  // step thread only
  std::vector<float> logits_;
  std::vector<int32_t> eos_;

  mutable std::mutex mu_;
  std::condition_variable work_cv_;      // new requests, cancels or stop
  std::condition_variable response_cv_;  // responses ready or failure
  std::deque<std::unique_ptr<Sequence>> incoming_;
  std::vector<RequestId> cancels_;
  std::map<std::pair<RequestId, int>, Response> ready_;
  RequestId next_request_ = 1;
  uint64_t next_seq_ = 1;  // step thread only after Start
  bool stop_ = false;
  Status failure_;
  EngineStats stats_;
  std::thread thread_;
};

// The loop of ranks > 0: run each plan rank 0 broadcasts until it says stop. Returns the first
// error (a dead rank 0 surfaces as the communicator's deadline).
Status RunFollower(LlamaModel& model, Communicator& comm);

}  // namespace breakeven::engine
