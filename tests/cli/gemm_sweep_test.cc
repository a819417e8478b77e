// `breakeven gemm-sweep`: its flags are checked before anything runs, with errors that name the
// flag, and its table ends with the line that states the lesson.
#include <gtest/gtest.h>

#include "cli/commands.h"
#include "kernels/calibration.h"

namespace breakeven::cli {
namespace {

TEST(GemmSweepOptions, DefaultsSweepOneToFiveHundredTwelveColumns) {
  Result<std::vector<int64_t>> ns = CheckGemmSweepOptions(GemmSweepOptions{});
  ASSERT_TRUE(ns.ok()) << ns.status().ToString();
  EXPECT_EQ(*ns, (std::vector<int64_t>{1, 2, 4, 8, 16, 32, 64, 128, 256, 512}));
}

// Option checks only: nothing here touches a device, so these run (and pass) with or without a
// GPU; the CUDA sweep itself is in tests/kernels/calibration_test.cc and skips without one.
TEST(GemmSweepOptions, ParsesAColumnListWithSpaces) {
  GemmSweepOptions o;
  o.backend = "cuda";
  o.n = "1, 64 ,4096";
  Result<std::vector<int64_t>> ns = CheckGemmSweepOptions(o);
  ASSERT_TRUE(ns.ok()) << ns.status().ToString();
  EXPECT_EQ(*ns, (std::vector<int64_t>{1, 64, 4096}));
}

// The error for `options`, which must name `flag`.
void ExpectRejected(const GemmSweepOptions& options, const std::string& flag) {
  Result<std::vector<int64_t>> ns = CheckGemmSweepOptions(options);
  ASSERT_FALSE(ns.ok()) << "accepted; expected an error naming " << flag;
  EXPECT_EQ(ns.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ns.status().message().rfind(flag + ":", 0), 0u) << ns.status().message();
}

TEST(GemmSweepOptions, RejectsBadValuesNamingTheFlag) {
  for (const char* n : {"0", "1,0", "-4", "1,,2", "", "eight", "8x", "99999999999"}) {
    SCOPED_TRACE(n);
    GemmSweepOptions o;
    o.n = n;
    ExpectRejected(o, "--n");
  }
  GemmSweepOptions tpu;
  tpu.backend = "tpu";
  ExpectRejected(tpu, "--backend");
  GemmSweepOptions m;
  m.m = 0;
  ExpectRejected(m, "--m");
  GemmSweepOptions k;
  k.k = -1;
  ExpectRejected(k, "--k");
  GemmSweepOptions repeats;
  repeats.repeats = 0;
  ExpectRejected(repeats, "--repeats");
  GemmSweepOptions device;
  device.device = -1;
  ExpectRejected(device, "--device");
}

TEST(GemmSweepOptions, TheCommandRefusesBadFlagsBeforeRunning) {
  GemmSweepOptions o;
  o.n = "0";
  EXPECT_EQ(CmdGemmSweep(o, Output::kTable), 1);
}

kernels::GemmPoint Point(int64_t n, double seconds, double first_seconds) {
  return {n, seconds, 2.0 * 8192 * 8192 * static_cast<double>(n) / seconds,
          seconds / first_seconds};
}

TEST(GemmSweepTable, ShowsEveryPointAndQuotesTheLargestNearlyFreeBatch) {
  std::vector<kernels::GemmPoint> points;
  const double t1 = 40e-6;
  for (auto [n, s] : std::vector<std::pair<int64_t, double>>{
           {1, 40e-6}, {8, 41e-6}, {64, 43.2e-6}, {256, 70e-6}, {1024, 200e-6}}) {
    points.push_back(Point(n, s, t1));
  }
  std::string table = GemmSweepTable(points, /*tflops=*/true);
  EXPECT_EQ(table.substr(0, table.find('\n')), "   N  TIME_US  TFLOP/S  TIME_VS_N=1") << table;
  EXPECT_NE(table.find("  64     43.2    198.8        1.08x"), std::string::npos) << table;
  EXPECT_NE(table.find("1024    200.0"), std::string::npos) << table;
  EXPECT_NE(table.find("\nN=64 costs 1.08x the time of N=1 for 64x the work.\n"), std::string::npos)
      << table;
  EXPECT_NE(GemmSweepTable(points, /*tflops=*/false).find("GFLOP/S"), std::string::npos);
}

TEST(GemmSweepTable, WithoutAFlatStretchQuotesTheLargestWithinThreeTimes) {
  // A CPU's shape: n = 1 runs as a faster gemv, so every larger n costs more than 1.5x.
  std::vector<kernels::GemmPoint> points = {Point(1, 1e-3, 1e-3), Point(2, 1.8e-3, 1e-3),
                                            Point(64, 2.5e-3, 1e-3), Point(512, 12e-3, 1e-3)};
  EXPECT_EQ(GemmSweepVerdict(points), "N=64 costs 2.50x the time of N=1 for 64x the work.");
}

TEST(GemmSweepTable, OtherwiseQuotesTheSecondPoint) {
  std::vector<kernels::GemmPoint> points = {Point(2, 1e-3, 1e-3), Point(3, 4e-3, 1e-3),
                                            Point(4, 5e-3, 1e-3)};
  EXPECT_EQ(GemmSweepVerdict(points), "N=3 costs 4.00x the time of N=2 for 1.5x the work.");
  EXPECT_EQ(GemmSweepVerdict({points[0]}), "");
}

}  // namespace
}  // namespace breakeven::cli
