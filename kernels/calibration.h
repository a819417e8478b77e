// Calibration: the two ceilings a device is measured against, and the GEMM sweep that shows
// which one a matrix product runs into.
//
// Every decode step reads the weights once and does 2 FLOPs per weight per sequence in the
// batch, so a step is bound by memory (copy_bytes_per_s) until the batch reaches the machine
// balance, matmul_flops_per_s / bytes per weight, and by arithmetic after. MBU and MFU are
// fractions of these two figures, measured on the machine rather than taken from a data sheet.
//
// All functions here are blocking and use the whole device: run them when nothing else does
// (a node agent at start, a CLI command). They are safe to call from any thread, one at a time
// per device.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace breakeven::kernels {

struct Calibration {
  std::string device;  // "NVIDIA H200", "AMD EPYC 9454P 48-Core Processor"
  // (bytes read + bytes written) / s of a large device-to-device copy, as STREAM's Copy counts.
  double copy_bytes_per_s = 0;
  // 2 n^3 / s of a large square matrix product: bf16 inputs with fp32 accumulation through cuBLAS
  // on CUDA devices, fp32 sgemm through OpenBLAS on the CPU.
  double matmul_flops_per_s = 0;
  std::string matmul_dtype;  // "bf16" (CUDA) or "fp32" (CPU)
  double seconds_spent = 0;  // wall time of the whole calibration, allocation included
};

struct CalibrationOptions {
  // Roughly how long the CPU may take, in seconds: it picks its matrix size and repeats to fit.
  // CUDA devices ignore it: their fixed sizes take milliseconds a run on a data-centre GPU, and
  // most of their time goes to creating the context and the cuBLAS handle.
  double budget_s = 1.0;
  // Timed runs per figure after the warm-up; the median is reported.
  int repeats = 5;
  // CPU threads for the copy and the sgemm; 0: every core this process may run on.
  int threads = 0;
  // Bytes of the copy's source (the destination is as large). 0: the CPU copies four times its
  // last-level cache (64 MiB to 1 GiB), less where faulting the pages in would take more than a
  // quarter of budget_s (some virtual machines fault at well under 1 GB/s); a CUDA device copies
  // 2 GiB (at most a quarter of its free memory).
  uint64_t copy_bytes = 0;
  // Side of the square product. 0: the CPU doubles from 256 while the budget allows (at most
  // 4096); a CUDA device uses 8192.
  int64_t matmul_n = 0;
};

// The CPU: a copy split over `threads` threads, and OpenBLAS sgemm.
Result<Calibration> CalibrateCpu(const CalibrationOptions& options);

// CUDA device `device` (an ordinal): cudaMemcpyAsync device to device, and cublasGemmEx with
// bf16 inputs and outputs and CUBLAS_COMPUTE_32F, on random data, timed with CUDA events.
// Errors name the CUDA or cuBLAS call that failed; FailedPrecondition when no device can be used
// (no driver, no such device) or the build has no CUDA backend.
Result<Calibration> CalibrateCuda(int device, const CalibrationOptions& options);

// One column count of a GEMM sweep.
struct GemmPoint {
  int64_t n = 0;
  double seconds = 0;        // median over the repeats
  double flops_per_s = 0;    // 2 m n k / seconds
  double time_vs_first = 0;  // seconds / the first point's seconds
};

// Times W (m x k) times X (k x n) for each n in `ns`, in that order: one untimed run, then the
// median of `repeats`. W is read once per product, so for small n the time is that of reading W
// and hardly grows with n; it grows in proportion to n once the arithmetic intensity (about n
// FLOPs per byte of bf16 W, n / 2 of fp32) passes the machine balance.
//
// Laid out as a linear layer: W is row-major (out features m, in features k), X holds n
// row-major activations of k features, and the product is X W^T, (n, m).
//
// CPU: fp32 through OpenBLAS sgemm with its default thread count.
Result<std::vector<GemmPoint>> GemmSweepCpu(int64_t m, int64_t k, const std::vector<int64_t>& ns,
                                            int repeats);
// CUDA device `device`: bf16 W and X, fp32 accumulation, bf16 out, through cublasGemmEx. A W
// smaller than the L2 cache is served from it after the first run; the default 8192 x 8192
// (128 MiB) is not.
Result<std::vector<GemmPoint>> GemmSweepCuda(int device, int64_t m, int64_t k,
                                             const std::vector<int64_t>& ns, int repeats);

// The checks both sweeps start with: m, k and every n positive, ns not empty, repeats >= 1.
Status CheckGemmSweep(int64_t m, int64_t k, const std::vector<int64_t>& ns, int repeats);

}  // namespace breakeven::kernels
