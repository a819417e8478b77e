// The worker process: one tensor-parallel rank. It loads its shard, joins the group through the
// rendezvous store, and then either drives (rank 0: the executor and the load generator) or
// follows (ranks > 0: runs the steps rank 0 broadcasts). A worker writes a JSON report: rank 0's
// holds the benchmark's results; any rank's holds the error that stopped it.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "bench/closed_loop.h"
#include "common/clock.h"
#include "common/status.h"
#include "engine/executor.h"

namespace breakeven::node {

struct WorkerOptions {
  std::string model;              // catalog name (with dummy weights) or a label
  std::string weights = "dummy";  // dummy, a Hugging Face directory or a .gguf file
  uint64_t seed = 0;              // dummy weights and prompts
  DType weight_dtype = DType::kF32;
  int tp = 1;
  int rank = 0;
  std::string store_dir;           // FileStore directory shared by the group
  std::string group = "bench";     // key prefix in the store: run id and attempt
  std::string host = "127.0.0.1";  // address this rank listens on for its peers (gloo)
  std::string collectives = "shm";  // shm (ranks on one host) or gloo (TCP)
  Millis timeout{60000};           // rendezvous and every collective
  std::string backend = "cpu";
  int threads = 0;  // 0: cores / tp
  int64_t block_size = 16;
  int64_t kv_cache_mib = 1024;  // per rank
  int64_t max_model_len = 0;    // 0: the workload's length, at least 4096 when the model allows
  engine::EngineConfig engine;
  bench::ClosedLoopSpec load;
};

// Runs this rank to completion and returns its report. Errors carry the rank.
Result<nlohmann::ordered_json> RunWorker(const WorkerOptions& options);

// Peak resident memory of this process (VmHWM), in bytes.
int64_t PeakRssBytes();

}  // namespace breakeven::node
