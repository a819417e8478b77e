// The machine's own limits, measured: memory bandwidth (a large copy, as STREAM's Copy counts
// it: bytes read + bytes written) and the matrix-multiply rate OpenBLAS reaches on given
// shapes. Benchmarks quote their figures as fractions of these, measured in the same run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace breakeven::bench {

struct Bandwidth {
  // (read + write bytes) / time of a large memcpy split over threads, as STREAM's Copy counts.
  double copy_gb_per_s = 0;
  // Bytes of weights / time of a matrix x vector product through the CPU backend over a matrix
  // of the same size: how fast a decode step can possibly read its weights. A read-only stream
  // moves more bytes per second than half of a copy does, so this is the tighter bound.
  double matvec_gb_per_s = 0;
};

// Medians over `repeats` runs on buffers of `bytes` each.
Bandwidth MeasureBandwidth(size_t bytes, int threads, int repeats);

struct GemmShape {
  int64_t m, n, k;  // y (m, n) = x (m, k) * w (n, k)^T
};

// FLOP/s OpenBLAS sgemm reaches on these shapes, all run back to back, using `threads` threads:
// total FLOPs / total time, median over `repeats`.
double MeasureSgemmRate(const std::vector<GemmShape>& shapes, int threads, int repeats);

}  // namespace breakeven::bench
