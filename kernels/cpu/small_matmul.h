#pragma once

#include <cstdint>
#include <string_view>

namespace breakeven::kernels {

// y (m, n) = x (m, k) * w (n, k)^T, fp32, for small m (decode batches): every weight row is read
// once. Leading dimensions in elements. Single-threaded; callers split n across threads.
void SmallMatMul(const float* x, int64_t ldx, const float* w, int64_t ldw, float* y, int64_t ldy,
                 int64_t m, int64_t n, int64_t k);

// The instruction set the kernel picked on this machine: "avx512f", "avx2+fma" or "scalar".
std::string_view SmallMatMulIsa();

}  // namespace breakeven::kernels
