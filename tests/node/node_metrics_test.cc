// The node agent's /metrics: device readings, NVML being optional, calibration figures and the
// agent's counters; and the rank-0 worker's flags that make its metrics discoverable.
#include "node/node_metrics.h"

#include <gtest/gtest.h>

#include "node/nvml.h"
#include "node/run_supervisor.h"
#include "tests/support/cluster.h"

namespace breakeven::node {
namespace {

using testing::MetricSample;

v1::Device Cpu() {
  v1::Device d;
  d.set_kind(v1::DEVICE_KIND_CPU);
  d.set_name("Test CPU");
  d.set_memory_bytes(uint64_t{8} << 30);
  return d;
}

v1::Device Gpu(uint32_t index) {
  v1::Device d;
  d.set_kind(v1::DEVICE_KIND_CUDA);
  d.set_index(index);
  d.set_name("NVIDIA H200");
  d.set_uuid("GPU-" + std::to_string(index));
  return d;
}

// Readings set by the test.
class FakeProbe : public DeviceProbe {
 public:
  explicit FakeProbe(std::map<std::string, DeviceReading>* readings) : readings_(readings) {}
  DeviceReading Read(const v1::Device& d) override { return (*readings_)[DeviceLabel(d)]; }

 private:
  std::map<std::string, DeviceReading>* readings_;
};

TEST(NodeMetrics, MeminfoGivesUsedAndTotal) {
  auto mem = ParseMeminfo(
      "MemTotal:       16000000 kB\nMemFree:         1000000 kB\n"
      "MemAvailable:    4000000 kB\nHugePages_Total:       0\n");
  ASSERT_TRUE(mem);
  EXPECT_DOUBLE_EQ(mem->first, 12000000.0 * 1024);
  EXPECT_DOUBLE_EQ(mem->second, 16000000.0 * 1024);
  EXPECT_FALSE(ParseMeminfo("MemTotal: 100 kB\n")) << "no MemAvailable (kernels before 3.14)";
  EXPECT_FALSE(ParseMeminfo(""));
}

TEST(NodeMetrics, WithoutNvmlThereAreNoUtilizationSeriesAndNoError) {
  std::string why;
  std::unique_ptr<Nvml> nvml = Nvml::Load("libbreakeven-no-such-nvml.so.1", &why);
  EXPECT_EQ(nvml, nullptr);
  EXPECT_NE(why.find("libbreakeven-no-such-nvml.so.1"), std::string::npos) << why;

  NodeMetrics::Sources sources;
  sources.probe = MakeSystemProbe(nullptr);
  NodeMetrics m("node-a", {Cpu(), Gpu(0)}, std::move(sources));
  std::string text;
  ASSERT_NO_THROW(text = m.registry().Serialize());
  EXPECT_FALSE(MetricSample(text, "breakeven_node_device_utilization_ratio")) << text;
  EXPECT_FALSE(MetricSample(text, "breakeven_node_device_power_watts")) << text;
  // The CPU's memory comes from /proc/meminfo all the same.
  auto used = MetricSample(text, "breakeven_node_device_memory_used_bytes",
                           {{"node", "node-a"}, {"device", "cpu"}, {"device_name", "Test CPU"}});
  auto total = MetricSample(text, "breakeven_node_device_memory_total_bytes",
                            {{"node", "node-a"}, {"device", "cpu"}});
  ASSERT_TRUE(used && total) << text;
  EXPECT_GT(*used, 0);
  EXPECT_LE(*used, *total);
}

TEST(NodeMetrics, ReadingsFollowTheProbeAtEachScrape) {
  std::map<std::string, DeviceReading> readings;
  readings["0"] = {1e9, 8e10, 0.75, 350.5};
  NodeMetrics::Sources sources;
  sources.probe = std::make_unique<FakeProbe>(&readings);
  int workers = 2;
  uint64_t beats = 5;
  sources.workers_running = [&] { return workers; };
  sources.heartbeats_sent = [&] { return beats; };
  v1::Device gpu = Gpu(0);
  gpu.set_bandwidth_gb_s(4000);  // as registered: GB/s and TFLOP/s
  gpu.set_matmul_tflops(700);
  NodeMetrics m("node-a", {Cpu(), gpu}, std::move(sources));

  const std::map<std::string, std::string> gpu0 = {
      {"node", "node-a"}, {"device", "0"}, {"device_name", "NVIDIA H200"}};
  std::string text = m.registry().Serialize();
  EXPECT_EQ(MetricSample(text, "breakeven_node_device_utilization_ratio", gpu0), 0.75) << text;
  EXPECT_EQ(MetricSample(text, "breakeven_node_device_power_watts", gpu0), 350.5);
  EXPECT_EQ(MetricSample(text, "breakeven_node_device_memory_used_bytes", gpu0), 1e9);
  EXPECT_EQ(MetricSample(text, "breakeven_node_device_memory_total_bytes", gpu0), 8e10);
  // Calibration in base units; the CPU was not measured, so it has none.
  EXPECT_EQ(MetricSample(text, "breakeven_node_calibration_copy_bytes_per_second", gpu0), 4e12);
  EXPECT_EQ(MetricSample(text, "breakeven_node_calibration_matmul_flops_per_second", gpu0), 7e14);
  EXPECT_FALSE(
      MetricSample(text, "breakeven_node_calibration_copy_bytes_per_second", {{"device", "cpu"}}));
  EXPECT_FALSE(MetricSample(text, "breakeven_node_device_memory_used_bytes", {{"device", "cpu"}}))
      << "the fake has no CPU reading";
  EXPECT_EQ(MetricSample(text, "breakeven_node_workers_running", {{"node", "node-a"}}), 2.0);
  EXPECT_EQ(MetricSample(text, "breakeven_node_heartbeats_sent_total", {{"node", "node-a"}}), 5.0);
  EXPECT_EQ(MetricSample(text, "breakeven_build_info", {{"component", "node"}}), 1.0);

  // NVML stops answering for the device: its series go rather than freeze.
  readings["0"] = {1e9, 8e10, std::nullopt, std::nullopt};
  workers = 0;
  beats = 9;
  text = m.registry().Serialize();
  EXPECT_FALSE(MetricSample(text, "breakeven_node_device_utilization_ratio", gpu0)) << text;
  EXPECT_FALSE(MetricSample(text, "breakeven_node_device_power_watts", gpu0)) << text;
  EXPECT_EQ(MetricSample(text, "breakeven_node_workers_running", {{"node", "node-a"}}), 0.0);
  EXPECT_EQ(MetricSample(text, "breakeven_node_heartbeats_sent_total", {{"node", "node-a"}}), 9.0);
}

TEST(NodeMetrics, RankZeroIsToldWhereToServeItsMetrics) {
  SupervisorOptions o;
  o.worker_binary = "/bin/breakeven-worker";
  o.metrics_host = "10.0.0.7";
  v1::RunAssignment a;
  a.set_run_id(12);
  a.set_attempt(3);
  a.set_model("tiny-15m");
  a.set_tp(2);
  auto has = [](const std::vector<std::string>& argv, const std::string& flag,
                const std::string& value) {
    for (size_t i = 0; i + 1 < argv.size(); ++i) {
      if (argv[i] == flag) return argv[i + 1] == value;
    }
    return false;
  };
  std::vector<std::string> rank0 = RunSupervisor::WorkerArgv(o, a, 0, "10.0.0.7", "r0.json");
  EXPECT_TRUE(has(rank0, "--metrics-listen", "10.0.0.7:0"));
  EXPECT_TRUE(has(rank0, "--run-id", "12"));
  EXPECT_TRUE(has(rank0, "--attempt", "3"));
  std::vector<std::string> rank1 = RunSupervisor::WorkerArgv(o, a, 1, "10.0.0.7", "r1.json");
  EXPECT_EQ(std::find(rank1.begin(), rank1.end(), "--metrics-listen"), rank1.end())
      << "only rank 0 drives the engine";
}

}  // namespace
}  // namespace breakeven::node

namespace breakeven::node {
namespace {

TEST(RunSupervisor, WorkersSeeTheDeviceTheAgentMeantNotThePhysicalOrdinal) {
  // No list in the agent's environment: ordinals are physical indexes.
  EXPECT_EQ(RunSupervisor::VisibleDevice(1, ""), "1");
  // An agent started on GPUs 2 and 3 (a Slurm allocation, say) knows them as 0 and 1.
  EXPECT_EQ(RunSupervisor::VisibleDevice(0, "2,3"), "2");
  EXPECT_EQ(RunSupervisor::VisibleDevice(1, "2,3"), "3");
  EXPECT_EQ(RunSupervisor::VisibleDevice(0, "GPU-8c1f,GPU-77aa"), "GPU-8c1f");
  EXPECT_EQ(RunSupervisor::VisibleDevice(1, "5,,6"), "6");
}

}  // namespace
}  // namespace breakeven::node
