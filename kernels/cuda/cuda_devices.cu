// Device inventory from the CUDA runtime.
//
// A machine without a driver answers cudaGetDeviceCount with "CUDA driver version is
// insufficient" or "no CUDA-capable device"; both mean "no GPU here", not a failure, and the
// caller falls back to the CPU.
#include <cuda_runtime_api.h>

#include <cstdio>
#include <string>
#include <vector>

#include "kernels/device.h"

namespace breakeven::kernels {

namespace {

std::string FormatUuid(const cudaUUID_t& uuid) {
  const auto* b = reinterpret_cast<const unsigned char*>(uuid.bytes);
  char out[64];
  std::snprintf(out, sizeof(out),
                "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
                b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
                b[14], b[15]);
  return out;
}

}  // namespace

std::vector<DeviceInfo> ListCudaDevices(std::string* note) {
  std::vector<DeviceInfo> devices;
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    *note = cudaGetErrorString(err);
    cudaGetLastError();  // clear the sticky error so later calls start clean
    return devices;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    err = cudaGetDeviceProperties(&prop, i);
    if (err != cudaSuccess) {
      *note = std::string("device ") + std::to_string(i) + ": " + cudaGetErrorString(err);
      continue;
    }
    DeviceInfo d;
    d.kind = DeviceKind::kCuda;
    d.index = static_cast<uint32_t>(i);
    d.name = prop.name;
    d.uuid = FormatUuid(prop.uuid);
    d.memory_bytes = prop.totalGlobalMem;
    d.compute_units = static_cast<uint32_t>(prop.multiProcessorCount);
    d.compute_capability = std::to_string(prop.major) + "." + std::to_string(prop.minor);
    devices.push_back(std::move(d));
  }
  if (devices.empty() && note->empty()) *note = "no CUDA device found";
  return devices;
}

}  // namespace breakeven::kernels
