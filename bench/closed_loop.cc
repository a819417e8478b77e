#include "bench/closed_loop.h"

#include <map>
#include <random>

namespace breakeven::bench {

namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Result<std::vector<RequestRecord>> RunClosedLoop(engine::Executor& executor,
                                                 const ClosedLoopSpec& spec, int64_t vocab_size) {
  std::mt19937_64 rng(spec.seed);
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(vocab_size - 1));
  std::vector<RequestRecord> records(static_cast<size_t>(spec.requests));
  std::map<engine::RequestId, size_t> in_flight;  // request -> record
  std::map<engine::RequestId, int> samples_left;
  int64_t issued = 0, done = 0;

  auto issue = [&]() -> Status {
    engine::GenerationRequest r;
    r.prompt.resize(static_cast<size_t>(spec.input_tokens));
    for (int32_t& t : r.prompt) t = token(rng);
    r.max_tokens = spec.output_tokens;
    r.sampling = spec.sampling;
    r.sampling.ignore_eos = true;
    r.sampling.seed = spec.seed + static_cast<uint64_t>(issued);
    RequestRecord& rec = records[static_cast<size_t>(issued)];
    rec.input_tokens = spec.input_tokens;
    rec.start_ns = NowNs();
    BE_ASSIGN_OR_RETURN(engine::RequestId id, executor.Enqueue(std::move(r)));
    in_flight[id] = static_cast<size_t>(issued);
    samples_left[id] = spec.sampling.n;
    ++issued;
    return Status::Ok();
  };

  while (issued < spec.requests && issued < spec.concurrency) BE_RETURN_IF_ERROR(issue());
  while (done < spec.requests) {
    for (engine::Response& resp : executor.AwaitResponses(std::chrono::milliseconds(100))) {
      auto it = in_flight.find(resp.request);
      if (it == in_flight.end()) continue;
      RequestRecord& rec = records[it->second];
      rec.output_tokens += static_cast<int64_t>(resp.tokens.size());
      if (resp.sample == 0) {
        rec.token_times_ns.insert(rec.token_times_ns.end(), resp.token_times_ns.begin(),
                                  resp.token_times_ns.end());
      }
      if (resp.finished && --samples_left[resp.request] == 0) {
        rec.ok = resp.reason == engine::FinishReason::kLength;
        in_flight.erase(it);
        ++done;
        if (issued < spec.requests) BE_RETURN_IF_ERROR(issue());
      }
    }
    BE_RETURN_IF_ERROR(executor.status());
  }
  return records;
}

}  // namespace breakeven::bench
