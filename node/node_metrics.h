// The node agent's /metrics (docs/observability.md, "Node"): device memory, utilization and
// power, the calibration figures, workers running and heartbeats sent; every series labelled
// with the node's name.
//
// Everything is read at scrape time (Registry::OnScrape) on the HTTP server's own thread, never
// on the heartbeat's: a slow NVML or /proc read delays the scrape, not a heartbeat. Nothing in a
// scrape goes over the network.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/metrics.h"
#include "node/nvml.h"
#include "proto/breakeven.pb.h"

namespace breakeven::node {

// One device's readings at scrape time; an empty field is not exported.
struct DeviceReading {
  std::optional<double> memory_used_bytes;
  std::optional<double> memory_total_bytes;
  std::optional<double> utilization_ratio;  // 0..1
  std::optional<double> power_watts;
};

// Where readings come from. An interface so tests can plug in a fake.
class DeviceProbe {
 public:
  virtual ~DeviceProbe() = default;
  // Called from the scrape thread, one scrape at a time.
  virtual DeviceReading Read(const v1::Device& device) = 0;
};

// The real probe. CPU: MemTotal - MemAvailable of /proc/meminfo. CUDA devices: NVML when it was
// loaded (memory, utilization, power), else the CUDA runtime's cudaMemGetInfo (memory only).
// `nvml` may be null.
std::unique_ptr<DeviceProbe> MakeSystemProbe(std::unique_ptr<Nvml> nvml);

// Used and total bytes from the text of /proc/meminfo (MemTotal - MemAvailable, MemTotal);
// nothing when either line is missing.
std::optional<std::pair<double, double>> ParseMeminfo(std::string_view text);

// The `device` label: "cpu" for the CPU, the CUDA ordinal otherwise.
std::string DeviceLabel(const v1::Device& device);

class NodeMetrics {
 public:
  struct Sources {
    std::unique_ptr<DeviceProbe> probe;
    std::function<int()> workers_running;       // worker processes alive on this node
    std::function<uint64_t()> heartbeats_sent;  // since the agent started
  };
  // `devices` as registered (their calibration figures are exported as they are: 0 until
  // measured, which the help text says).
  NodeMetrics(std::string node_name, std::vector<v1::Device> devices, Sources sources);

  metrics::Registry& registry() { return registry_; }

 private:
  void Scrape();

  std::string node_;
  std::vector<v1::Device> devices_;
  Sources sources_;
  metrics::Registry registry_;
  metrics::Family<metrics::Gauge>& memory_used_;
  metrics::Family<metrics::Gauge>& memory_total_;
  metrics::Family<metrics::Gauge>& utilization_;
  metrics::Family<metrics::Gauge>& power_;
  metrics::Gauge& workers_running_;
  metrics::Counter& heartbeats_sent_;
  uint64_t heartbeats_counted_ = 0;  // scrape thread only
};

}  // namespace breakeven::node
