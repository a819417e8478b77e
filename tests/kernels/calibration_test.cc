// Calibration and the GEMM sweep: figures that are positive and plausible, a sweep whose time
// grows once the product is compute-bound, and CUDA failures that say why.
#include "kernels/calibration.h"

#include <gtest/gtest.h>

#include "kernels/device.h"

namespace breakeven::kernels {
namespace {

bool HaveCudaDevice() {
  Discovery found = DiscoverDevices();
  return !found.devices.empty() && found.devices[0].kind == DeviceKind::kCuda;
}

TEST(CalibrateCpu, MeasuresPlausibleCeilingsWithinItsBudget) {
  CalibrationOptions options;
  options.budget_s = 0.5;
  Result<Calibration> c = CalibrateCpu(options);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_FALSE(c->device.empty());
  EXPECT_EQ(c->matmul_dtype, "fp32");
  // Far below any machine this runs on, far above a broken measurement (0, or a unit slip).
  EXPECT_GT(c->copy_bytes_per_s, 100e6);
  EXPECT_LT(c->copy_bytes_per_s, 100e12);
  EXPECT_GT(c->matmul_flops_per_s, 100e6);
  EXPECT_LT(c->matmul_flops_per_s, 1e15);
  EXPECT_GT(c->seconds_spent, 0);
  // The budget is a target, not a deadline: allow for other work on a shared machine.
  EXPECT_LT(c->seconds_spent, 10) << "a 0.5 s calibration took " << c->seconds_spent << " s";
}

TEST(CalibrateCpu, RunsWithExplicitSizesOnOneThread) {
  CalibrationOptions options;
  options.copy_bytes = 16 << 20;
  options.matmul_n = 128;
  options.threads = 1;
  options.repeats = 3;
  Result<Calibration> c = CalibrateCpu(options);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_GT(c->copy_bytes_per_s, 100e6);
  EXPECT_GT(c->matmul_flops_per_s, 100e6);
}

TEST(GemmSweepCpu, TimeGrowsWithColumnsOnceTheArithmeticDominates) {
  // 2048 x 2048 fp32 (16 MiB): n = 1 reads W once for 8 MFLOP; n = 512 does 4.3 GFLOP, far
  // past the balance of any CPU, so it must take longer.
  Result<std::vector<GemmPoint>> points = GemmSweepCpu(2048, 2048, {1, 512}, 3);
  ASSERT_TRUE(points.ok()) << points.status().ToString();
  ASSERT_EQ(points->size(), 2u);
  const GemmPoint& one = (*points)[0];
  const GemmPoint& many = (*points)[1];
  EXPECT_EQ(one.n, 1);
  EXPECT_EQ(many.n, 512);
  EXPECT_DOUBLE_EQ(one.time_vs_first, 1.0);
  EXPECT_GT(many.seconds, one.seconds);
  EXPECT_GT(many.time_vs_first, 1.0);
  EXPECT_NEAR(many.time_vs_first, many.seconds / one.seconds, 1e-9);
  EXPECT_NEAR(many.flops_per_s, 2.0 * 2048 * 512 * 2048 / many.seconds, many.flops_per_s * 1e-9);
  // Batching raises the rate: per column, 512 at once is cheaper than one.
  EXPECT_GT(many.flops_per_s, one.flops_per_s);
}

TEST(GemmSweep, RejectsShapesThatCannotBeTimed) {
  EXPECT_EQ(GemmSweepCpu(0, 64, {1}, 1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(GemmSweepCpu(64, 64, {}, 1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(GemmSweepCpu(64, 64, {1, 0}, 1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(GemmSweepCpu(64, 64, {1}, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(GemmSweepCuda(0, 64, 64, {-1}, 1).status().code(), StatusCode::kInvalidArgument);
}

TEST(CalibrateCuda, WithoutADeviceFailsWithTheReason) {
  if (HaveCudaDevice()) GTEST_SKIP() << "a CUDA device is present; this covers machines without";
  Result<Calibration> c = CalibrateCuda(0, CalibrationOptions{});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kFailedPrecondition) << c.status().ToString();
  if (BuiltWithCuda()) {
    // The failing call and the driver's words, e.g. "cudaSetDevice(device): CUDA driver version
    // is insufficient for CUDA runtime version".
    EXPECT_NE(c.status().message().find("cudaSetDevice"), std::string::npos)
        << c.status().message();
  } else {
    EXPECT_NE(c.status().message().find("built without CUDA"), std::string::npos);
  }
  Result<std::vector<GemmPoint>> sweep = GemmSweepCuda(0, 64, 64, {1}, 1);
  ASSERT_FALSE(sweep.ok());
  EXPECT_EQ(sweep.status().code(), StatusCode::kFailedPrecondition) << sweep.status().ToString();
}

TEST(CalibrateCuda, MeasuresBothCeilings) {
  if (!HaveCudaDevice()) GTEST_SKIP() << "no CUDA device: " << DiscoverDevices().cuda_note;
  Result<Calibration> c = CalibrateCuda(0, CalibrationOptions{});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->matmul_dtype, "bf16");
  EXPECT_FALSE(c->device.empty());
  // Any data-centre GPU of the last decade copies faster than 100 GB/s and multiplies bf16
  // faster than 10 TFLOP/s; none yet does 20 TB/s or 10 PFLOP/s dense.
  EXPECT_GT(c->copy_bytes_per_s, 100e9);
  EXPECT_LT(c->copy_bytes_per_s, 20e12);
  EXPECT_GT(c->matmul_flops_per_s, 10e12);
  EXPECT_LT(c->matmul_flops_per_s, 10e15);
  std::printf("%s: copy %.0f GB/s, bf16 matmul %.0f TFLOP/s, %.2f s\n", c->device.c_str(),
              c->copy_bytes_per_s / 1e9, c->matmul_flops_per_s / 1e12, c->seconds_spent);
}

TEST(CalibrateCuda, ANonexistentOrdinalIsRefusedByName) {
  if (!HaveCudaDevice()) GTEST_SKIP() << "no CUDA device: " << DiscoverDevices().cuda_note;
  Result<Calibration> c = CalibrateCuda(1000, CalibrationOptions{});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kFailedPrecondition) << c.status().ToString();
  EXPECT_NE(c.status().message().find("CUDA device 1000"), std::string::npos)
      << c.status().message();
}

TEST(GemmSweepCuda, SmallBatchesCostAboutWhatOneDoes) {
  if (!HaveCudaDevice()) GTEST_SKIP() << "no CUDA device: " << DiscoverDevices().cuda_note;
  // An 8192 x 8192 bf16 W (128 MiB, past the L2 cache): n = 64 is still bound by reading W,
  // n = 4096 (about 4096 FLOPs per byte of W) is far past any GPU's balance.
  Result<std::vector<GemmPoint>> points = GemmSweepCuda(0, 8192, 8192, {1, 64, 4096}, 10);
  ASSERT_TRUE(points.ok()) << points.status().ToString();
  ASSERT_EQ(points->size(), 3u);
  for (const GemmPoint& p : *points) {
    std::printf("n=%5lld  %9.1f us  %7.1f TFLOP/s  %6.2fx\n", static_cast<long long>(p.n),
                p.seconds * 1e6, p.flops_per_s / 1e12, p.time_vs_first);
  }
  EXPECT_LT((*points)[1].time_vs_first, 2.5) << "n = 64 should cost about what n = 1 does";
  EXPECT_GT((*points)[2].time_vs_first, 4.0) << "n = 4096 should be compute-bound";
}

}  // namespace
}  // namespace breakeven::kernels
