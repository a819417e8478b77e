// Gang placement of a run's tensor-parallel ranks onto nodes' devices: all ranks or none.
//
// Rules:
//   - A device serves one run at a time (measurements must not share a device). A CPU node
//     offers one device, its CPU, which holds all the ranks placed on that node (they split its
//     cores); a GPU holds one rank.
//   - Only nodes that are UP and connected take new work (not SUSPECT, DOWN, DRAINING, DRAINED).
//   - Device type: "cpu" matches CPU devices; anything else matches GPU devices whose name
//     contains it, case-insensitively ("H100" matches "NVIDIA H100 80GB HBM3").
//   - Memory: each rank needs weights / tp + its KV cache. A GPU must hold one rank; a CPU node
//     must hold every rank placed on it.
//   - One host is preferred (shared memory between ranks, no network hop). Several hosts are used
//     only when the run allows it, and then as few as possible.
//
// A run that cannot be placed stays PENDING with the reason, which says whether it can never fit
// (no device type, too little memory) or is waiting for busy devices.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "proto/breakeven.pb.h"

namespace breakeven::scheduler {

struct PlacementRequest {
  std::string device_type = "cpu";
  int tp = 1;
  int64_t bytes_per_rank = 0;  // weights / tp + KV cache; 0 = unknown (no memory check)
  bool allow_multi_host = false;
};

// A node as placement sees it.
struct NodeCapacity {
  uint64_t id = 0;
  std::string name;
  bool schedulable = false;  // UP and connected
  std::vector<v1::Device> devices;
  std::vector<uint32_t> busy_devices;  // device indexes held by other runs
};

struct NodeShare {
  uint64_t node_id = 0;
  std::string node;
  std::vector<uint32_t> ranks;
  std::vector<uint32_t> devices;  // device index per rank (CPU: the same index repeated)
  std::string device_name;
  double bandwidth_gb_s = 0;  // calibrated, of the devices held (0: unknown)
  double matmul_tflops = 0;
  uint32_t compute_units = 0;  // CPU cores (for threads per rank) or SMs
};

struct Placement {
  std::vector<NodeShare> shares;  // in rank order: shares[0] holds rank 0
  bool multi_host() const { return shares.size() > 1; }
  int devices() const;  // devices held in all: CPU nodes count once
};

struct PlacementResult {
  std::optional<Placement> placement;
  std::string reason;       // why not, when there is no placement
  bool never_fits = false;  // no free capacity would help: the cluster lacks the device or memory
};

bool DeviceMatches(const v1::Device& device, const std::string& device_type);

PlacementResult Place(const PlacementRequest& request, const std::vector<NodeCapacity>& nodes);

}  // namespace breakeven::scheduler
