#include "node/inventory.h"

#include <fmt/format.h>

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
