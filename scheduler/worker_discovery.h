// GET /sd/workers: Prometheus HTTP service discovery for the rank-0 workers of live run
// attempts. Node agents list each attempt's worker metrics address in their heartbeats
// (v1::RunRef.metrics_address); the run manager keeps the latest one per attempt and node, and
// this file turns them into the JSON Prometheus reads:
//
//   [{"targets": ["10.0.0.7:41235"],
//     "labels": {"run_id": "12", "attempt": "1", "model": "llama-110m", "node": "node-a"}}]
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace breakeven::scheduler {

struct WorkerTarget {
  std::string address;  // HOST:PORT as Prometheus should dial it
  uint64_t run_id = 0;
  uint32_t attempt = 0;
  std::string model;
  std::string node;
};

// The address Prometheus can reach: a worker bound to a wildcard host ("0.0.0.0:41235",
// "[::]:41235") reports that host, which names no machine; it is replaced by the host of the
// node's connection to the scheduler (`node_peer`, "10.0.0.7:53122"). Anything else is kept.
std::string ReachableAddress(std::string_view reported, std::string_view node_peer);

// The JSON body of /sd/workers: one target group per worker, in the order given. An empty list
// is "[]" (Prometheus then drops every worker target).
std::string WorkerTargetsJson(const std::vector<WorkerTarget>& targets);

}  // namespace breakeven::scheduler
