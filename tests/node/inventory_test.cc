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

TEST(Inventory, CalibrationTravelsInTheSchedulersUnits) {
  kernels::Calibration c;
  c.copy_bytes_per_s = 4.2e12;
  c.matmul_flops_per_s = 7.5e14;
  v1::Device w;
  SetCalibration(c, &w);
  EXPECT_DOUBLE_EQ(w.bandwidth_gb_s(), 4200);
  EXPECT_DOUBLE_EQ(w.matmul_tflops(), 750);
}

TEST(Inventory, CalibratingTheCpuFillsBothFigures) {
  kernels::DeviceInfo cpu = kernels::DescribeCpu();
  std::vector<v1::Device> devices = {ToWire(cpu)};
  ASSERT_EQ(devices[0].bandwidth_gb_s(), 0) << "unmeasured devices report 0";
  EXPECT_EQ(CalibrateDevices(&devices, 0.3), 1);
  // Plausible for any CPU: more than 0.1 GB/s and 0.1 GFLOP/s.
  EXPECT_GT(devices[0].bandwidth_gb_s(), 0.1);
  EXPECT_GT(devices[0].matmul_tflops(), 1e-4);
}

TEST(Inventory, ADeviceThatCannotBeMeasuredStaysUnknown) {
  if (kernels::DiscoverDevices().devices[0].kind == kernels::DeviceKind::kCuda) {
    GTEST_SKIP() << "a CUDA device is present; this covers machines without";
  }
  kernels::DeviceInfo gpu{
      kernels::DeviceKind::kCuda, 0, "absent GPU", "GPU-0", 80ull << 30, 132, "9.0"};
  std::vector<v1::Device> devices = {ToWire(gpu)};
  EXPECT_EQ(CalibrateDevices(&devices, 0.3), 0);
  EXPECT_EQ(devices[0].bandwidth_gb_s(), 0);
  EXPECT_EQ(devices[0].matmul_tflops(), 0);
}

TEST(Inventory, CalibratingCudaDevicesFillsBothFigures) {
  kernels::Discovery found = kernels::DiscoverDevices();
  if (found.devices[0].kind != kernels::DeviceKind::kCuda) {
    GTEST_SKIP() << "no CUDA device: " << found.cuda_note;
  }
  std::vector<v1::Device> devices = {ToWire(found.devices[0])};
  EXPECT_EQ(CalibrateDevices(&devices, 0.3), 1);
  EXPECT_GT(devices[0].bandwidth_gb_s(), 100);
  EXPECT_GT(devices[0].matmul_tflops(), 10);
}

}  // namespace
}  // namespace breakeven::node
