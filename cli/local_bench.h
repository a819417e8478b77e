// `breakeven bench`: one benchmark on this machine without a cluster. Starts one
// breakeven-worker per rank (an argument vector, never a shell), lets them rendezvous through a
// directory store, waits, and prints rank 0's results. A rank that fails is reported with its
// own error; the others are stopped rather than left to time out.
//
// `breakeven models`: the model catalog.
#pragma once

#include <string>
#include <vector>

#include "cli/commands.h"

namespace breakeven::cli {

struct LocalBenchOptions {
  std::string model;
  std::string weights = "dummy";
  std::string dtype = "f32";
  int tp = 1;
  std::string workload = "128:128";
  int64_t concurrency = 1;
  int64_t requests = 8;
  std::string backend = "cpu";
  uint64_t seed = 0;
  int threads = 0;  // per rank; 0 = cores / tp
  int64_t kv_cache_mib = 1024;
  int64_t max_num_seqs = 64;
  int64_t max_num_batched_tokens = 2048;
  float temperature = 0;
  int n = 1;
  std::string keep_dir;  // keep worker logs and reports here (default: a temporary directory)
  Millis timeout{120000};
};

int CmdBench(const LocalBenchOptions& options, Output output);
int CmdModels(Output output);

// Where breakeven-worker is: $BREAKEVEN_WORKER, next to this executable, or in the build
// tree's node/ folder beside cli/.
std::string FindWorkerBinary();

}  // namespace breakeven::cli
