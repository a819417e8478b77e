// The worker process: one tensor-parallel rank. It loads its shard, joins the group through the
// rendezvous store, and then either drives (rank 0: the executor and the load generator) or
// follows (ranks > 0: runs the steps rank 0 broadcasts). A worker writes a JSON report: rank 0's
// holds the benchmark's results; any rank's holds the error that stopped it.
//
// Two ways to run: standalone (`breakeven bench`: a FileStore directory for the rendezvous) and
// in a cluster (started by a node agent: the scheduler's store, keyed by run and attempt, and
// every finished load point handed to `on_point` as it completes).
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "bench/load_generator.h"
#include "bench/load_plan.h"
#include "common/clock.h"
#include "common/endpoint.h"
#include "common/status.h"
#include "engine/executor.h"
#include "proto/breakeven.pb.h"

namespace breakeven::node {

struct WorkerOptions {
  std::string model;              // catalog name (with dummy weights) or a label
  std::string weights = "dummy";  // dummy, a Hugging Face directory or a .gguf file
  uint64_t seed = 0;              // dummy weights and prompts
  DType weight_dtype = DType::kF32;
  bool graphs = true;  // capture decode steps as graphs where the backend can (CUDA)
  int tp = 1;
  int rank = 0;
  std::string store_dir;            // FileStore directory shared by the group (standalone)
  std::string scheduler;            // HOST:PORT: rendezvous through the scheduler (cluster)
  std::string token;                // the cluster token, for the scheduler
  std::string group = "bench";      // key prefix in the store: run id and attempt
  std::string host = "127.0.0.1";   // address this rank listens on for its peers (gloo)
  std::string collectives = "shm";  // shm (one host), gloo (TCP) or nccl (backend cuda)
  Millis timeout{60000};            // rendezvous and every collective
  std::string backend = "cpu";
  int threads = 0;  // 0: cores / tp
  int64_t block_size = 16;
  int64_t kv_cache_mib = 1024;  // per rank
  int64_t max_model_len = 0;    // 0: the workload's length, at least 4096 when the model allows
  engine::EngineConfig engine;
  bench::RunLoad load;              // workload, load plan, SLO, prompt seed
  engine::SamplingParams sampling;  // temperature, top-k, top-p (n comes from the workload)
  // The devices the run occupies, for MBU and MFU (0: not reported).
  double peak_bandwidth_gb_s = 0;
  double peak_matmul_tflops = 0;
  // Rank 0: called after each load point.
  std::function<void(const v1::PointResult&)> on_point;
  // Rank 0: serve live metrics (node/worker_metrics.h) at http://<this>/metrics, from before the
  // model loads until the worker ends; port 0 lets the kernel pick. Empty: no endpoint.
  std::string metrics_listen;
  std::string run_id = "local";  // labels of those metrics
  std::string attempt = "0";
  // Rank 0: called once with the address /metrics is served on.
  std::function<void(const HostPort&)> on_metrics_address;
};

// Runs this rank to completion and returns its report. Errors carry the rank.
Result<nlohmann::ordered_json> RunWorker(const WorkerOptions& options);

// What the engine did between two snapshots, and the model's per-step costs: the inputs of
// MBU and MFU (docs/metrics.md).
struct UtilizationInputs {
  double wall_seconds = 0;
  int64_t steps = 0;
  int64_t prefill_tokens = 0;
  int64_t decode_tokens = 0;
  double weight_bytes_per_step = 0;       // every rank's decode weights
  double kv_bytes_per_context_token = 0;  // every rank's K and V of one cached token
  double average_context = 0;             // tokens of context a decode token attends to
  double matmul_flops_per_token = 0;
};
// Achieved bytes/s over peak bandwidth, and achieved matmul FLOP/s over the peak rate; 0 when
// the peak is unknown.
double ModelBandwidthUtilization(const UtilizationInputs& in, double peak_bandwidth_gb_s);
double ModelFlopsUtilization(const UtilizationInputs& in, double peak_matmul_tflops);

// One finished load point as it travels to the scheduler (every request's timings in columns).
v1::PointResult ToPointResult(const bench::PointRun& run, int index, int planned, double mbu,
                              double mfu);

// Peak resident memory of this process (VmHWM), in bytes.
int64_t PeakRssBytes();

}  // namespace breakeven::node
