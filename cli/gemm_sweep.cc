// `breakeven gemm-sweep`: the time of one weight matrix times N columns, for each N.
//
// A decode step multiplies every weight matrix by one column per sequence in the batch. Reading
// W dominates until the arithmetic intensity (2 m n k FLOPs over the bytes of W, so about n
// FLOPs per byte of bf16) reaches the device's FLOP/s over its bytes/s; until then a batch of 64
// costs about what a batch of 1 does. The table shows where that stops on this machine.
#include <fmt/format.h>

#include <charconv>
#include <climits>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/table.h"
#include "kernels/calibration.h"
#include "kernels/device.h"

namespace breakeven::cli {

namespace {

// "1,2,4" -> {1, 2, 4}; spaces around the numbers are allowed.
Result<std::vector<int64_t>> ParseColumnCounts(const std::string& text) {
  std::vector<int64_t> ns;
  size_t start = 0;
  for (;;) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(start, end - start);
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    int64_t n = 0;
    auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), n);
    if (item.empty() || ec != std::errc() || ptr != item.data() + item.size() || n <= 0 ||
        n > INT32_MAX) {
      return InvalidArgument("--n: '{}' is not a positive column count (expected e.g. 1,8,64)",
                             item);
    }
    ns.push_back(n);
    if (end == text.size()) break;
    start = end + 1;
  }
  return ns;
}

std::string DeviceName(const GemmSweepOptions& o) {
  if (o.backend == "cpu") return kernels::DescribeCpu().name;
  for (const kernels::DeviceInfo& d : kernels::DiscoverDevices().devices) {
    if (d.kind == kernels::DeviceKind::kCuda && static_cast<int>(d.index) == o.device) {
      return d.name;
    }
  }
  return fmt::format("CUDA device {}", o.device);
}

// "64" for whole ratios, "1.5" otherwise.
std::string Ratio(double r) {
  const auto whole = static_cast<int64_t>(r);
  return r == static_cast<double>(whole) ? fmt::format("{}", whole) : fmt::format("{:.1f}", r);
}

}  // namespace

Result<std::vector<int64_t>> CheckGemmSweepOptions(const GemmSweepOptions& o) {
  if (o.backend != "cpu" && o.backend != "cuda") {
    return InvalidArgument("--backend: '{}' is not a backend; use cpu or cuda", o.backend);
  }
  if (o.device < 0) return InvalidArgument("--device: {} is not a CUDA ordinal", o.device);
  if (o.m <= 0 || o.m > INT32_MAX) {
    return InvalidArgument("--m: {} rows; expected 1 to {}", o.m, INT32_MAX);
  }
  if (o.k <= 0 || o.k > INT32_MAX) {
    return InvalidArgument("--k: {} columns; expected 1 to {}", o.k, INT32_MAX);
  }
  if (o.repeats < 1) return InvalidArgument("--repeats: {}; at least 1 run is timed", o.repeats);
  return ParseColumnCounts(o.n);
}

std::string GemmSweepVerdict(const std::vector<kernels::GemmPoint>& points) {
  if (points.size() < 2) return "";
  const kernels::GemmPoint& first = points.front();
  // The largest n still nearly free; on CPUs, where OpenBLAS runs n = 1 as a faster gemv, the
  // largest within 3x.
  const kernels::GemmPoint* quoted = nullptr;
  for (double within : {1.5, 3.0}) {
    for (const kernels::GemmPoint& p : points) {
      if (p.n > first.n && p.time_vs_first <= within && (quoted == nullptr || p.n > quoted->n)) {
        quoted = &p;
      }
    }
    if (quoted != nullptr) break;
  }
  if (quoted == nullptr) quoted = &points[1];
  return fmt::format("N={} costs {:.2f}x the time of N={} for {}x the work.", quoted->n,
                     quoted->time_vs_first, first.n,
                     Ratio(static_cast<double>(quoted->n) / static_cast<double>(first.n)));
}

std::string GemmSweepTable(const std::vector<kernels::GemmPoint>& points, bool tflops) {
  const std::string vs =
      points.empty() ? "TIME_VS_FIRST" : fmt::format("TIME_VS_N={}", points[0].n);
  Table t({"N", "TIME_US", tflops ? "TFLOP/S" : "GFLOP/S", vs});
  for (size_t i = 0; i < 4; ++i) t.AlignRight(i);
  for (const kernels::GemmPoint& p : points) {
    t.AddRow({fmt::format("{}", p.n), fmt::format("{:.1f}", p.seconds * 1e6),
              fmt::format("{:.1f}", p.flops_per_s / (tflops ? 1e12 : 1e9)),
              fmt::format("{:.2f}x", p.time_vs_first)});
  }
  std::string out = t.Render();
  if (std::string verdict = GemmSweepVerdict(points); !verdict.empty())
    out += "\n" + verdict + "\n";
  return out;
}

int CmdGemmSweep(const GemmSweepOptions& o, Output output) {
  Result<std::vector<int64_t>> ns = CheckGemmSweepOptions(o);
  if (!ns.ok()) {
    fmt::print(stderr, "breakeven gemm-sweep: {}\n", ns.status().message());
    return 1;
  }
  const bool cuda = o.backend == "cuda";
  Result<std::vector<kernels::GemmPoint>> points =
      cuda ? kernels::GemmSweepCuda(o.device, o.m, o.k, *ns, o.repeats)
           : kernels::GemmSweepCpu(o.m, o.k, *ns, o.repeats);
  if (!points.ok()) {
    fmt::print(stderr, "breakeven gemm-sweep: {}\n", points.status().message());
    return 1;
  }
  const std::string device = DeviceName(o);
  const char* dtype = cuda ? "bf16" : "fp32";
  if (output == Output::kJson) {
    nlohmann::ordered_json rows = nlohmann::ordered_json::array();
    for (const kernels::GemmPoint& p : *points) {
      rows.push_back({{"n", p.n},
                      {"seconds", p.seconds},
                      {"time_us", p.seconds * 1e6},  // as the table shows it
                      {"flops_per_s", p.flops_per_s},
                      {"time_vs_first", p.time_vs_first}});
    }
    nlohmann::ordered_json j = {
        {"backend", o.backend}, {"device", device}, {"dtype", dtype}, {"m", o.m}, {"k", o.k},
        {"repeats", o.repeats}, {"points", rows}};
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  fmt::print("W ({} x {}, {}) times X ({} x N) on {} through {}, median of {} run{}\n\n", o.m, o.k,
             dtype, o.k, device, cuda ? "cuBLAS (fp32 accumulate)" : "OpenBLAS sgemm", o.repeats,
             o.repeats == 1 ? "" : "s");
  std::cout << GemmSweepTable(*points, cuda);
  return 0;
}

}  // namespace breakeven::cli
