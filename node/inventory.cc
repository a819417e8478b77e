#include "node/inventory.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <thread>

namespace breakeven::node {

v1::Device ToWire(const kernels::DeviceInfo& device) {
  v1::Device d;
  d.set_index(device.index);
  d.set_kind(device.kind == kernels::DeviceKind::kCuda ? v1::DEVICE_KIND_CUDA
                                                       : v1::DEVICE_KIND_CPU);
  d.set_name(device.name);
  d.set_uuid(device.uuid);
  d.set_memory_bytes(device.memory_bytes);
  d.set_compute_units(device.compute_units);
  d.set_compute_capability(device.compute_capability);
  return d;
}

namespace {

// "CUDA device 3 (NVIDIA H200)", "the CPU (AMD EPYC 9454P 48-Core Processor)": for logs.
std::string Label(const v1::Device& d) {
  return d.kind() == v1::DEVICE_KIND_CUDA ? fmt::format("CUDA device {} ({})", d.index(), d.name())
                                          : fmt::format("the CPU ({})", d.name());
}

}  // namespace

void SetCalibration(const kernels::Calibration& calibration, v1::Device* device) {
  device->set_bandwidth_gb_s(calibration.copy_bytes_per_s / 1e9);
  device->set_matmul_tflops(calibration.matmul_flops_per_s / 1e12);
}

int CalibrateDevices(std::vector<v1::Device>* devices, double cpu_budget_s) {
  std::vector<std::optional<Result<kernels::Calibration>>> results(devices->size());
  std::vector<std::thread> cuda_threads;
  for (size_t i = 0; i < devices->size(); ++i) {
    const v1::Device& d = (*devices)[i];
    if (d.kind() == v1::DEVICE_KIND_CUDA) {
      cuda_threads.emplace_back([&results, i, index = static_cast<int>(d.index())] {
        results[i] = kernels::CalibrateCuda(index, kernels::CalibrationOptions{});
      });
    }
  }
  for (std::thread& t : cuda_threads) t.join();
  // The CPU last and alone: the CUDA threads would take cores from its copy and sgemm.
  for (size_t i = 0; i < devices->size(); ++i) {
    const v1::Device& d = (*devices)[i];
    if (d.kind() != v1::DEVICE_KIND_CPU) continue;
    kernels::CalibrationOptions options;
    options.budget_s = cpu_budget_s;
    options.threads = static_cast<int>(std::max<uint32_t>(1, d.compute_units()));
    results[i] = kernels::CalibrateCpu(options);
  }
  int measured = 0;
  for (size_t i = 0; i < devices->size(); ++i) {
    v1::Device& d = (*devices)[i];
    if (!results[i].has_value()) continue;  // a kind with nothing to measure
    if (!results[i]->ok()) {
      spdlog::warn("calibration of {} failed, MBU and MFU will not be reported: {}", Label(d),
                   results[i]->status().message());
      continue;
    }
    const kernels::Calibration& c = **results[i];
    SetCalibration(c, &d);
    ++measured;
    spdlog::info("calibrated {}: copy {:.1f} GB/s, {} matmul {:.2f} TFLOP/s ({:.1f} s)", Label(d),
                 c.copy_bytes_per_s / 1e9, c.matmul_dtype, c.matmul_flops_per_s / 1e12,
                 c.seconds_spent);
  }
  return measured;
}

std::string Summarize(const std::vector<v1::Device>& devices) {
  if (devices.empty()) return "no devices";
  const v1::Device& first = devices.front();
  double gib = static_cast<double>(first.memory_bytes()) / (1ull << 30);
  if (first.kind() == v1::DEVICE_KIND_CPU) {
    return fmt::format("{}x {} ({} cores, {:.1f} GiB)", devices.size(), first.name(),
                       first.compute_units(), gib);
  }
  return fmt::format("{}x {} ({:.1f} GiB each, sm_{})", devices.size(), first.name(), gib,
                     first.compute_capability());
}

}  // namespace breakeven::node
