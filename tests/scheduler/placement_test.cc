// Gang placement: fits, does not fit (and why), busy devices, multi-host only when allowed.
#include "scheduler/placement.h"

#include <gtest/gtest.h>

namespace breakeven::scheduler {
namespace {

constexpr int64_t kGiB = int64_t{1} << 30;

v1::Device Cpu(int64_t mem_gib, uint32_t cores = 8) {
  v1::Device d;
  d.set_kind(v1::DEVICE_KIND_CPU);
  d.set_name("Test CPU");
  d.set_memory_bytes(static_cast<uint64_t>(mem_gib * kGiB));
  d.set_compute_units(cores);
  d.set_bandwidth_gb_s(20);
  d.set_matmul_tflops(0.5);
  return d;
}

v1::Device Gpu(uint32_t index, int64_t mem_gib, const std::string& name = "NVIDIA H100 80GB HBM3") {
  v1::Device d;
  d.set_kind(v1::DEVICE_KIND_CUDA);
  d.set_index(index);
  d.set_name(name);
  d.set_memory_bytes(static_cast<uint64_t>(mem_gib * kGiB));
  d.set_bandwidth_gb_s(3000);
  return d;
}

NodeCapacity Node(uint64_t id, const std::string& name, std::vector<v1::Device> devices) {
  NodeCapacity n;
  n.id = id;
  n.name = name;
  n.schedulable = true;
  n.devices = std::move(devices);
  return n;
}

PlacementRequest Want(const std::string& type, int tp, double gib_per_rank, bool multi = false) {
  PlacementRequest r;
  r.device_type = type;
  r.tp = tp;
  r.bytes_per_rank = static_cast<int64_t>(gib_per_rank * static_cast<double>(kGiB));
  r.allow_multi_host = multi;
  return r;
}

TEST(PlacementTest, CpuRunTakesOneNodeWithEveryRank) {
  auto res = Place(Want("cpu", 2, 1), {Node(1, "a", {Cpu(16)}), Node(2, "b", {Cpu(16)})});
  ASSERT_TRUE(res.placement) << res.reason;
  ASSERT_EQ(res.placement->shares.size(), 1u);
  const NodeShare& s = res.placement->shares[0];
  EXPECT_EQ(s.ranks, (std::vector<uint32_t>{0, 1}));
  EXPECT_EQ(s.devices, (std::vector<uint32_t>{0, 0})) << "both ranks share the node's CPU";
  EXPECT_EQ(res.placement->devices(), 1) << "a CPU node counts as one device";
  EXPECT_DOUBLE_EQ(s.bandwidth_gb_s, 20) << "the CPU's bandwidth counts once, not per rank";
}

TEST(PlacementTest, BusyAndUnschedulableNodesAreSkipped) {
  NodeCapacity busy = Node(1, "a", {Cpu(16)});
  busy.busy_devices = {0};
  NodeCapacity down = Node(2, "b", {Cpu(16)});
  down.schedulable = false;
  auto res = Place(Want("cpu", 1, 1), {busy, down, Node(3, "c", {Cpu(16)})});
  ASSERT_TRUE(res.placement) << res.reason;
  EXPECT_EQ(res.placement->shares[0].node, "c");

  auto none = Place(Want("cpu", 1, 1), {busy, down});
  EXPECT_FALSE(none.placement);
  EXPECT_FALSE(none.never_fits) << "it fits once a device frees up";
  EXPECT_NE(none.reason.find("waiting"), std::string::npos) << none.reason;
}

TEST(PlacementTest, TooLittleMemoryNeverFitsAndSaysWhy) {
  auto res = Place(Want("H100", 1, 120), {Node(1, "g", {Gpu(0, 80), Gpu(1, 80)})});
  EXPECT_FALSE(res.placement);
  EXPECT_TRUE(res.never_fits);
  EXPECT_NE(res.reason.find("120.00 GiB per rank"), std::string::npos) << res.reason;
  EXPECT_NE(res.reason.find("80.00 GiB"), std::string::npos) << res.reason;
}

TEST(PlacementTest, CpuNodeMustHoldEveryRankPlacedOnIt) {
  // 3 GiB per rank: a 4 GiB node holds one rank, so tp 2 needs two hosts.
  std::vector<NodeCapacity> nodes = {Node(1, "a", {Cpu(4)}), Node(2, "b", {Cpu(4)})};
  auto single = Place(Want("cpu", 2, 3), nodes);
  EXPECT_FALSE(single.placement);
  EXPECT_TRUE(single.never_fits);
  EXPECT_NE(single.reason.find("allow_multi_host"), std::string::npos) << single.reason;

  auto multi = Place(Want("cpu", 2, 3, /*multi=*/true), nodes);
  ASSERT_TRUE(multi.placement) << multi.reason;
  ASSERT_EQ(multi.placement->shares.size(), 2u);
  EXPECT_EQ(multi.placement->shares[0].ranks, (std::vector<uint32_t>{0}));
  EXPECT_EQ(multi.placement->shares[1].ranks, (std::vector<uint32_t>{1}));
  EXPECT_EQ(multi.placement->devices(), 2);
}

TEST(PlacementTest, OneHostIsPreferredEvenWhenSpanningIsAllowed) {
  std::vector<NodeCapacity> nodes = {
      Node(1, "small", {Gpu(0, 80), Gpu(1, 80)}),
      Node(2, "big", {Gpu(0, 80), Gpu(1, 80), Gpu(2, 80), Gpu(3, 80)})};
  auto res = Place(Want("H100", 4, 20, /*multi=*/true), nodes);
  ASSERT_TRUE(res.placement) << res.reason;
  ASSERT_EQ(res.placement->shares.size(), 1u);
  EXPECT_EQ(res.placement->shares[0].node, "big");
  EXPECT_EQ(res.placement->shares[0].devices, (std::vector<uint32_t>{0, 1, 2, 3}));
}

TEST(PlacementTest, GpuRanksSpanHostsOnlyWhenAllowed) {
  NodeCapacity a = Node(1, "a", {Gpu(0, 80), Gpu(1, 80), Gpu(2, 80), Gpu(3, 80)});
  a.busy_devices = {0, 1};
  NodeCapacity b = Node(2, "b", {Gpu(0, 80), Gpu(1, 80), Gpu(2, 80), Gpu(3, 80)});
  b.busy_devices = {3};

  auto refused = Place(Want("H100", 4, 20), {a, b});
  EXPECT_FALSE(refused.placement) << "3 free on b, 2 on a: no single host has 4";
  EXPECT_FALSE(refused.never_fits) << "an idle host would hold all 4";

  auto spanned = Place(Want("H100", 4, 20, /*multi=*/true), {a, b});
  ASSERT_TRUE(spanned.placement) << spanned.reason;
  ASSERT_EQ(spanned.placement->shares.size(), 2u);
  // The host with more free devices first, ranks split as evenly as capacity allows.
  EXPECT_EQ(spanned.placement->shares[0].node, "b");
  EXPECT_EQ(spanned.placement->shares[0].ranks, (std::vector<uint32_t>{0, 1}));
  EXPECT_EQ(spanned.placement->shares[0].devices, (std::vector<uint32_t>{0, 1}));
  EXPECT_EQ(spanned.placement->shares[1].node, "a");
  EXPECT_EQ(spanned.placement->shares[1].ranks, (std::vector<uint32_t>{2, 3}));
  EXPECT_EQ(spanned.placement->shares[1].devices, (std::vector<uint32_t>{2, 3}));
  EXPECT_EQ(spanned.placement->devices(), 4);
  EXPECT_DOUBLE_EQ(spanned.placement->shares[0].bandwidth_gb_s, 6000);
}

TEST(PlacementTest, DeviceTypeMatchesNamesAndReportsWhatExists) {
  std::vector<NodeCapacity> nodes = {
      Node(1, "g", {Gpu(0, 80), Gpu(1, 40, "NVIDIA A100-SXM4-40GB")}), Node(2, "c", {Cpu(64)})};
  auto a100 = Place(Want("a100", 1, 10), nodes);
  ASSERT_TRUE(a100.placement) << a100.reason;
  EXPECT_EQ(a100.placement->shares[0].devices, (std::vector<uint32_t>{1}));

  auto b200 = Place(Want("B200", 1, 10), nodes);
  EXPECT_FALSE(b200.placement);
  EXPECT_TRUE(b200.never_fits);
  EXPECT_NE(b200.reason.find("no node has a 'B200' device"), std::string::npos) << b200.reason;
  EXPECT_NE(b200.reason.find("cpu"), std::string::npos) << "lists what nodes offer";

  EXPECT_FALSE(DeviceMatches(nodes[1].devices[0], "H100"));
  EXPECT_TRUE(DeviceMatches(nodes[1].devices[0], "CPU"));
  EXPECT_FALSE(DeviceMatches(nodes[0].devices[0], "cpu"));
}

TEST(PlacementTest, ClusterTooSmallEvenAcrossHosts) {
  auto res = Place(Want("H100", 8, 20, /*multi=*/true),
                   {Node(1, "a", {Gpu(0, 80), Gpu(1, 80)}), Node(2, "b", {Gpu(0, 80)})});
  EXPECT_FALSE(res.placement);
  EXPECT_TRUE(res.never_fits);
  EXPECT_NE(res.reason.find("whole cluster can hold 3"), std::string::npos) << res.reason;
}

TEST(PlacementTest, UnknownSizeSkipsTheMemoryCheck) {
  auto res = Place(Want("cpu", 4, 0), {Node(1, "a", {Cpu(1)})});
  ASSERT_TRUE(res.placement) << res.reason;
  EXPECT_EQ(res.placement->shares[0].ranks.size(), 4u);
}

}  // namespace
}  // namespace breakeven::scheduler
