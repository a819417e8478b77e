// CUDA calibration and GEMM sweep.
//
// Every figure is timed on one stream: untimed warm-up runs first (they load cuBLAS's kernels and
// settle the clocks), then each timed run between its own pair of CUDA events, all enqueued back
// to back and synchronised once, and the median is reported. The copy is cudaMemcpyAsync device
// to device, counted as STREAM's Copy counts (bytes read + bytes written). The matrix products
// are cublasGemmEx with bf16 operands, fp32 accumulation and bf16 output, as a bf16 model's
// layers run them. Operands hold random values written by a hash kernel, never zeros: zeros cost
// the tensor cores and the DRAM less power, and a device that is not held to its power limit
// looks faster than it will be under a real model.
//
// Every CUDA and cuBLAS return code is checked; a failure becomes a Status naming the call, the
// error and the line. Resources are owned by small guards, so an error on the way out frees what
// was allocated.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/calibration.h"

namespace breakeven::kernels {

namespace {

// "kernels/cuda/calibration.cu" rather than the build machine's absolute path.
const char* SourceName(const char* file) {
  std::string_view f(file);
  size_t at = f.rfind("kernels/");
  return at == std::string_view::npos ? file : file + at;
}

Status CudaError(const char* call, cudaError_t err, int line) {
  cudaGetLastError();  // reset the last error so later calls start clean (sticky ones stay)
  // No driver, no device or a wrong ordinal: the machine cannot do this, nothing broke.
  const bool unusable = err == cudaErrorInsufficientDriver || err == cudaErrorNoDevice ||
                        err == cudaErrorInvalidDevice || err == cudaErrorDevicesUnavailable;
  return Status(unusable ? StatusCode::kFailedPrecondition : StatusCode::kInternal,
                fmt::format("{}: {} ({}) at {}:{}", call, cudaGetErrorString(err),
                            cudaGetErrorName(err), SourceName(__FILE__), line));
}

Status CublasError(const char* call, cublasStatus_t st, int line) {
  return Internal("{}: {} at {}:{}", call, cublasGetStatusString(st), SourceName(__FILE__), line);
}

#define BE_CUDA_TRY(call)                                                             \
  do {                                                                                \
    cudaError_t be_cuda_err_ = (call);                                                \
    if (be_cuda_err_ != cudaSuccess) return CudaError(#call, be_cuda_err_, __LINE__); \
  } while (0)

#define BE_CUBLAS_TRY(call)                               \
  do {                                                    \
    cublasStatus_t be_cublas_st_ = (call);                \
    if (be_cublas_st_ != CUBLAS_STATUS_SUCCESS)           \
      return CublasError(#call, be_cublas_st_, __LINE__); \
  } while (0)

// ---- Guards

struct DeviceBuffer {
  void* ptr = nullptr;
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (ptr != nullptr) cudaFree(ptr);
  }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr);
  }
};

struct StreamGuard {
  cudaStream_t stream = nullptr;
  StreamGuard() = default;
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;
  ~StreamGuard() {
    if (stream != nullptr) cudaStreamDestroy(stream);
  }
};

struct CublasGuard {
  cublasHandle_t handle = nullptr;
  CublasGuard() = default;
  CublasGuard(const CublasGuard&) = delete;
  CublasGuard& operator=(const CublasGuard&) = delete;
  ~CublasGuard() {
    if (handle != nullptr) cublasDestroy(handle);
  }
};

struct EventPairs {
  std::vector<cudaEvent_t> events;
  EventPairs() = default;
  EventPairs(const EventPairs&) = delete;
  EventPairs& operator=(const EventPairs&) = delete;
  ~EventPairs() {
    for (cudaEvent_t e : events) {
      if (e != nullptr) cudaEventDestroy(e);
    }
  }
};

// ---- Kernels

__device__ uint64_t splitmix64(uint64_t x) {
  uint64_t z = x * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// out (count) = values in [-1, 1) from a hash of the index.
__global__ void fill_random_bf16_kernel(__nv_bfloat16* out, size_t count, uint64_t seed) {
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += stride) {
    const float v = static_cast<float>(splitmix64(seed + i) >> 40) * (2.0f / 16777216.0f) - 1.0f;
    out[i] = __float2bfloat16(v);
  }
}

// out (count) = random 32-bit words.
__global__ void fill_random_u32_kernel(uint32_t* out, size_t count, uint64_t seed) {
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += stride) {
    out[i] = static_cast<uint32_t>(splitmix64(seed + i) >> 32);
  }
}

// ---- Launchers and helpers

constexpr int kFillThreads = 256;
constexpr int kFillMaxBlocks = 4096;  // grid-stride loops cover the rest

int FillBlocks(size_t count) {
  return static_cast<int>(
      std::min<size_t>((count + kFillThreads - 1) / kFillThreads, kFillMaxBlocks));
}

Status FillRandomBf16(__nv_bfloat16* out, size_t count, uint64_t seed, cudaStream_t stream) {
  fill_random_bf16_kernel<<<FillBlocks(count), kFillThreads, 0, stream>>>(out, count, seed);
  BE_CUDA_TRY(cudaGetLastError());
  return Status::Ok();
}

Status FillRandomU32(uint32_t* out, size_t count, uint64_t seed, cudaStream_t stream) {
  fill_random_u32_kernel<<<FillBlocks(count), kFillThreads, 0, stream>>>(out, count, seed);
  BE_CUDA_TRY(cudaGetLastError());
  return Status::Ok();
}

Status Allocate(DeviceBuffer* buffer, size_t bytes) {
  BE_CUDA_TRY(cudaMalloc(&buffer->ptr, bytes));
  return Status::Ok();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t h = v.size() / 2;
  return v.size() % 2 == 1 ? v[h] : (v[h - 1] + v[h]) / 2;
}

// Median seconds of `repeats` runs of `enqueue` on `stream`, after `warmup` untimed runs. The
// timed runs are enqueued back to back, each between two events, and synchronised once.
template <typename Enqueue>
Result<double> TimeMedian(cudaStream_t stream, int warmup, int repeats, Enqueue enqueue) {
  for (int i = 0; i < warmup; ++i) BE_RETURN_IF_ERROR(enqueue());
  EventPairs ev;
  ev.events.resize(static_cast<size_t>(2 * repeats), nullptr);
  for (cudaEvent_t& e : ev.events) BE_CUDA_TRY(cudaEventCreate(&e));
  for (int r = 0; r < repeats; ++r) {
    BE_CUDA_TRY(cudaEventRecord(ev.events[2 * r], stream));
    BE_RETURN_IF_ERROR(enqueue());
    BE_CUDA_TRY(cudaEventRecord(ev.events[2 * r + 1], stream));
  }
  BE_CUDA_TRY(cudaEventSynchronize(ev.events.back()));
  std::vector<double> seconds;
  for (int r = 0; r < repeats; ++r) {
    float ms = 0;
    BE_CUDA_TRY(cudaEventElapsedTime(&ms, ev.events[2 * r], ev.events[2 * r + 1]));
    seconds.push_back(ms / 1e3);
  }
  return Median(seconds);
}

// Makes `device` current and returns its name.
Result<std::string> UseDevice(int device) {
  BE_CUDA_TRY(cudaSetDevice(device));
  cudaDeviceProp prop{};
  BE_CUDA_TRY(cudaGetDeviceProperties(&prop, device));
  return std::string(prop.name);
}

// (read + write bytes) / s of a device-to-device copy of `bytes` (0: 2 GiB).
Result<double> MeasureCopy(uint64_t bytes, int repeats, cudaStream_t stream) {
  size_t free_bytes = 0, total_bytes = 0;
  BE_CUDA_TRY(cudaMemGetInfo(&free_bytes, &total_bytes));
  if (bytes == 0) bytes = uint64_t{2} << 30;
  bytes = std::min<uint64_t>(bytes, free_bytes / 4) / 4096 * 4096;
  if (bytes == 0) return ResourceExhausted("copy: only {} bytes of device memory free", free_bytes);
  DeviceBuffer src, dst;
  BE_RETURN_IF_ERROR(Allocate(&src, bytes));
  BE_RETURN_IF_ERROR(Allocate(&dst, bytes));
  const size_t words = bytes / sizeof(uint32_t);
  BE_RETURN_IF_ERROR(FillRandomU32(src.as<uint32_t>(), words, 11, stream));
  BE_RETURN_IF_ERROR(FillRandomU32(dst.as<uint32_t>(), words, 12, stream));
  auto copy = [&]() -> Status {
    BE_CUDA_TRY(cudaMemcpyAsync(dst.ptr, src.ptr, bytes, cudaMemcpyDeviceToDevice, stream));
    return Status::Ok();
  };
  BE_ASSIGN_OR_RETURN(double seconds, TimeMedian(stream, 2, repeats, copy));
  // The untimed check: the last words arrived.
  uint32_t tail[2][16];
  const size_t offset = bytes - sizeof(tail[0]);
  BE_CUDA_TRY(
      cudaMemcpy(tail[0], src.as<char>() + offset, sizeof(tail[0]), cudaMemcpyDeviceToHost));
  BE_CUDA_TRY(
      cudaMemcpy(tail[1], dst.as<char>() + offset, sizeof(tail[1]), cudaMemcpyDeviceToHost));
  if (!std::equal(std::begin(tail[0]), std::end(tail[0]), std::begin(tail[1]))) {
    return Internal("copy: the destination's last bytes differ from the source's");
  }
  return 2.0 * static_cast<double>(bytes) / seconds;
}

// y (n, m) = x (n, k) * w (m, k)^T, all row-major bf16, fp32 accumulation. In cuBLAS's
// column-major terms: y^T (m x n, ld m) = op_T(w stored k x m, ld k) * x^T (k x n, ld k).
Status EnqueueLinear(cublasHandle_t handle, const __nv_bfloat16* w, const __nv_bfloat16* x,
                     __nv_bfloat16* y, int64_t m, int64_t n, int64_t k) {
  const float alpha = 1.0f, beta = 0.0f;
  BE_CUBLAS_TRY(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(m),
                             static_cast<int>(n), static_cast<int>(k), &alpha, w, CUDA_R_16BF,
                             static_cast<int>(k), x, CUDA_R_16BF, static_cast<int>(k), &beta, y,
                             CUDA_R_16BF, static_cast<int>(m), CUBLAS_COMPUTE_32F,
                             CUBLAS_GEMM_DEFAULT));
  return Status::Ok();
}

// Stream and cuBLAS handle bound to it, on the current device.
Status MakeStreamAndHandle(StreamGuard* stream, CublasGuard* cublas) {
  BE_CUDA_TRY(cudaStreamCreateWithFlags(&stream->stream, cudaStreamNonBlocking));
  BE_CUBLAS_TRY(cublasCreate(&cublas->handle));
  BE_CUBLAS_TRY(cublasSetStream(cublas->handle, stream->stream));
  return Status::Ok();
}

// Bytes of a (rows x cols) bf16 matrix, or an error when it would not fit in an int index.
Result<size_t> Bf16Bytes(int64_t rows, int64_t cols, const char* what) {
  if (rows > INT32_MAX || cols > INT32_MAX) {
    return InvalidArgument("{} ({} x {}): a side exceeds cuBLAS's int range", what, rows, cols);
  }
  return static_cast<size_t>(rows) * static_cast<size_t>(cols) * sizeof(__nv_bfloat16);
}

// 2 n^3 / s of an n x n x n bf16 product.
Result<double> MeasureMatmul(int64_t n, int repeats, cudaStream_t stream, cublasHandle_t handle) {
  BE_ASSIGN_OR_RETURN(size_t bytes, Bf16Bytes(n, n, "matmul"));
  DeviceBuffer a, b, c;
  BE_RETURN_IF_ERROR(Allocate(&a, bytes));
  BE_RETURN_IF_ERROR(Allocate(&b, bytes));
  BE_RETURN_IF_ERROR(Allocate(&c, bytes));
  const size_t count = bytes / sizeof(__nv_bfloat16);
  BE_RETURN_IF_ERROR(FillRandomBf16(a.as<__nv_bfloat16>(), count, 21, stream));
  BE_RETURN_IF_ERROR(FillRandomBf16(b.as<__nv_bfloat16>(), count, 22, stream));
  auto gemm = [&]() {
    return EnqueueLinear(handle, a.as<__nv_bfloat16>(), b.as<__nv_bfloat16>(),
                         c.as<__nv_bfloat16>(), n, n, n);
  };
  BE_ASSIGN_OR_RETURN(double seconds, TimeMedian(stream, 3, repeats, gemm));
  const double nd = static_cast<double>(n);
  return 2.0 * nd * nd * nd / seconds;
}

}  // namespace

Result<Calibration> CalibrateCuda(int device, const CalibrationOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string where = fmt::format("CUDA device {}", device);
  Result<std::string> name = UseDevice(device);
  if (!name.ok()) return name.status().WithContext(where);
  const int repeats = std::max(1, options.repeats);
  StreamGuard stream;
  CublasGuard cublas;
  if (Status s = MakeStreamAndHandle(&stream, &cublas); !s.ok()) return s.WithContext(where);

  Calibration c;
  c.device = *name;
  c.matmul_dtype = "bf16";
  Result<double> copy = MeasureCopy(options.copy_bytes, repeats, stream.stream);
  if (!copy.ok()) return copy.status().WithContext(where);
  c.copy_bytes_per_s = *copy;
  const int64_t n = options.matmul_n > 0 ? options.matmul_n : 8192;
  Result<double> flops = MeasureMatmul(n, repeats, stream.stream, cublas.handle);
  if (!flops.ok()) return flops.status().WithContext(where);
  c.matmul_flops_per_s = *flops;
  c.seconds_spent = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return c;
}

Result<std::vector<GemmPoint>> GemmSweepCuda(int device, int64_t m, int64_t k,
                                             const std::vector<int64_t>& ns, int repeats) {
  BE_RETURN_IF_ERROR(CheckGemmSweep(m, k, ns, repeats));
  const std::string where = fmt::format("GEMM sweep on CUDA device {}", device);
  auto run = [&]() -> Result<std::vector<GemmPoint>> {
    BE_ASSIGN_OR_RETURN(std::string name, UseDevice(device));
    StreamGuard stream;
    CublasGuard cublas;
    BE_RETURN_IF_ERROR(MakeStreamAndHandle(&stream, &cublas));
    const int64_t n_max = *std::max_element(ns.begin(), ns.end());
    BE_ASSIGN_OR_RETURN(size_t w_bytes, Bf16Bytes(m, k, "W"));
    BE_ASSIGN_OR_RETURN(size_t x_bytes, Bf16Bytes(n_max, k, "X"));
    BE_ASSIGN_OR_RETURN(size_t y_bytes, Bf16Bytes(n_max, m, "Y"));
    DeviceBuffer w, x, y;
    BE_RETURN_IF_ERROR(Allocate(&w, w_bytes));
    BE_RETURN_IF_ERROR(Allocate(&x, x_bytes));
    BE_RETURN_IF_ERROR(Allocate(&y, y_bytes));
    BE_RETURN_IF_ERROR(FillRandomBf16(w.as<__nv_bfloat16>(), w_bytes / 2, 31, stream.stream));
    BE_RETURN_IF_ERROR(FillRandomBf16(x.as<__nv_bfloat16>(), x_bytes / 2, 32, stream.stream));
    std::vector<GemmPoint> points;
    for (int64_t n : ns) {
      auto gemm = [&]() {
        return EnqueueLinear(cublas.handle, w.as<__nv_bfloat16>(), x.as<__nv_bfloat16>(),
                             y.as<__nv_bfloat16>(), m, n, k);
      };
      BE_ASSIGN_OR_RETURN(double seconds, TimeMedian(stream.stream, 2, repeats, gemm));
      GemmPoint p;
      p.n = n;
      p.seconds = seconds;
      p.flops_per_s =
          2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) / seconds;
      p.time_vs_first = points.empty() ? 1.0 : seconds / points.front().seconds;
      points.push_back(p);
    }
    return points;
  };
  Result<std::vector<GemmPoint>> points = run();
  if (!points.ok()) return points.status().WithContext(where);
  return points;
}

}  // namespace breakeven::kernels
