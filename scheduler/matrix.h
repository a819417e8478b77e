// Benchmark matrices: the YAML file a user submits, validated and expanded into runs.
//
//   name: demo                          # required
//   description: ...
//   models:                             # catalog names, or {name, weights}
//     - tiny-15m
//     - {name: llama-3.2-1b, weights: /models/Llama-3.2-1B}
//   workloads: [almanac, shared-prefix, "512/64", {name: samples, input_tokens: 256,
//               output_tokens: 64, n: 8}]
//   tensor_parallel: [1, 2]             # default [1]
//   devices: [cpu]                      # device types, as nodes report them; default [cpu]
//   allow_multi_host: false             # may a run's ranks span hosts
//   dtype: f32                          # weight storage: f32, bf16, f16
//   kv_cache_mib: 1024                  # per rank
//   load: {pattern: sweep, sweep_points: 4, duration_s: 10, warmup_s: 2, max_requests: 1000,
//          concurrency: [1, 4, 16], rates: [1, 2], search_steps: 5, max_concurrency: 64}
//   slo: {ttft_p95: 500ms, tpot_p95: 50ms}
//   repeats: 1
//   max_attempts: 2
//   schedule: "0 3 * * *"               # cron (UTC); absent: run once
//
// Every error names the file, the line and the field: "demo.yaml:7: load.pattern: 'swep' is not
// one of sync, concurrency, rate, sweep, slo-search". Unknown fields are errors too (a typo must
// not silently fall back to a default).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/load_plan.h"
#include "bench/workloads.h"
#include "common/status.h"

namespace breakeven::scheduler {

struct ModelChoice {
  std::string name;               // catalog name, or a label for files
  std::string weights = "dummy";  // dummy, a Hugging Face directory or a .gguf file
};

// One run: a point of the matrix's cross product.
struct RunSpec {
  ModelChoice model;
  bench::WorkloadSpec workload;
  int tp = 1;
  std::string device_type = "cpu";
  bool allow_multi_host = false;
  std::string dtype = "f32";
  int64_t kv_cache_mib = 1024;
  bench::LoadPlan load;
  bench::Slo slo;
  int repeat = 0;
  int max_attempts = 2;
};

struct MatrixSpec {
  std::string name;
  std::string description;
  std::vector<ModelChoice> models;
  std::vector<bench::WorkloadSpec> workloads;  // catalog names already expanded
  std::vector<int> tensor_parallel = {1};
  std::vector<std::string> devices = {"cpu"};
  bool allow_multi_host = false;
  std::string dtype = "f32";
  int64_t kv_cache_mib = 1024;
  bench::LoadPlan load;
  bench::Slo slo;
  int repeats = 1;
  int max_attempts = 2;
  std::optional<std::string> schedule;  // checked with CronSchedule::Parse

  // models x workloads x tensor_parallel x devices x repeats, in that nesting order.
  std::vector<RunSpec> Expand() const;
};

// `source` names the file in errors. Models with dummy weights must be catalog models; tp must
// divide each catalog model's heads (checked here, so a bad combination fails at submission, not
// on a node).
Result<MatrixSpec> ParseMatrix(std::string_view yaml, std::string_view source);

}  // namespace breakeven::scheduler
