// Compute devices as the backends see them.
//
// Discovery asks the CUDA runtime for devices when the CUDA backend is built in and a driver is
// present; otherwise the CPU is the one device. Later this header grows the backend interface
// (buffers, ops); for now it is what a node agent reports to the scheduler.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace breakeven::kernels {

enum class DeviceKind { kCpu, kCuda };

struct DeviceInfo {
  DeviceKind kind = DeviceKind::kCpu;
  uint32_t index = 0;              // CUDA ordinal; 0 for the CPU
  std::string name;                // marketing name from the driver or /proc/cpuinfo
  std::string uuid;                // "GPU-8c1f..." for CUDA devices; empty for the CPU
  uint64_t memory_bytes = 0;       // device memory, or host memory available to this process
  uint32_t compute_units = 0;      // SMs, or CPU cores this process may run on
  std::string compute_capability;  // "9.0"; empty for the CPU
};

struct Discovery {
  std::vector<DeviceInfo> devices;
  // Why no CUDA device is listed, for the log: "built without CUDA", "CUDA driver version is
  // insufficient for CUDA runtime version", "no CUDA-capable device is detected".
  std::string cuda_note;
};

// CUDA devices if any can be used, else the CPU. Never fails: a machine always has a CPU.
Discovery DiscoverDevices();

// The CPU as one device: model name, usable cores (the affinity mask) and memory (MemTotal,
// capped by a cgroup v2 memory.max when one is set).
DeviceInfo DescribeCpu();

// Whether this build has the CUDA backend.
bool BuiltWithCuda();

}  // namespace breakeven::kernels
