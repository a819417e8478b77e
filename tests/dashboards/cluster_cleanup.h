// Leaving no benchmark behind: LocalCluster SIGKILLs its scheduler and node agents, and a worker
// whose node agent is killed goes on running its load plan to the end. A test that starts runs
// cancels them and waits for their workers before the cluster goes.
#pragma once

#include <chrono>

#include "tests/support/cluster.h"

namespace breakeven::testing {

// Cancels every run of `cluster` that has not finished, waits up to `timeout` for the workers
// started under the cluster's directory to exit, and SIGKILLs any left.
void CancelRunsAndStopWorkers(LocalCluster& cluster,
                              std::chrono::milliseconds timeout = std::chrono::seconds(20));

// Calls CancelRunsAndStopWorkers when it goes out of scope, however the test ends. Declare it
// after the LocalCluster, so it runs first.
class StopRunsAtExit {
 public:
  explicit StopRunsAtExit(LocalCluster& cluster) : cluster_(cluster) {}
  ~StopRunsAtExit() { CancelRunsAndStopWorkers(cluster_); }
  StopRunsAtExit(const StopRunsAtExit&) = delete;
  StopRunsAtExit& operator=(const StopRunsAtExit&) = delete;

 private:
  LocalCluster& cluster_;
};

}  // namespace breakeven::testing
