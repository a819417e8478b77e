// CPU calibration and GEMM sweep; the CUDA ones are in cuda/calibration.cu (stubs below when the
// build has no CUDA backend).
//
// The copy is STREAM's Copy: memcpy of a buffer several times the last-level cache, split into
// one contiguous slice per thread, so every byte comes from and goes to DRAM. Pages are touched
// before timing, so page faults are not measured (but they are what the budget mostly buys). The
// matrix rate is OpenBLAS sgemm on a square product large enough to leave its packing overhead
// behind.
#include "kernels/calibration.h"

#include <cblas.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>

#include "kernels/device.h"

namespace breakeven::kernels {

namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t h = v.size() / 2;
  return v.size() % 2 == 1 ? v[h] : (v[h - 1] + v[h]) / 2;
}

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
using FloatBuffer = std::unique_ptr<float[], FreeDeleter>;

// 64-byte aligned, uninitialised; `what` names the buffer in the error.
Result<FloatBuffer> AllocateFloats(size_t count, const char* what) {
  const size_t bytes = (count * sizeof(float) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, std::max<size_t>(bytes, 64));
  if (p == nullptr) {
    return ResourceExhausted("{}: cannot allocate {:.1f} MiB", what,
                             static_cast<double>(bytes) / (1 << 20));
  }
  return FloatBuffer(static_cast<float*>(p));
}

// Values in [-1, 1) from a hash of the index: random enough that nothing is all zeros, and the
// same on every run. Touches every page in parallel, as the timed loops will.
void FillRandom(float* data, size_t count, int threads, uint64_t seed) {
#pragma omp parallel for num_threads(threads) schedule(static)
  for (size_t i = 0; i < count; ++i) {
    uint64_t z = (seed + i) * 0x9E3779B97F4A7C15ull;  // splitmix64's finaliser
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    data[i] = static_cast<float>(z >> 40) * (2.0f / 16777216.0f) - 1.0f;
  }
}

// Number of CPUs in a sysfs list such as "0-7,16-23".
int CountCpuList(const std::string& list) {
  int count = 0;
  size_t start = 0;
  while (start < list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    std::string part = list.substr(start, end - start);
    size_t dash = part.find('-');
    int lo = std::atoi(part.c_str());
    int hi = dash == std::string::npos ? lo : std::atoi(part.c_str() + dash + 1);
    count += std::max(0, hi - lo + 1);
    start = end + 1;
  }
  return count;
}

// The last-level cache of the whole machine: the size of the highest-level cache cpu0 sees
// times how many such caches there are (an EPYC has one L3 per core complex). 32 MiB if sysfs
// does not say.
uint64_t LastLevelCacheBytes() {
  int best_level = 0;
  uint64_t best_size = 0;
  int sharing = 1;
  for (int i = 0; i < 16; ++i) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
    std::ifstream level_file(dir + "level"), size_file(dir + "size"),
        shared_file(dir + "shared_cpu_list");
    int level = 0;
    std::string size, shared;
    if (!(level_file >> level) || !(size_file >> size)) break;
    uint64_t bytes = std::strtoull(size.c_str(), nullptr, 10);
    if (!size.empty() && size.back() == 'K') bytes <<= 10;
    if (!size.empty() && size.back() == 'M') bytes <<= 20;
    if (level >= best_level && bytes > 0) {
      best_level = level;
      best_size = bytes;
      sharing = (shared_file >> shared) ? std::max(1, CountCpuList(shared)) : 1;
    }
  }
  if (best_size == 0) return uint64_t{32} << 20;
  const long cpus = sysconf(_SC_NPROCESSORS_CONF);
  const uint64_t instances = cpus > sharing ? static_cast<uint64_t>(cpus / sharing) : 1;
  return best_size * instances;
}

// OpenBLAS keeps one process-wide thread count; this sets it for a scope and puts it back.
class BlasThreads {
 public:
  explicit BlasThreads(int threads) : saved_(openblas_get_num_threads()) {
    if (threads > 0) openblas_set_num_threads(threads);
  }
  ~BlasThreads() { openblas_set_num_threads(saved_); }
  BlasThreads(const BlasThreads&) = delete;
  BlasThreads& operator=(const BlasThreads&) = delete;

 private:
  int saved_;
};

// (read + write bytes) / s, median of the timed copies, over up to `max_bytes` of source.
//
// Pages are faulted in (a non-zero byte pattern written to both buffers) 64 MiB at a time.
// Faulting is what costs: some virtual machines manage well under 1 GB/s of it, so with
// `fit_budget` the buffers stop growing once a quarter of the budget is spent on it, and the
// copy covers what was touched by then (at least 64 MiB).
Result<double> MeasureCopy(uint64_t max_bytes, bool fit_budget, int threads, int repeats,
                           double budget_s) {
  constexpr size_t kStep = size_t{64} << 20;
  const size_t max_count = max_bytes / sizeof(float);
  BE_ASSIGN_OR_RETURN(FloatBuffer src, AllocateFloats(max_count, "copy source"));
  BE_ASSIGN_OR_RETURN(FloatBuffer dst, AllocateFloats(max_count, "copy destination"));
  const Clock::time_point t0 = Clock::now();
  size_t count = 0;
  while (count < max_count) {
    const size_t step = std::min(kStep / sizeof(float), max_count - count);
    char* s = reinterpret_cast<char*>(src.get() + count);
    char* d = reinterpret_cast<char*>(dst.get() + count);
#pragma omp parallel num_threads(threads)
    {
      const size_t parts = static_cast<size_t>(omp_get_num_threads());
      const size_t t = static_cast<size_t>(omp_get_thread_num());
      const size_t bytes = step * sizeof(float);
      const size_t begin = bytes * t / parts, end = bytes * (t + 1) / parts;
      std::memset(s + begin, 0x5a, end - begin);
      std::memset(d + begin, 0xa5, end - begin);
    }
    count += step;
    if (fit_budget && SecondsSince(t0) > budget_s / 4) break;
  }
  auto copy_once = [&] {
    const Clock::time_point t1 = Clock::now();
#pragma omp parallel num_threads(threads)
    {
      const size_t parts = static_cast<size_t>(omp_get_num_threads());
      const size_t t = static_cast<size_t>(omp_get_thread_num());
      const size_t begin = count * t / parts, end = count * (t + 1) / parts;
      std::memcpy(dst.get() + begin, src.get() + begin, (end - begin) * sizeof(float));
    }
    return SecondsSince(t1);
  };
  const double warm = copy_once();
  // At least one timed copy; no more than a quarter of the budget's worth.
  const int n = std::clamp(static_cast<int>(budget_s / 4 / std::max(warm, 1e-6)), 1, repeats);
  std::vector<double> seconds;
  for (int r = 0; r < n; ++r) seconds.push_back(copy_once());
  if (std::memcmp(dst.get() + count - 1, src.get() + count - 1, sizeof(float)) != 0) {
    return Internal("CPU copy: the destination's last bytes differ from the source's");
  }
  return 2.0 * static_cast<double>(count * sizeof(float)) / Median(seconds);
}

// FLOP/s of an n x n x n sgemm. With matmul_n == 0 the size doubles from 256 while the next
// size's warm-up and three timed products would fit half the budget (each doubling is 8x the
// work); the products timed are as many as fit that half, between 1 and `repeats`.
Result<double> MeasureSgemm(int64_t matmul_n, int threads, int repeats, double budget_s) {
  constexpr int64_t kMaxN = 4096;
  BlasThreads blas_threads(threads);
  FloatBuffer a, b, c;
  int64_t n = 0;
  auto resize = [&](int64_t side) -> Status {
    const size_t count = static_cast<size_t>(side * side);
    BE_ASSIGN_OR_RETURN(a, AllocateFloats(count, "sgemm A"));
    BE_ASSIGN_OR_RETURN(b, AllocateFloats(count, "sgemm B"));
    BE_ASSIGN_OR_RETURN(c, AllocateFloats(count, "sgemm C"));
    FillRandom(a.get(), count, threads, 3);
    FillRandom(b.get(), count, threads, 4);
    FillRandom(c.get(), count, threads, 5);
    n = side;
    return Status::Ok();
  };
  auto gemm_once = [&] {
    const Clock::time_point t0 = Clock::now();
    const int s = static_cast<int>(n);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s, s, s, 1.0f, a.get(), s, b.get(), s,
                0.0f, c.get(), s);
    return SecondsSince(t0);
  };
  const double share = budget_s / 2;
  BE_RETURN_IF_ERROR(resize(matmul_n > 0 ? matmul_n : 256));
  double last = gemm_once();  // the warm-up of the size finally chosen
  while (matmul_n == 0 && n * 2 <= kMaxN && last * 8 * 4 < share) {
    BE_RETURN_IF_ERROR(resize(n * 2));
    last = gemm_once();
  }
  const int timed = std::clamp(static_cast<int>(share / std::max(last, 1e-6)), 1, repeats);
  std::vector<double> seconds;
  for (int r = 0; r < timed; ++r) seconds.push_back(gemm_once());
  const double nd = static_cast<double>(n);
  return 2.0 * nd * nd * nd / Median(seconds);
}

}  // namespace

Status CheckGemmSweep(int64_t m, int64_t k, const std::vector<int64_t>& ns, int repeats) {
  if (m <= 0 || k <= 0)
    return InvalidArgument("GEMM sweep: m and k must be positive, got {} x {}", m, k);
  if (ns.empty()) return InvalidArgument("GEMM sweep: no column counts to time");
  for (int64_t n : ns) {
    if (n <= 0) return InvalidArgument("GEMM sweep: column count {} is not positive", n);
  }
  if (repeats < 1)
    return InvalidArgument("GEMM sweep: repeats must be at least 1, got {}", repeats);
  return Status::Ok();
}

Result<Calibration> CalibrateCpu(const CalibrationOptions& options) {
  const Clock::time_point t0 = Clock::now();
  const DeviceInfo cpu = DescribeCpu();
  const int threads = options.threads > 0 ? options.threads : omp_get_max_threads();
  const int repeats = std::max(1, options.repeats);
  const double budget_s = options.budget_s > 0 ? options.budget_s : 1.0;

  uint64_t copy_bytes = options.copy_bytes;
  if (copy_bytes == 0) {
    copy_bytes =
        std::clamp<uint64_t>(4 * LastLevelCacheBytes(), uint64_t{64} << 20, uint64_t{1} << 30);
    // Both buffers within an eighth of the memory this process may use.
    if (cpu.memory_bytes > 0) copy_bytes = std::min<uint64_t>(copy_bytes, cpu.memory_bytes / 16);
  }
  Calibration c;
  c.device = cpu.name;
  c.matmul_dtype = "fp32";
  Result<double> copy =
      MeasureCopy(copy_bytes, /*fit_budget=*/options.copy_bytes == 0, threads, repeats, budget_s);
  if (!copy.ok()) return copy.status().WithContext("CPU calibration");
  c.copy_bytes_per_s = *copy;
  Result<double> flops = MeasureSgemm(options.matmul_n, threads, repeats, budget_s);
  if (!flops.ok()) return flops.status().WithContext("CPU calibration");
  c.matmul_flops_per_s = *flops;
  c.seconds_spent = SecondsSince(t0);
  return c;
}

Result<std::vector<GemmPoint>> GemmSweepCpu(int64_t m, int64_t k, const std::vector<int64_t>& ns,
                                            int repeats) {
  BE_RETURN_IF_ERROR(CheckGemmSweep(m, k, ns, repeats));
  const int64_t n_max = *std::max_element(ns.begin(), ns.end());
  const int threads = omp_get_max_threads();
  BE_ASSIGN_OR_RETURN(FloatBuffer w, AllocateFloats(static_cast<size_t>(m * k), "GEMM sweep W"));
  BE_ASSIGN_OR_RETURN(FloatBuffer x,
                      AllocateFloats(static_cast<size_t>(n_max * k), "GEMM sweep X"));
  BE_ASSIGN_OR_RETURN(FloatBuffer y,
                      AllocateFloats(static_cast<size_t>(n_max * m), "GEMM sweep Y"));
  FillRandom(w.get(), static_cast<size_t>(m * k), threads, 5);
  FillRandom(x.get(), static_cast<size_t>(n_max * k), threads, 6);
  FillRandom(y.get(), static_cast<size_t>(n_max * m), threads, 7);

  std::vector<GemmPoint> points;
  for (int64_t n : ns) {
    // y (n, m) = x (n, k) * w (m, k)^T
    auto gemm_once = [&] {
      const Clock::time_point t0 = Clock::now();
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n), static_cast<int>(m),
                  static_cast<int>(k), 1.0f, x.get(), static_cast<int>(k), w.get(),
                  static_cast<int>(k), 0.0f, y.get(), static_cast<int>(m));
      return SecondsSince(t0);
    };
    gemm_once();
    std::vector<double> seconds;
    for (int r = 0; r < repeats; ++r) seconds.push_back(gemm_once());
    GemmPoint p;
    p.n = n;
    p.seconds = Median(seconds);
    p.flops_per_s =
        2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) / p.seconds;
    p.time_vs_first = points.empty() ? 1.0 : p.seconds / points.front().seconds;
    points.push_back(p);
  }
  return points;
}

#ifndef BREAKEVEN_WITH_CUDA
Result<Calibration> CalibrateCuda(int device, const CalibrationOptions& options) {
  return FailedPrecondition("CUDA device {}: built without CUDA", device);
}

Result<std::vector<GemmPoint>> GemmSweepCuda(int device, int64_t m, int64_t k,
                                             const std::vector<int64_t>& ns, int repeats) {
  return FailedPrecondition("CUDA device {}: built without CUDA", device);
}
#endif

}  // namespace breakeven::kernels
