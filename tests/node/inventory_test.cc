#include "node/inventory.h"

#include <gtest/gtest.h>

#include "kernels/device.h"

namespace breakeven::node {
namespace {

TEST(Discovery, AlwaysFindsADeviceAndDescribesTheCpu) {
  kernels::Discovery found = kernels::DiscoverDevices();
  ASSERT_FALSE(found.devices.empty());
  kernels::DeviceInfo cpu = kernels::DescribeCpu();
  EXPECT_FALSE(cpu.name.empty());
  EXPECT_GT(cpu.compute_units, 0u);
  EXPECT_GT(cpu.memory_bytes, 64ull << 20);
  if (found.devices[0].kind == kernels::DeviceKind::kCpu) {
    // Without a usable GPU the discovery must say why.
    EXPECT_FALSE(found.cuda_note.empty());
  }
}

TEST(Inventory, WireFormKeepsEveryField) {
  kernels::DeviceInfo d{
      kernels::DeviceKind::kCuda, 3, "NVIDIA H200", "GPU-abc", 150ull << 30, 132, "9.0"};
  v1::Device w = ToWire(d);
  EXPECT_EQ(w.kind(), v1::DEVICE_KIND_CUDA);
  EXPECT_EQ(w.index(), 3u);
  EXPECT_EQ(w.uuid(), "GPU-abc");
  EXPECT_EQ(w.memory_bytes(), 150ull << 30);
  EXPECT_EQ(w.compute_units(), 132u);
  EXPECT_EQ(w.compute_capability(), "9.0");
  EXPECT_EQ(Summarize({w, w}), "2x NVIDIA H200 (150.0 GiB each, sm_9.0)");
}

}  // namespace
}  // namespace breakeven::node
