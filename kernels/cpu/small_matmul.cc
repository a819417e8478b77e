// Matrix products with few rows: decode steps, where every sequence contributes one row.
//
// Design: y (m, n) = x (m, k) * w (n, k)^T with m small. The weights dominate the bytes, so the
// kernel streams each weight row from memory exactly once and multiplies it against all m
// activation rows while it is in registers and L1: a tile of 4 weight rows x up to 4 activation
// rows keeps 16 accumulators (zmm registers with AVX-512, halved to 2 x 4 with AVX2) and needs
// 8 loads per 16 fused multiply-adds. The activations (m x k floats) stay in L1/L2 across
// weight tiles. BLAS sgemm packs the whole weight matrix into panels first, which at m = 1..32
// costs more than the product itself; here an m-row step costs little more than a 1-row step
// until the multiply-adds, not the memory, become the limit.
//
// Single-threaded: the backend splits the weight rows over its threads. The ISA is chosen at
// run time (AVX-512F, then AVX2+FMA, then plain C++), so one binary runs everywhere.
#include "kernels/cpu/small_matmul.h"

#include <immintrin.h>

#include <algorithm>

namespace breakeven::kernels {

namespace {

// ---- AVX-512: 4 weight rows x MR activation rows.
template <int MR, int NR>
__attribute__((target("avx512f"))) void Tile512(const float* x, int64_t ldx, const float* w,
                                                int64_t ldw, float* y, int64_t ldy, int64_t k) {
  __m512 acc[NR][MR];
#pragma GCC unroll 4
  for (int r = 0; r < NR; ++r)
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) acc[r][i] = _mm512_setzero_ps();
  int64_t kk = 0;
  for (; kk + 16 <= k; kk += 16) {
    __m512 wv[NR];
#pragma GCC unroll 4
    for (int r = 0; r < NR; ++r) wv[r] = _mm512_loadu_ps(w + r * ldw + kk);
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      __m512 xv = _mm512_loadu_ps(x + i * ldx + kk);
#pragma GCC unroll 4
      for (int r = 0; r < NR; ++r) acc[r][i] = _mm512_fmadd_ps(wv[r], xv, acc[r][i]);
    }
  }
  if (kk < k) {
    const __mmask16 mask = static_cast<__mmask16>((1u << (k - kk)) - 1);
    __m512 wv[NR];
#pragma GCC unroll 4
    for (int r = 0; r < NR; ++r) wv[r] = _mm512_maskz_loadu_ps(mask, w + r * ldw + kk);
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      __m512 xv = _mm512_maskz_loadu_ps(mask, x + i * ldx + kk);
#pragma GCC unroll 4
      for (int r = 0; r < NR; ++r) acc[r][i] = _mm512_fmadd_ps(wv[r], xv, acc[r][i]);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < NR; ++r)
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) y[i * ldy + r] = _mm512_reduce_add_ps(acc[r][i]);
}

// ---- AVX2 + FMA: 2 weight rows x MR activation rows (16 ymm registers).
__attribute__((target("avx2,fma"))) inline float Sum256(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
  return _mm_cvtss_f32(lo);
}

template <int MR, int NR>
__attribute__((target("avx2,fma"))) void Tile256(const float* x, int64_t ldx, const float* w,
                                                 int64_t ldw, float* y, int64_t ldy, int64_t k) {
  __m256 acc[NR][MR];
#pragma GCC unroll 4
  for (int r = 0; r < NR; ++r)
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) acc[r][i] = _mm256_setzero_ps();
  int64_t kk = 0;
  for (; kk + 8 <= k; kk += 8) {
    __m256 wv[NR];
#pragma GCC unroll 4
    for (int r = 0; r < NR; ++r) wv[r] = _mm256_loadu_ps(w + r * ldw + kk);
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      __m256 xv = _mm256_loadu_ps(x + i * ldx + kk);
#pragma GCC unroll 4
      for (int r = 0; r < NR; ++r) acc[r][i] = _mm256_fmadd_ps(wv[r], xv, acc[r][i]);
    }
  }
  float tail[NR][MR] = {};
  for (; kk < k; ++kk) {
    for (int r = 0; r < NR; ++r)
      for (int i = 0; i < MR; ++i) tail[r][i] += w[r * ldw + kk] * x[i * ldx + kk];
  }
  for (int r = 0; r < NR; ++r)
    for (int i = 0; i < MR; ++i) y[i * ldy + r] = Sum256(acc[r][i]) + tail[r][i];
}

// ---- Portable fallback.
template <int MR, int NR>
void TileScalar(const float* x, int64_t ldx, const float* w, int64_t ldw, float* y, int64_t ldy,
                int64_t k) {
  for (int r = 0; r < NR; ++r)
    for (int i = 0; i < MR; ++i) {
      float s = 0;
      for (int64_t kk = 0; kk < k; ++kk) s += w[r * ldw + kk] * x[i * ldx + kk];
      y[i * ldy + r] = s;
    }
}

using TileFn = void (*)(const float*, int64_t, const float*, int64_t, float*, int64_t, int64_t);

struct Isa {
  int nr;          // weight rows per tile
  TileFn full[5];  // by MR (1..4), NR = nr
  TileFn edge[5];  // by MR, NR = 1 (the weight rows left over)
};

#define BE_TILES(fn, NR) \
  { nullptr, fn<1, NR>, fn<2, NR>, fn<3, NR>, fn<4, NR> }

const Isa& PickIsa() {
  static const Isa isa = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
      return Isa{4, BE_TILES(Tile512, 4), BE_TILES(Tile512, 1)};
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
      return Isa{2, BE_TILES(Tile256, 2), BE_TILES(Tile256, 1)};
    }
    return Isa{1, BE_TILES(TileScalar, 1), BE_TILES(TileScalar, 1)};
  }();
  return isa;
}

#undef BE_TILES

}  // namespace

std::string_view SmallMatMulIsa() {
  switch (PickIsa().nr) {
    case 4:
      return "avx512f";
    case 2:
      return "avx2+fma";
    default:
      return "scalar";
  }
}

void SmallMatMul(const float* x, int64_t ldx, const float* w, int64_t ldw, float* y, int64_t ldy,
                 int64_t m, int64_t n, int64_t k) {
  const Isa& isa = PickIsa();
  const int64_t nr = isa.nr;
  for (int64_t j = 0; j < n; j += nr) {
    const int64_t rows = std::min(nr, n - j);
    for (int64_t i = 0; i < m; i += 4) {
      const int mr = static_cast<int>(std::min<int64_t>(4, m - i));
      if (rows == nr) {
        isa.full[mr](x + i * ldx, ldx, w + j * ldw, ldw, y + i * ldy + j, ldy, k);
      } else {
        for (int64_t r = 0; r < rows; ++r) {
          isa.edge[mr](x + i * ldx, ldx, w + (j + r) * ldw, ldw, y + i * ldy + j + r, ldy, k);
        }
      }
    }
  }
}

}  // namespace breakeven::kernels
