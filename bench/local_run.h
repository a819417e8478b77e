// Runs one benchmark on this machine: one breakeven-worker process per tensor-parallel rank
// (started from an argument vector, never a shell), rendezvoused through a directory store, and
// returns rank 0's report. A rank that fails is reported with its own error; the others are
// stopped rather than left to time out. Used by `breakeven bench` and the engine benchmark.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "common/clock.h"
#include "common/status.h"

namespace breakeven::bench {

struct LocalRunOptions {
  std::string model;
  std::string weights = "dummy";
  std::string dtype = "f32";
  int tp = 1;
  std::string collectives = "shm";  // how the ranks exchange tensors: shm or gloo
  std::string workload = "128:128";
  int64_t concurrency = 1;
  int64_t requests = 8;
  std::string backend = "cpu";
  bool graphs = true;  // CUDA graphs for decode steps (cuda backend)
  uint64_t seed = 0;
  int threads = 0;  // per rank; 0 = cores / tp
  int64_t kv_cache_mib = 1024;
  int64_t max_num_seqs = 64;
  int64_t max_num_batched_tokens = 2048;
  float temperature = 0;
  int n = 1;
  std::string keep_dir;  // keep worker logs and reports here (default: a temporary directory)
  Millis timeout{600000};
  std::string worker_binary;  // default: FindWorkerBinary()
};

// Rank 0's report, with "ranks": [{rank, memory}] for the others.
Result<nlohmann::ordered_json> RunLocalBenchmark(const LocalRunOptions& options);

// Where breakeven-worker is: $BREAKEVEN_WORKER, next to this executable, or in the build tree's
// node/ folder beside this executable's folder.
std::string FindWorkerBinary();

}  // namespace breakeven::bench
