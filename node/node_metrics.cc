#include "node/node_metrics.h"

#include <fstream>
#include <sstream>

#include "common/version.h"

#ifdef BREAKEVEN_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace breakeven::node {

namespace {

class SystemProbe : public DeviceProbe {
 public:
  explicit SystemProbe(std::unique_ptr<Nvml> nvml) : nvml_(std::move(nvml)) {}

  DeviceReading Read(const v1::Device& device) override {
    DeviceReading out;
    if (device.kind() == v1::DEVICE_KIND_CPU) {
      std::ifstream in("/proc/meminfo");
      std::stringstream text;
      text << in.rdbuf();
      if (auto mem = ParseMeminfo(text.str())) {
        out.memory_used_bytes = mem->first;
        out.memory_total_bytes = mem->second;
      }
      return out;
    }
    if (nvml_) {
      Nvml::Reading r = nvml_->Read(device.uuid(), device.index());
      if (r.memory_used_bytes) out.memory_used_bytes = static_cast<double>(*r.memory_used_bytes);
      if (r.memory_total_bytes) out.memory_total_bytes = static_cast<double>(*r.memory_total_bytes);
      out.utilization_ratio = r.utilization_ratio;
      out.power_watts = r.power_watts;
      return out;
    }
#ifdef BREAKEVEN_WITH_CUDA
    // Without NVML: the runtime's view, through a context on the device (the calibration at
    // start has usually made it already).
    size_t free_bytes = 0, total_bytes = 0;
    if (cudaSetDevice(static_cast<int>(device.index())) == cudaSuccess &&
        cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess) {
      out.memory_used_bytes = static_cast<double>(total_bytes - free_bytes);
      out.memory_total_bytes = static_cast<double>(total_bytes);
    } else {
      cudaGetLastError();  // clear it: the next scrape tries again
    }
#endif
    return out;
  }

 private:
  std::unique_ptr<Nvml> nvml_;
};

}  // namespace

std::unique_ptr<DeviceProbe> MakeSystemProbe(std::unique_ptr<Nvml> nvml) {
  return std::make_unique<SystemProbe>(std::move(nvml));
}

std::optional<std::pair<double, double>> ParseMeminfo(std::string_view text) {
  std::optional<double> total_kib, available_kib;
  std::istringstream in{std::string(text)};
  std::string key;
  double kib = 0;
  std::string rest;
  while (in >> key >> kib) {
    if (key == "MemTotal:") total_kib = kib;
    if (key == "MemAvailable:") available_kib = kib;
    std::getline(in, rest);  // the unit
  }
  if (!total_kib || !available_kib) return std::nullopt;
  const double total = *total_kib * 1024, available = *available_kib * 1024;
  return std::make_pair(std::max(0.0, total - available), total);
}

std::string DeviceLabel(const v1::Device& device) {
  return device.kind() == v1::DEVICE_KIND_CPU ? "cpu" : std::to_string(device.index());
}

NodeMetrics::NodeMetrics(std::string node_name, std::vector<v1::Device> devices, Sources sources)
    : node_(std::move(node_name)),
      devices_(std::move(devices)),
      sources_(std::move(sources)),
      memory_used_(registry_.AddGauge("breakeven_node_device_memory_used_bytes",
                                      "Device memory in use: on the CPU MemTotal - MemAvailable "
                                      "of /proc/meminfo, on CUDA devices as NVML (or the CUDA "
                                      "runtime) reports it.",
                                      {"node", "device", "device_name"})),
      memory_total_(registry_.AddGauge("breakeven_node_device_memory_total_bytes",
                                       "Device memory in all (on the CPU, MemTotal).",
                                       {"node", "device", "device_name"})),
      utilization_(registry_.AddGauge(
          "breakeven_node_device_utilization_ratio",
          "Fraction of NVML's last sample period a kernel ran on the device (GPUs with NVML only).",
          {"node", "device", "device_name"})),
      power_(registry_.AddGauge("breakeven_node_device_power_watts",
                                "Device power draw (GPUs with NVML only).",
                                {"node", "device", "device_name"})),
      workers_running_(registry_
                           .AddGauge("breakeven_node_workers_running",
                                     "breakeven-worker processes of run attempts on this node.",
                                     {"node"})
                           .WithLabels({node_})),
      heartbeats_sent_(registry_
                           .AddCounter("breakeven_node_heartbeats_sent_total",
                                       "Heartbeats sent to the scheduler.", {"node"})
                           .WithLabels({node_})) {
  registry_
      .AddGauge("breakeven_build_info", "Constant 1, labelled with the program and its version.",
                {"component", "version"})
      .WithLabels({"node", std::string(kVersion)})
      .Set(1);
  // Calibration is measured once at start: set here, never changed. A device that was not
  // measured (--calibrate off, or the measurement failed) has no series.
  auto& copy = registry_.AddGauge("breakeven_node_calibration_copy_bytes_per_second",
                                  "Measured large-copy bandwidth (bytes read + written per "
                                  "second), the ceiling MBU is a fraction of.",
                                  {"node", "device", "device_name"});
  auto& matmul = registry_.AddGauge("breakeven_node_calibration_matmul_flops_per_second",
                                    "Measured large matrix-product rate (FLOP/s; bf16 on GPUs, "
                                    "fp32 on the CPU), the ceiling MFU is a fraction of.",
                                    {"node", "device", "device_name"});
  for (const v1::Device& d : devices_) {
    const std::vector<std::string> labels = {node_, DeviceLabel(d), d.name()};
    if (d.bandwidth_gb_s() > 0) copy.WithLabels(labels).Set(d.bandwidth_gb_s() * 1e9);
    if (d.matmul_tflops() > 0) matmul.WithLabels(labels).Set(d.matmul_tflops() * 1e12);
  }
  registry_.OnScrape([this] { Scrape(); });
}

void NodeMetrics::Scrape() {
  for (const v1::Device& d : devices_) {
    const std::vector<std::string> labels = {node_, DeviceLabel(d), d.name()};
    DeviceReading r = sources_.probe ? sources_.probe->Read(d) : DeviceReading{};
    // A reading that disappears (a driver reset) takes its series with it.
    auto set = [&](metrics::Family<metrics::Gauge>& family, const std::optional<double>& v) {
      if (v) {
        family.WithLabels(labels).Set(*v);
      } else {
        family.Remove(labels);
      }
    };
    set(memory_used_, r.memory_used_bytes);
    set(memory_total_, r.memory_total_bytes);
    set(utilization_, r.utilization_ratio);
    set(power_, r.power_watts);
  }
  if (sources_.workers_running) workers_running_.Set(sources_.workers_running());
  if (sources_.heartbeats_sent) {
    // The agent keeps its own count (read lock-free by its tests); the counter catches up.
    const uint64_t sent = sources_.heartbeats_sent();
    if (sent > heartbeats_counted_) {
      heartbeats_sent_.Inc(static_cast<double>(sent - heartbeats_counted_));
      heartbeats_counted_ = sent;
    }
  }
}

}  // namespace breakeven::node
