// The CUDA backend.
//
// Design. Everything runs in order on one stream per backend. Activations stay fp32 between ops
// (the residual stream keeps full precision, as vLLM's fused_add_rms_norm does); weights are
// bf16 (or f16/f32). Matrix products:
//   - up to kGemvRows activation rows (decode at small batch) a custom kernel streams each
//     weight row once with 16-byte loads and keeps the activation rows in registers, so batch 1
//     is bound by weight bandwidth alone;
//   - above that the activations are narrowed to the weight type and cuBLAS runs the product on
//     the tensor cores (bf16 x bf16, fp32 accumulation, fp32 out).
// Attention: decode rows use a split-KV kernel (flash-decoding: each block takes one query row,
// one head and one of up to 16 equal slices of that row's context, and a second kernel merges
// the slices by their log-sum-exp), so one sequence fills the GPU; long query chunks (prefill) use
// a tiled kernel that keeps a tile of queries and a tile of keys/values in shared memory with an
// online softmax. KV cache is fp32 in the CPU backend's layout (num_blocks, block_size, kv heads,
// head_dim). Graphs: ops can be captured into CUDA graphs and replayed (decode steps); nothing
// here allocates or synchronises while a capture is open, so scratch is sized by a first, eager
// run of the same shape.
//
// CUDA errors in an op are fatal for the process (ops return nothing): the message names the
// op and the CUDA error, and the node agent reports the worker's exit.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <type_traits>
#include <vector>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/sample.h"

namespace breakeven::kernels {

std::vector<DeviceInfo> ListCudaDevices(std::string* note);

namespace {

[[noreturn]] void Die(const char* what, const char* detail) {
  std::fprintf(stderr, "fatal: CUDA backend: %s: %s\n", what, detail);
  std::fflush(stderr);
  std::exit(70);
}

inline void Check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) Die(what, cudaGetErrorString(err));
}

inline void CheckLaunch(const char* what) { Check(cudaGetLastError(), what); }

inline void CheckBlas(cublasStatus_t st, const char* what) {
  if (st != CUBLAS_STATUS_SUCCESS) Die(what, cublasGetStatusString(st));
}

inline unsigned Blocks(int64_t n, int threads) {
  return static_cast<unsigned>((n + threads - 1) / threads);
}

// ---- element loads

template <typename T>
__device__ __forceinline__ float ToFloat(T v);
template <>
__device__ __forceinline__ float ToFloat<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ float ToFloat<__nv_bfloat16>(__nv_bfloat16 v) {
  return __bfloat162float(v);
}
template <>
__device__ __forceinline__ float ToFloat<__half>(__half v) {
  return __half2float(v);
}

// Calls fn with a null pointer of the device type that stores `dtype` (float, __nv_bfloat16 or
// __half): one kernel template instantiated per storage type.
template <typename Fn>
void WithElementType(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kF32:
      fn(static_cast<float*>(nullptr));
      break;
    case DType::kBF16:
      fn(static_cast<__nv_bfloat16*>(nullptr));
      break;
    case DType::kF16:
      fn(static_cast<__half*>(nullptr));
      break;
  }
}

__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum over a block of up to 1024 threads; every thread gets the result.
__device__ float BlockSum(float v) {
  __shared__ float partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = WarpSum(v);
  __syncthreads();  // partial may still be read by a previous call
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  const int warps = (blockDim.x + 31) >> 5;
  v = lane < warps ? partial[lane] : 0.0f;
  return WarpSum(v);
}

// ---- matrix x few vectors: y (m, n) = x (m, k) w^T, w (n, k) bf16, m <= kGemvRows.
// One warp per weight row; each lane loads 8 weights (16 bytes) at a time, kGemvUnroll loads in
// flight, and multiplies them with the m activation rows (read through L1: every warp of the
// block reads the same x).

constexpr int kGemvRows = 8;
constexpr int kGemvWarps = 8;
constexpr int kGemvUnroll = 8;

__device__ __forceinline__ void Bf16x8(const uint4& raw, float out[8]) {
  const __nv_bfloat162* p = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    float2 f = __bfloat1622float2(p[i]);
    out[2 * i] = f.x;
    out[2 * i + 1] = f.y;
  }
}

template <int M>
__global__ void __launch_bounds__(kGemvWarps * 32)
    GemvBf16Kernel(const float* __restrict__ x, int64_t x_stride,
                   const __nv_bfloat16* __restrict__ w, int64_t w_stride,
                   const float* __restrict__ bias, float* __restrict__ y, int64_t y_stride,
                   int64_t n, int64_t k) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kGemvWarps + (threadIdx.x >> 5);
  if (row >= n) return;
  const uint4* wr = reinterpret_cast<const uint4*>(w + row * w_stride);
  const int64_t chunks = k / 8;  // 8 weights per 16-byte load; k % 8 == 0 (checked by the caller)
  float acc[M];
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = 0.0f;
  auto fma8 = [&](const uint4& raw, int64_t col) {
    float wv[8];
    Bf16x8(raw, wv);
#pragma unroll
    for (int m = 0; m < M; ++m) {
      const float4* xr = reinterpret_cast<const float4*>(x + m * x_stride + col);
      const float4 a = __ldg(xr), b = __ldg(xr + 1);
      acc[m] += wv[0] * a.x + wv[1] * a.y + wv[2] * a.z + wv[3] * a.w + wv[4] * b.x + wv[5] * b.y +
                wv[6] * b.z + wv[7] * b.w;
    }
  };
  int64_t c = lane;
  for (; c + 32 * (kGemvUnroll - 1) < chunks; c += 32 * kGemvUnroll) {
    uint4 raw[kGemvUnroll];
#pragma unroll
    for (int u = 0; u < kGemvUnroll; ++u) raw[u] = __ldcs(wr + c + 32 * u);  // streamed once
#pragma unroll
    for (int u = 0; u < kGemvUnroll; ++u) fma8(raw[u], (c + 32 * u) * 8);
  }
  for (; c < chunks; c += 32) fma8(__ldcs(wr + c), c * 8);
#pragma unroll
  for (int m = 0; m < M; ++m) {
    const float s = WarpSum(acc[m]);
    if (lane == 0) y[m * y_stride + row] = s + (bias != nullptr ? bias[row] : 0.0f);
  }
}

template <typename T>
__global__ void NarrowKernel(const float* __restrict__ x, int64_t x_stride, T* __restrict__ out,
                             int64_t rows, int64_t cols) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows * cols) return;
  const int64_t r = i / cols, c = i % cols;
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    out[i] = __float2bfloat16_rn(x[r * x_stride + c]);
  } else {
    out[i] = __float2half_rn(x[r * x_stride + c]);
  }
}

__global__ void AddBiasKernel(float* __restrict__ y, int64_t y_stride,
                              const float* __restrict__ bias, int64_t rows, int64_t cols) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows * cols) return;
  y[(i / cols) * y_stride + i % cols] += bias[i % cols];
}

// ---- norms and elementwise ops

__global__ void RmsNormKernel(const float* __restrict__ x, int64_t x_stride,
                              const float* __restrict__ weight, float eps, float* __restrict__ out,
                              int64_t out_stride, int64_t cols) {
  const float* xr = x + blockIdx.x * x_stride;
  float ss = 0;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) ss += xr[c] * xr[c];
  const float inv = rsqrtf(BlockSum(ss) / static_cast<float>(cols) + eps);
  float* o = out + blockIdx.x * out_stride;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) o[c] = xr[c] * inv * weight[c];
}

__global__ void AddRmsNormKernel(float* __restrict__ residual, int64_t r_stride,
                                 const float* __restrict__ delta, int64_t d_stride,
                                 const float* __restrict__ weight, float eps,
                                 float* __restrict__ out, int64_t out_stride, int64_t cols) {
  float* rr = residual + blockIdx.x * r_stride;
  const float* dr = delta + blockIdx.x * d_stride;
  float ss = 0;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float v = rr[c] + dr[c];
    rr[c] = v;
    ss += v * v;
  }
  const float inv = rsqrtf(BlockSum(ss) / static_cast<float>(cols) + eps);
  float* o = out + blockIdx.x * out_stride;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) o[c] = rr[c] * inv * weight[c];
}

__global__ void SiluMulKernel(const float* __restrict__ gate_up, int64_t g_stride,
                              float* __restrict__ out, int64_t out_stride, int64_t rows,
                              int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows * n) return;
  const int64_t r = i / n, c = i % n;
  const float g = gate_up[r * g_stride + c], u = gate_up[r * g_stride + n + c];
  out[r * out_stride + c] = g / (1.0f + expf(-g)) * u;
}

// One thread per (token, head, pair i / i + half) of q's and k's heads together.
__global__ void RopeKernel(float* __restrict__ q, int64_t q_stride, int64_t nq_heads,
                           float* __restrict__ k, int64_t k_stride, int64_t nk_heads,
                           const float* __restrict__ cos, int64_t cos_stride,
                           const float* __restrict__ sin, int64_t sin_stride, int64_t tokens,
                           int64_t head_dim) {
  const int64_t half = head_dim / 2;
  const int64_t heads = nq_heads + nk_heads;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= tokens * heads * half) return;
  const int64_t t = i / (heads * half), h = (i / half) % heads, p = i % half;
  float* base =
      h < nq_heads ? q + t * q_stride + h * head_dim : k + t * k_stride + (h - nq_heads) * head_dim;
  const float c = cos[t * cos_stride + p], s = sin[t * sin_stride + p];
  const float a = base[p], b = base[p + half];
  base[p] = a * c - b * s;
  base[p + half] = b * c + a * s;
}

// RopeKernel and WriteKvKernel in one pass: one thread per (token, head of q, k and v, pair
// i / i + half); k's and v's pairs also go to the token's cache slot (none for a negative slot).
__global__ void RopeWriteKvKernel(float* __restrict__ q, int64_t q_stride, int64_t nq_heads,
                                  float* __restrict__ k, int64_t k_stride,
                                  const float* __restrict__ v, int64_t v_stride, int64_t nk_heads,
                                  const float* __restrict__ cos, int64_t cos_stride,
                                  const float* __restrict__ sin, int64_t sin_stride,
                                  const int32_t* __restrict__ slots, float* __restrict__ kc,
                                  float* __restrict__ vc, int64_t tokens, int64_t head_dim) {
  const int64_t half = head_dim / 2;
  const int64_t heads = nq_heads + 2 * nk_heads;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= tokens * heads * half) return;
  const int64_t t = i / (heads * half), h = (i / half) % heads, p = i % half;
  const int64_t slot = slots[t];
  const int64_t width = nk_heads * head_dim;
  if (h >= nq_heads + nk_heads) {  // v: stored as it is
    if (slot < 0) return;
    const int64_t hv = h - nq_heads - nk_heads;
    const float* src = v + t * v_stride + hv * head_dim;
    vc[slot * width + hv * head_dim + p] = src[p];
    vc[slot * width + hv * head_dim + p + half] = src[p + half];
    return;
  }
  const bool is_q = h < nq_heads;
  float* base =
      is_q ? q + t * q_stride + h * head_dim : k + t * k_stride + (h - nq_heads) * head_dim;
  const float c = cos[t * cos_stride + p], s = sin[t * sin_stride + p];
  const float a = base[p], b = base[p + half];
  const float ra = a * c - b * s, rb = b * c + a * s;
  base[p] = ra;
  base[p + half] = rb;
  if (!is_q && slot >= 0) {
    const int64_t hk = h - nq_heads;
    kc[slot * width + hk * head_dim + p] = ra;
    kc[slot * width + hk * head_dim + p + half] = rb;
  }
}

template <typename T>
__global__ void EmbeddingKernel(const T* __restrict__ table, int64_t t_stride, int64_t t_rows,
                                const int32_t* __restrict__ ids, int64_t vocab_begin,
                                float* __restrict__ out, int64_t out_stride, int64_t hidden) {
  const int64_t r = blockIdx.x;
  const int64_t id = static_cast<int64_t>(ids[r]) - vocab_begin;
  float* o = out + r * out_stride;
  if (id < 0 || id >= t_rows) {
    for (int64_t c = threadIdx.x; c < hidden; c += blockDim.x) o[c] = 0.0f;
    return;
  }
  const T* src = table + id * t_stride;
  for (int64_t c = threadIdx.x; c < hidden; c += blockDim.x) o[c] = ToFloat(src[c]);
}

// K and V of token t to its slot; a negative slot (a padding row of a graph bucket) is skipped.
__global__ void WriteKvKernel(const float* __restrict__ k, int64_t k_stride,
                              const float* __restrict__ v, int64_t v_stride,
                              const int32_t* __restrict__ slots, float* __restrict__ kc,
                              float* __restrict__ vc, int64_t width) {
  const int64_t t = blockIdx.x;
  const int64_t slot = slots[t];
  if (slot < 0) return;
  for (int64_t c = threadIdx.x; c < width; c += blockDim.x) {
    kc[slot * width + c] = k[t * k_stride + c];
    vc[slot * width + c] = v[t * v_stride + c];
  }
}

__global__ void GatherRowsKernel(const float* __restrict__ src, int64_t s_stride,
                                 const int32_t* __restrict__ rows, float* __restrict__ out,
                                 int64_t out_stride, int64_t cols) {
  const float* s = src + static_cast<int64_t>(rows[blockIdx.x]) * s_stride;
  float* o = out + blockIdx.x * out_stride;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) o[c] = s[c];
}

__global__ void CopyBlocksKernel(float* __restrict__ kc, float* __restrict__ vc,
                                 const int32_t* __restrict__ src, const int32_t* __restrict__ dst,
                                 int64_t block_elems) {
  const int64_t from = static_cast<int64_t>(src[blockIdx.x]) * block_elems;
  const int64_t to = static_cast<int64_t>(dst[blockIdx.x]) * block_elems;
  for (int64_t e = threadIdx.x; e < block_elems; e += blockDim.x) {
    kc[to + e] = kc[from + e];
    vc[to + e] = vc[from + e];
  }
}

// ---- dummy weights, as engine/weights.cc's DummyValue makes them

__device__ __forceinline__ uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

template <typename T>
__global__ void FillUniformKernel(T* __restrict__ dst, int64_t rows, int64_t cols, UniformFill f) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows * cols) return;
  const int64_t r = i / cols, c = i % cols;
  const uint64_t index = static_cast<uint64_t>((f.row_begin + r) * f.full_cols + f.col_begin + c);
  const uint64_t bits = SplitMix64(f.key + index);
  const float u = static_cast<float>(
      __dadd_rn(__dmul_rn(__dmul_rn(static_cast<double>(bits >> 11), 0x1.0p-53), 2.0), -1.0));
  // Rounded multiply then add, never fused, to match the host's float arithmetic.
  const float value = __fadd_rn(f.offset, __fmul_rn(f.scale, u));
  if constexpr (std::is_same_v<T, float>) {
    dst[i] = value;
  } else if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    dst[i] = __float2bfloat16_rn(value);
  } else {
    dst[i] = __float2half_rn(value);
  }
}

// ---- attention

constexpr int kHeadDimMax = 256;
constexpr int kDecodeWarps = 8;  // warps per decode block; warp w takes keys w, w + 8, ...

// The sequence that owns query row `row` (query_start is ascending).
__device__ __forceinline__ int64_t SeqOfRow(const int32_t* query_start, int64_t num_seqs,
                                            int64_t row) {
  int64_t lo = 0, hi = num_seqs;  // query_start[lo] <= row < query_start[hi]
  while (hi - lo > 1) {
    const int64_t mid = (lo + hi) / 2;
    if (query_start[mid] <= row) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return lo;
}

struct DecodeArgs {
  const float* q;
  int64_t q_stride;
  const float* kc;
  const float* vc;
  int64_t block_size, num_kv_heads, head_dim;
  const int32_t* query_start;
  const int32_t* context_lens;
  const int32_t* block_tables;
  int64_t max_blocks_per_seq, num_seqs, num_heads, group;
  float scale;
  float* partial_acc;  // (rows, heads, splits, head_dim)
  float* partial_ml;   // (rows, heads, splits, 2): running max and sum of exp
  int64_t splits;
};

// Block (row, head, split): lane l holds dimensions l, l + 32, ... (kDims of them, the last
// partly masked when head_dim is not a multiple of 32); warp w takes keys w, w + 4, ... of the
// row's slice, keeping its own online softmax; the warps merge at the end.
template <int kDims>  // ceil(head_dim / 32)
__global__ void __launch_bounds__(kDecodeWarps * 32) DecodeAttentionKernel(DecodeArgs a) {
  const int64_t row = blockIdx.x, head = blockIdx.y, split = blockIdx.z;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t out_index = (row * a.num_heads + head) * a.splits + split;
  const int64_t s = SeqOfRow(a.query_start, a.num_seqs, row);
  const int64_t qlen = a.query_start[s + 1] - a.query_start[s];
  const int64_t visible = a.context_lens[s] - qlen + (row - a.query_start[s]) + 1;
  // The row's keys in a.splits equal slices: the grid depends only on the rows and heads, so it
  // is the same for every step a graph replays.
  const int64_t chunk = (visible + a.splits - 1) / a.splits;
  const int64_t begin = split * chunk;
  const int64_t end = min(visible, begin + chunk);
  if (begin >= end) {  // nothing here: an empty partial that the merge ignores
    if (threadIdx.x == 0) {
      a.partial_ml[out_index * 2] = -INFINITY;
      a.partial_ml[out_index * 2 + 1] = 0.0f;
    }
    return;
  }
  const int64_t g = head / a.group;
  const int64_t width = a.num_kv_heads * a.head_dim;
  float q[kDims];
#pragma unroll
  for (int d = 0; d < kDims; ++d) {
    const int64_t e = d * 32 + lane;
    q[d] = e < a.head_dim ? a.q[row * a.q_stride + head * a.head_dim + e] : 0.0f;
  }
  const int32_t* table = a.block_tables + s * a.max_blocks_per_seq;
  float m = -INFINITY, l = 0, acc[kDims];
#pragma unroll
  for (int d = 0; d < kDims; ++d) acc[d] = 0;
  // Two keys per iteration, their loads issued together: the loop is a chain of memory
  // latencies otherwise.
  const int bs = static_cast<int>(a.block_size);
  auto slot_of = [&](int64_t pos) {  // 32-bit: positions and slots fit, and divide faster
    const int p = static_cast<int>(pos);
    return static_cast<int64_t>(table[p / bs] * bs + p % bs);
  };
  for (int64_t pos = begin + warp; pos < end; pos += 2 * kDecodeWarps) {
    const int64_t pos2 = pos + kDecodeWarps;
    const bool two = pos2 < end;
    const int64_t off1 = slot_of(pos) * width + g * a.head_dim;
    const int64_t off2 = two ? slot_of(pos2) * width + g * a.head_dim : off1;
    float k1[kDims], k2[kDims], v1[kDims], v2[kDims];
#pragma unroll
    for (int d = 0; d < kDims; ++d) {
      const bool in = d * 32 + lane < a.head_dim;
      k1[d] = in ? a.kc[off1 + d * 32 + lane] : 0.0f;
      k2[d] = in ? a.kc[off2 + d * 32 + lane] : 0.0f;
      v1[d] = in ? a.vc[off1 + d * 32 + lane] : 0.0f;
      v2[d] = in ? a.vc[off2 + d * 32 + lane] : 0.0f;
    }
    float dot1 = 0, dot2 = 0;
#pragma unroll
    for (int d = 0; d < kDims; ++d) {
      dot1 += q[d] * k1[d];
      dot2 += q[d] * k2[d];
    }
    const float s1 = WarpSum(dot1) * a.scale;
    const float s2 = two ? WarpSum(dot2) * a.scale : -INFINITY;
    const float m_new = fmaxf(m, fmaxf(s1, s2));
    const float correction = expf(m - m_new), p1 = expf(s1 - m_new);
    const float p2 = two ? expf(s2 - m_new) : 0.0f;
    l = l * correction + p1 + p2;
#pragma unroll
    for (int d = 0; d < kDims; ++d) acc[d] = acc[d] * correction + p1 * v1[d] + p2 * v2[d];
    m = m_new;
  }
  // Merge the warps through shared memory.
  __shared__ float s_ml[kDecodeWarps][2];
  __shared__ float s_acc[kDecodeWarps][kDims * 32];
  if (lane == 0) {
    s_ml[warp][0] = m;
    s_ml[warp][1] = l;
  }
#pragma unroll
  for (int d = 0; d < kDims; ++d) s_acc[warp][d * 32 + lane] = acc[d];
  __syncthreads();
  if (warp != 0) return;
  float m_all = -INFINITY;
  for (int w = 0; w < kDecodeWarps; ++w) m_all = fmaxf(m_all, s_ml[w][0]);
  float l_all = 0, out[kDims];
#pragma unroll
  for (int d = 0; d < kDims; ++d) out[d] = 0;
  for (int w = 0; w < kDecodeWarps; ++w) {
    if (s_ml[w][0] == -INFINITY) continue;
    const float f = expf(s_ml[w][0] - m_all);
    l_all += s_ml[w][1] * f;
#pragma unroll
    for (int d = 0; d < kDims; ++d) out[d] += s_acc[w][d * 32 + lane] * f;
  }
  float* pa = a.partial_acc + out_index * a.head_dim;
#pragma unroll
  for (int d = 0; d < kDims; ++d) {
    if (d * 32 + lane < a.head_dim) pa[d * 32 + lane] = out[d];
  }
  if (lane == 0) {
    a.partial_ml[out_index * 2] = m_all;
    a.partial_ml[out_index * 2 + 1] = l_all;
  }
}

// Block (row, head): out = sum_s exp(m_s - M) acc_s / sum_s exp(m_s - M) l_s.
__global__ void MergeSplitsKernel(const float* __restrict__ partial_acc,
                                  const float* __restrict__ partial_ml, int64_t splits,
                                  int64_t num_heads, int64_t head_dim, float* __restrict__ out,
                                  int64_t out_stride) {
  const int64_t row = blockIdx.x, head = blockIdx.y;
  const int64_t base = (row * num_heads + head) * splits;
  float m_all = -INFINITY;
  for (int64_t s = 0; s < splits; ++s) m_all = fmaxf(m_all, partial_ml[(base + s) * 2]);
  float* o = out + row * out_stride + head * head_dim;
  if (m_all == -INFINITY) {  // a padding row with no context
    for (int64_t d = threadIdx.x; d < head_dim; d += blockDim.x) o[d] = 0.0f;
    return;
  }
  float l_all = 0;
  for (int64_t s = 0; s < splits; ++s) {
    const float m = partial_ml[(base + s) * 2];
    if (m != -INFINITY) l_all += partial_ml[(base + s) * 2 + 1] * expf(m - m_all);
  }
  for (int64_t d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float v = 0;
    for (int64_t s = 0; s < splits; ++s) {
      const float m = partial_ml[(base + s) * 2];
      if (m != -INFINITY) v += partial_acc[(base + s) * head_dim + d] * expf(m - m_all);
    }
    o[d] = v / l_all;
  }
}

struct PrefillArgs {
  const float* q;
  int64_t q_stride;
  const float* kc;
  const float* vc;
  int64_t block_size, num_kv_heads, head_dim;
  const int32_t* query_start;
  const int32_t* context_lens;
  const int32_t* block_tables;
  int64_t max_blocks_per_seq, group;
  float scale;
  float* out;
  int64_t out_stride;
};

// Block (query tile, head, sequence): kTileQ = 64 query rows of one head against the
// sequence's keys, kTileK = 64 at a time, on the tensor cores (WMMA, bf16 in, fp32 out), with an
// online softmax (flash attention). Four warps; warp w owns query rows 16w..16w+15. Per key tile:
//   S_w = Q_w K^T           (16 x 64, fp32, to shared memory)
//   softmax step per row    (running max m and sum l; P_w = exp(S_w - m) as bf16)
//   O_w = O_w * corr + P_w V (O in shared memory in fp32: WMMA accumulators cannot be scaled
//                            per row in registers)
// Shared memory rows are padded (+8 bf16 / +4 fp32) against bank conflicts; every WMMA tile
// starts on a 32-byte boundary.
constexpr int kTileQ = 64;
constexpr int kTileK = 64;

template <int kHd>
struct PrefillSmem {
  static constexpr int kQ = kHd + 8;     // bf16 row stride of Q, K, V
  static constexpr int kS = kTileK + 4;  // fp32 row stride of S
  static constexpr int kP = kTileK + 8;  // bf16 row stride of P
  static constexpr int kO = kHd + 4;     // fp32 row stride of O
  static constexpr size_t q = 0;
  static constexpr size_t k = q + sizeof(__nv_bfloat16) * kTileQ * kQ;
  static constexpr size_t v = k + sizeof(__nv_bfloat16) * kTileK * kQ;
  static constexpr size_t s = v + sizeof(__nv_bfloat16) * kTileK * kQ;
  static constexpr size_t p = s + sizeof(float) * kTileQ * kS;
  static constexpr size_t o = p + sizeof(__nv_bfloat16) * kTileQ * kP;
  static constexpr size_t m = o + sizeof(float) * kTileQ * kO;
  static constexpr size_t l = m + sizeof(float) * kTileQ;
  static constexpr size_t slot = l + sizeof(float) * kTileQ;
  static constexpr size_t bytes = slot + sizeof(int32_t) * kTileK;
};

template <int kHd>
__global__ void __launch_bounds__(128) PrefillAttentionKernel(PrefillArgs a) {
  using namespace nvcuda;
  using L = PrefillSmem<kHd>;
  const int64_t tile = blockIdx.x, head = blockIdx.y, s = blockIdx.z;
  const int64_t q0 = a.query_start[s], qlen = a.query_start[s + 1] - q0;
  const int64_t first = tile * kTileQ;
  if (first >= qlen) return;
  const int rows = static_cast<int>(min(static_cast<int64_t>(kTileQ), qlen - first));
  const int64_t ctx = a.context_lens[s];
  const int64_t pos0 = ctx - qlen + first;  // position of the tile's first query row
  const int64_t g = head / a.group;
  const int64_t width = a.num_kv_heads * a.head_dim;
  const int32_t* table = a.block_tables + s * a.max_blocks_per_seq;

  extern __shared__ __align__(128) unsigned char smem[];
  auto* sq = reinterpret_cast<__nv_bfloat16*>(smem + L::q);
  auto* sk = reinterpret_cast<__nv_bfloat16*>(smem + L::k);
  auto* sv = reinterpret_cast<__nv_bfloat16*>(smem + L::v);
  auto* ss = reinterpret_cast<float*>(smem + L::s);
  auto* sp = reinterpret_cast<__nv_bfloat16*>(smem + L::p);
  auto* so = reinterpret_cast<float*>(smem + L::o);
  auto* sm = reinterpret_cast<float*>(smem + L::m);
  auto* sl = reinterpret_cast<float*>(smem + L::l);
  auto* sslot = reinterpret_cast<int32_t*>(smem + L::slot);
  const int bs = static_cast<int>(a.block_size);
  constexpr int kVec = kHd / 4;  // float4 loads per row

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  // Q (scaled) in bf16; rows past the chunk are zeros. O, m, l start empty.
  for (int e = tid; e < kTileQ * kVec; e += 128) {
    const int r = e / kVec, d = 4 * (e % kVec);
    float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (r < rows) {
      v = *reinterpret_cast<const float4*>(a.q + (q0 + first + r) * a.q_stride + head * kHd + d);
    }
    sq[r * L::kQ + d] = __float2bfloat16_rn(v.x * a.scale);
    sq[r * L::kQ + d + 1] = __float2bfloat16_rn(v.y * a.scale);
    sq[r * L::kQ + d + 2] = __float2bfloat16_rn(v.z * a.scale);
    sq[r * L::kQ + d + 3] = __float2bfloat16_rn(v.w * a.scale);
    *reinterpret_cast<float4*>(so + r * L::kO + d) = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  }
  if (tid < kTileQ) {
    sm[tid] = -INFINITY;
    sl[tid] = 0.0f;
  }

  const int64_t last_visible = pos0 + rows - 1;  // the last key any row of the tile sees
  for (int64_t k0 = 0; k0 <= last_visible; k0 += kTileK) {
    __syncthreads();  // the previous tile's K, V, P and slots are no longer read
    // Each key's cache slot once (32-bit: a division per key, not per element).
    if (tid < kTileK) {
      const int pos = static_cast<int>(k0) + tid;
      sslot[tid] = pos <= last_visible ? table[pos / bs] * bs + pos % bs : -1;
    }
    __syncthreads();
    for (int e = tid; e < kTileK * kVec; e += 128) {
      const int r = e / kVec, d = 4 * (e % kVec);
      const int slot = sslot[r];
      float4 kv = make_float4(0.0f, 0.0f, 0.0f, 0.0f), vv = kv;
      if (slot >= 0) {
        const int64_t off = static_cast<int64_t>(slot) * width + g * kHd + d;
        kv = *reinterpret_cast<const float4*>(a.kc + off);
        vv = *reinterpret_cast<const float4*>(a.vc + off);
      }
      __nv_bfloat16* kd = sk + r * L::kQ + d;
      __nv_bfloat16* vd = sv + r * L::kQ + d;
      kd[0] = __float2bfloat16_rn(kv.x), kd[1] = __float2bfloat16_rn(kv.y);
      kd[2] = __float2bfloat16_rn(kv.z), kd[3] = __float2bfloat16_rn(kv.w);
      vd[0] = __float2bfloat16_rn(vv.x), vd[1] = __float2bfloat16_rn(vv.y);
      vd[2] = __float2bfloat16_rn(vv.z), vd[3] = __float2bfloat16_rn(vv.w);
    }
    __syncthreads();

    // S_w = Q_w K^T.
    {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[kTileK / 16];
#pragma unroll
      for (int n = 0; n < kTileK / 16; ++n) wmma::fill_fragment(acc[n], 0.0f);
#pragma unroll
      for (int kk = 0; kk < kHd / 16; ++kk) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> qa;
        wmma::load_matrix_sync(qa, sq + (16 * warp) * L::kQ + 16 * kk, L::kQ);
#pragma unroll
        for (int n = 0; n < kTileK / 16; ++n) {
          wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> kb;
          wmma::load_matrix_sync(kb, sk + (16 * n) * L::kQ + 16 * kk, L::kQ);
          wmma::mma_sync(acc[n], qa, kb, acc[n]);
        }
      }
#pragma unroll
      for (int n = 0; n < kTileK / 16; ++n) {
        wmma::store_matrix_sync(ss + (16 * warp) * L::kS + 16 * n, acc[n], L::kS,
                                wmma::mem_row_major);
      }
    }
    __syncwarp();

    // Softmax step, one row at a time per warp: each lane holds two of the row's 64 scores.
    for (int i = 0; i < 16; ++i) {
      const int r = 16 * warp + i;
      const int64_t pos = pos0 + r;
      float x[2];
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const int c = lane + 32 * j;
        const bool ok = r < rows && k0 + c <= pos;
        x[j] = ok ? ss[r * L::kS + c] : -INFINITY;
      }
      float mx = fmaxf(x[0], x[1]);
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
      const float m_old = sm[r];
      const float m_new = fmaxf(m_old, mx);
      float sum = 0.0f;
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const float pj = x[j] == -INFINITY ? 0.0f : expf(x[j] - m_new);
        sp[r * L::kP + lane + 32 * j] = __float2bfloat16_rn(pj);
        sum += pj;
      }
      sum = WarpSum(sum);
      const float corr = m_old == -INFINITY ? 0.0f : expf(m_old - m_new);
      // Scale this row's output so far; the lanes split its head_dim values.
      for (int d = lane; d < kHd; d += 32) so[r * L::kO + d] *= corr;
      __syncwarp();
      if (lane == 0) {
        sm[r] = m_new == -INFINITY ? m_old : m_new;
        sl[r] = sl[r] * corr + sum;
      }
    }
    __syncwarp();

    // O_w += P_w V.
#pragma unroll
    for (int dt = 0; dt < kHd / 16; ++dt) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> o;
      float* optr = so + (16 * warp) * L::kO + 16 * dt;
      wmma::load_matrix_sync(o, optr, L::kO, wmma::mem_row_major);
#pragma unroll
      for (int kk = 0; kk < kTileK / 16; ++kk) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> pa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> vb;
        wmma::load_matrix_sync(pa, sp + (16 * warp) * L::kP + 16 * kk, L::kP);
        wmma::load_matrix_sync(vb, sv + (16 * kk) * L::kQ + 16 * dt, L::kQ);
        wmma::mma_sync(o, pa, vb, o);
      }
      wmma::store_matrix_sync(optr, o, L::kO, wmma::mem_row_major);
    }
  }
  __syncthreads();
  for (int e = tid; e < rows * kHd; e += 128) {
    const int r = e / kHd, d = e % kHd;
    a.out[(q0 + first + r) * a.out_stride + head * kHd + d] = so[r * L::kO + d] / sl[r];
  }
}

// ---- the backend

class DeviceBuffer final : public Buffer {
 public:
  DeviceBuffer(void* data, size_t bytes) : data_(data), bytes_(bytes) {}
  ~DeviceBuffer() override { cudaFree(data_); }
  void* data() const override { return data_; }
  size_t bytes() const override { return bytes_; }

 private:
  void* data_;
  size_t bytes_;
};

// Grows a device scratch area; never while a graph is being captured (a first eager run of
// the same shape sizes it). Once graphs exist, an outgrown area is kept, not freed: a graph
// captured earlier may still point into it.
class Scratch {
 public:
  ~Scratch() {
    cudaFree(data_);
    for (void* p : retired_) cudaFree(p);
  }
  void* Get(size_t bytes, bool capturing, bool graphs_exist, const char* what) {
    if (bytes <= bytes_) return data_;
    if (capturing)
      Die(what, "scratch too small while capturing a graph (run the shape once first)");
    if (graphs_exist) {
      retired_.push_back(data_);
    } else {
      cudaFree(data_);
    }
    data_ = nullptr;
    Check(cudaMalloc(&data_, bytes), what);
    bytes_ = bytes;
    return data_;
  }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  std::vector<void*> retired_;
};

class CudaBackend final : public Backend {
 public:
  ~CudaBackend() override {
    for (cudaGraphExec_t g : graphs_) cudaGraphExecDestroy(g);
    if (blas_ != nullptr) cublasDestroy(blas_);
    cudaFree(workspace_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  static Result<std::unique_ptr<Backend>> Create(const BackendOptions& options) {
    std::string note;
    std::vector<DeviceInfo> devices = ListCudaDevices(&note);
    if (devices.empty()) return FailedPrecondition("CUDA backend: no CUDA device ({})", note);
    if (options.device < 0 || options.device >= static_cast<int>(devices.size())) {
      return InvalidArgument("CUDA backend: device {} does not exist ({} present)", options.device,
                             devices.size());
    }
    auto b = std::unique_ptr<CudaBackend>(new CudaBackend);
    b->info_ = devices[static_cast<size_t>(options.device)];
    b->sms_ = b->info_.compute_units;
    b->ordinal_ = options.device;
    cudaError_t err = cudaSetDevice(options.device);
    // Start from a clean slate: an earlier failed runtime call in this thread (another
    // library's, say) would otherwise surface as the first launch check's error.
    cudaGetLastError();
    if (err == cudaSuccess) err = cudaStreamCreateWithFlags(&b->stream_, cudaStreamNonBlocking);
    if (err != cudaSuccess) {
      return Unavailable("CUDA backend: device {}: {}", options.device, cudaGetErrorString(err));
    }
    if (cublasCreate(&b->blas_) != CUBLAS_STATUS_SUCCESS) {
      return Unavailable("CUDA backend: device {}: cublasCreate failed", options.device);
    }
    // An explicit workspace: cuBLAS then never allocates, which graph capture requires.
    constexpr size_t kWorkspace = 32 << 20;
    err = cudaMalloc(&b->workspace_, kWorkspace);
    if (err != cudaSuccess) {
      return ResourceExhausted("CUDA backend: cuBLAS workspace: {}", cudaGetErrorString(err));
    }
    CheckBlas(cublasSetStream(b->blas_, b->stream_), "cublasSetStream");
    CheckBlas(cublasSetWorkspace(b->blas_, b->workspace_, kWorkspace), "cublasSetWorkspace");
    return std::unique_ptr<Backend>(std::move(b));
  }

  std::string_view name() const override { return "cuda"; }
  DeviceInfo device() const override { return info_; }
  void* native_stream() const override { return stream_; }

  Result<std::unique_ptr<Buffer>> Allocate(size_t bytes) override {
    Use();
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, std::max<size_t>(bytes, 1));
    if (err != cudaSuccess) {
      cudaGetLastError();
      size_t free_bytes = 0, total = 0;
      cudaMemGetInfo(&free_bytes, &total);
      return ResourceExhausted("CUDA device {}: cannot allocate {:.1f} MiB ({:.1f} MiB free): {}",
                               ordinal_, bytes / 1048576.0, free_bytes / 1048576.0,
                               cudaGetErrorString(err));
    }
    return std::unique_ptr<Buffer>(new DeviceBuffer(p, bytes));
  }

  void CopyToDevice(void* dst, const void* src, size_t bytes) override {
    Use();
    if (bytes == 0) return;
    // From pageable memory the call returns once `src` has been staged, so the caller may
    // reuse it at once.
    Check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_), "copy to device");
  }

  void CopyToHost(void* dst, const void* src, size_t bytes) override {
    Use();
    if (bytes == 0) return;
    Check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_), "copy to host");
    Check(cudaStreamSynchronize(stream_), "copy to host");
  }

  void Synchronize() override {
    Use();
    Check(cudaStreamSynchronize(stream_), "synchronize");
  }

  void MatMul(const Tensor& x, const Tensor& w, const float* bias, const Tensor& y) override {
    Use();
    const int64_t m = x.rows, n = w.rows, k = w.cols;
    if (m == 0) return;
    if (GemvFits(x, w)) {
      Gemv(x, w, bias, y);
      return;
    }
    if (w.dtype == DType::kF32) {
      const float alpha = 1, beta = 0;
      CheckBlas(
          cublasSgemm(blas_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n), static_cast<int>(m),
                      static_cast<int>(k), &alpha, w.f32(), static_cast<int>(w.stride), x.f32(),
                      static_cast<int>(x.stride), &beta, y.f32(), static_cast<int>(y.stride)),
          "cublasSgemm");
    } else {
      // Narrow the activations to the weight type, then bf16/f16 x bf16/f16 -> fp32 on the
      // tensor cores.
      const bool bf16 = w.dtype == DType::kBF16;
      void* xn = narrow_.Get(static_cast<size_t>(m * k) * 2, capturing_, !graphs_.empty(),
                             "MatMul scratch");
      if (bf16) {
        NarrowKernel<<<Blocks(m * k, 256), 256, 0, stream_>>>(
            x.f32(), x.stride, static_cast<__nv_bfloat16*>(xn), m, k);
      } else {
        NarrowKernel<<<Blocks(m * k, 256), 256, 0, stream_>>>(x.f32(), x.stride,
                                                              static_cast<__half*>(xn), m, k);
      }
      CheckLaunch("MatMul narrow");
      const float alpha = 1, beta = 0;
      const cudaDataType_t t = bf16 ? CUDA_R_16BF : CUDA_R_16F;
      CheckBlas(
          cublasGemmEx(blas_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n), static_cast<int>(m),
                       static_cast<int>(k), &alpha, w.data, t, static_cast<int>(w.stride), xn, t,
                       static_cast<int>(k), &beta, y.data, CUDA_R_32F, static_cast<int>(y.stride),
                       CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
          "cublasGemmEx");
    }
    if (bias != nullptr) {
      AddBiasKernel<<<Blocks(m * n, 256), 256, 0, stream_>>>(y.f32(), y.stride, bias, m, n);
      CheckLaunch("MatMul bias");
    }
  }

  void RmsNorm(const Tensor& x, const float* weight, float eps, const Tensor& out) override {
    Use();
    if (x.rows == 0) return;
    RmsNormKernel<<<static_cast<unsigned>(x.rows), 512, 0, stream_>>>(
        x.f32(), x.stride, weight, eps, out.f32(), out.stride, x.cols);
    CheckLaunch("RmsNorm");
  }

  void AddRmsNorm(const Tensor& residual, const Tensor& delta, const float* weight, float eps,
                  const Tensor& out) override {
    Use();
    if (residual.rows == 0) return;
    AddRmsNormKernel<<<static_cast<unsigned>(residual.rows), 512, 0, stream_>>>(
        residual.f32(), residual.stride, delta.f32(), delta.stride, weight, eps, out.f32(),
        out.stride, residual.cols);
    CheckLaunch("AddRmsNorm");
  }

  void SiluMul(const Tensor& gate_up, const Tensor& out) override {
    Use();
    const int64_t n = out.cols;
    if (out.rows == 0) return;
    SiluMulKernel<<<Blocks(out.rows * n, 256), 256, 0, stream_>>>(
        gate_up.f32(), gate_up.stride, out.f32(), out.stride, out.rows, n);
    CheckLaunch("SiluMul");
  }

  void Rope(const Tensor& q, const Tensor& k, const Tensor& cos, const Tensor& sin,
            int64_t head_dim) override {
    Use();
    const int64_t t = q.rows;
    if (t == 0) return;
    const int64_t nq = q.cols / head_dim, nk = k.cols / head_dim;
    RopeKernel<<<Blocks(t * (nq + nk) * (head_dim / 2), 256), 256, 0, stream_>>>(
        q.f32(), q.stride, nq, k.f32(), k.stride, nk, cos.f32(), cos.stride, sin.f32(), sin.stride,
        t, head_dim);
    CheckLaunch("Rope");
  }

  void RopeWriteKv(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& cos,
                   const Tensor& sin, int64_t head_dim, const int32_t* slots,
                   const KvCacheLayer& cache) override {
    Use();
    const int64_t t = q.rows;
    if (t == 0) return;
    RequireF32Cache(cache, "RopeWriteKv");
    const int64_t nq = q.cols / head_dim, nk = k.cols / head_dim;
    RopeWriteKvKernel<<<Blocks(t * (nq + 2 * nk) * (head_dim / 2), 256), 256, 0, stream_>>>(
        q.f32(), q.stride, nq, k.f32(), k.stride, v.f32(), v.stride, nk, cos.f32(), cos.stride,
        sin.f32(), sin.stride, slots, static_cast<float*>(cache.k), static_cast<float*>(cache.v), t,
        head_dim);
    CheckLaunch("RopeWriteKv");
  }

  void Embedding(const Tensor& table, const int32_t* ids, int64_t n, int64_t vocab_begin,
                 const Tensor& out) override {
    Use();
    if (n == 0) return;
    const unsigned grid = static_cast<unsigned>(n);
    WithElementType(table.dtype, [&](auto* type) {
      using T = std::remove_pointer_t<decltype(type)>;
      EmbeddingKernel<<<grid, 256, 0, stream_>>>(static_cast<const T*>(table.data), table.stride,
                                                 table.rows, ids, vocab_begin, out.f32(),
                                                 out.stride, out.cols);
    });
    CheckLaunch("Embedding");
  }

  void WriteKv(const Tensor& k, const Tensor& v, const int32_t* slots,
               const KvCacheLayer& cache) override {
    Use();
    if (k.rows == 0) return;
    RequireF32Cache(cache, "WriteKv");
    WriteKvKernel<<<static_cast<unsigned>(k.rows), 256, 0, stream_>>>(
        k.f32(), k.stride, v.f32(), v.stride, slots, static_cast<float*>(cache.k),
        static_cast<float*>(cache.v), cache.num_kv_heads * cache.head_dim);
    CheckLaunch("WriteKv");
  }

  void PagedAttention(const Tensor& q, const KvCacheLayer& cache, const AttentionBatch& batch,
                      int64_t num_heads, float scale, const Tensor& out) override {
    Use();
    const int64_t rows = q.rows;
    if (rows == 0 || batch.num_seqs == 0) return;
    RequireF32Cache(cache, "PagedAttention");
    const int64_t hd = cache.head_dim;
    const int64_t group = num_heads / cache.num_kv_heads;
    const bool vec4 = q.stride % 4 == 0 && reinterpret_cast<uintptr_t>(q.data) % 16 == 0;
    if (batch.max_query_len > 16 && (hd == 64 || hd == 128) && vec4) {
      PrefillArgs a{q.f32(),
                    q.stride,
                    static_cast<const float*>(cache.k),
                    static_cast<const float*>(cache.v),
                    cache.block_size,
                    cache.num_kv_heads,
                    hd,
                    batch.query_start,
                    batch.context_lens,
                    batch.block_tables,
                    batch.max_blocks_per_seq,
                    group,
                    scale,
                    out.f32(),
                    out.stride};
      const dim3 grid(static_cast<unsigned>((batch.max_query_len + kTileQ - 1) / kTileQ),
                      static_cast<unsigned>(num_heads), static_cast<unsigned>(batch.num_seqs));
      if (hd == 64) {
        LaunchPrefill<64>(grid, a);
      } else {
        LaunchPrefill<128>(grid, a);
      }
      CheckLaunch("PagedAttention (prefill)");
      return;
    }
    if (hd > kHeadDimMax) Die("PagedAttention", "head_dim above 256");
    // Enough (row, head, slice) blocks to give every SM two, at most 16 slices per row.
    const int64_t splits =
        std::clamp<int64_t>((2 * sms_ + rows * num_heads - 1) / (rows * num_heads), 1, 16);
    const size_t items = static_cast<size_t>(rows * num_heads * splits);
    auto* acc = static_cast<float*>(attn_acc_.Get(items * static_cast<size_t>(hd) * sizeof(float),
                                                  capturing_, !graphs_.empty(), "attention"));
    auto* ml = static_cast<float*>(
        attn_ml_.Get(items * 2 * sizeof(float), capturing_, !graphs_.empty(), "attention"));
    DecodeArgs a{q.f32(),
                 q.stride,
                 static_cast<const float*>(cache.k),
                 static_cast<const float*>(cache.v),
                 cache.block_size,
                 cache.num_kv_heads,
                 hd,
                 batch.query_start,
                 batch.context_lens,
                 batch.block_tables,
                 batch.max_blocks_per_seq,
                 batch.num_seqs,
                 num_heads,
                 group,
                 scale,
                 acc,
                 ml,
                 splits};
    const dim3 grid(static_cast<unsigned>(rows), static_cast<unsigned>(num_heads),
                    static_cast<unsigned>(splits));
    switch ((hd + 31) / 32) {
      case 1:
        DecodeAttentionKernel<1><<<grid, kDecodeWarps * 32, 0, stream_>>>(a);
        break;
      case 2:
        DecodeAttentionKernel<2><<<grid, kDecodeWarps * 32, 0, stream_>>>(a);
        break;
      case 3:
        DecodeAttentionKernel<3><<<grid, kDecodeWarps * 32, 0, stream_>>>(a);
        break;
      case 4:
        DecodeAttentionKernel<4><<<grid, kDecodeWarps * 32, 0, stream_>>>(a);
        break;
      case 5:
        DecodeAttentionKernel<5><<<grid, kDecodeWarps * 32, 0, stream_>>>(a);
        break;
      case 6:
        DecodeAttentionKernel<6><<<grid, kDecodeWarps * 32, 0, stream_>>>(a);
        break;
      case 7:
        DecodeAttentionKernel<7><<<grid, kDecodeWarps * 32, 0, stream_>>>(a);
        break;
      default:
        DecodeAttentionKernel<8><<<grid, kDecodeWarps * 32, 0, stream_>>>(a);
        break;
    }
    CheckLaunch("PagedAttention (decode)");
    MergeSplitsKernel<<<dim3(static_cast<unsigned>(rows), static_cast<unsigned>(num_heads)), 128, 0,
                        stream_>>>(acc, ml, splits, num_heads, hd, out.f32(), out.stride);
    CheckLaunch("PagedAttention (merge)");
  }

  void GatherRows(const Tensor& src, const int32_t* rows, int64_t n, const Tensor& out) override {
    Use();
    if (n == 0) return;
    GatherRowsKernel<<<static_cast<unsigned>(n), 256, 0, stream_>>>(
        src.f32(), src.stride, rows, out.f32(), out.stride, src.cols);
    CheckLaunch("GatherRows");
  }

  void CopyBlocks(const KvCacheLayer& cache, const int32_t* src, const int32_t* dst,
                  int64_t n) override {
    Use();
    if (n == 0) return;
    RequireF32Cache(cache, "CopyBlocks");
    CopyBlocksKernel<<<static_cast<unsigned>(n), 256, 0, stream_>>>(
        static_cast<float*>(cache.k), static_cast<float*>(cache.v), src, dst,
        cache.block_size * cache.num_kv_heads * cache.head_dim);
    CheckLaunch("CopyBlocks");
  }

  void Sample(const Tensor& logits, const SampleSpec* specs, int64_t n, int32_t* tokens) override {
    Use();
    if (n == 0) return;
    cuda::LaunchSample(logits.f32(), logits.stride, logits.cols, specs, n, tokens, stream_);
    CheckLaunch("Sample");
  }

  bool FillUniform(void* dst, DType dtype, int64_t rows, int64_t cols,
                   const UniformFill& fill) override {
    Use();
    const int64_t n = rows * cols;
    if (n == 0) return true;
    WithElementType(dtype, [&](auto* type) {
      using T = std::remove_pointer_t<decltype(type)>;
      FillUniformKernel<<<Blocks(n, 256), 256, 0, stream_>>>(static_cast<T*>(dst), rows, cols,
                                                             fill);
    });
    CheckLaunch("FillUniform");
    return true;
  }

  bool SupportsGraphs() const override { return true; }

  Status BeginCapture() override {
    Use();
    if (capturing_) return FailedPrecondition("CUDA backend: a capture is already open");
    cudaError_t err = cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal);
    if (err != cudaSuccess) return Internal("cudaStreamBeginCapture: {}", cudaGetErrorString(err));
    capturing_ = true;
    return Status::Ok();
  }

  Result<int> EndCapture() override {
    Use();
    if (!capturing_) return FailedPrecondition("CUDA backend: no capture is open");
    capturing_ = false;
    cudaGraph_t graph = nullptr;
    cudaError_t err = cudaStreamEndCapture(stream_, &graph);
    if (err != cudaSuccess) return Internal("cudaStreamEndCapture: {}", cudaGetErrorString(err));
    cudaGraphExec_t exec = nullptr;
    err = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    if (err != cudaSuccess) return Internal("cudaGraphInstantiate: {}", cudaGetErrorString(err));
    graphs_.push_back(exec);
    return static_cast<int>(graphs_.size() - 1);
  }

  Status Replay(int graph) override {
    Use();
    if (graph < 0 || graph >= static_cast<int>(graphs_.size())) {
      return InvalidArgument("CUDA backend: no graph {}", graph);
    }
    cudaError_t err = cudaGraphLaunch(graphs_[static_cast<size_t>(graph)], stream_);
    if (err != cudaSuccess) return Internal("cudaGraphLaunch: {}", cudaGetErrorString(err));
    return Status::Ok();
  }

 private:
  CudaBackend() = default;

  // The runtime's current device is per thread; ops may come from a thread other than the one
  // that made the backend (the executor's step thread).
  void Use() const {
    thread_local int current = -1;
    if (current != ordinal_) {
      Check(cudaSetDevice(ordinal_), "cudaSetDevice");
      current = ordinal_;
    }
  }

  template <int kHd>
  void LaunchPrefill(const dim3& grid, const PrefillArgs& a) {
    constexpr size_t bytes = PrefillSmem<kHd>::bytes;
    static bool raised = false;  // the dynamic shared memory limit is per kernel, set once
    if (!raised) {
      Check(cudaFuncSetAttribute(PrefillAttentionKernel<kHd>,
                                 cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 static_cast<int>(bytes)),
            "PagedAttention (prefill): shared memory limit");
      raised = true;
    }
    PrefillAttentionKernel<kHd><<<grid, 128, bytes, stream_>>>(a);
  }

  static void RequireF32Cache(const KvCacheLayer& cache, const char* op) {
    if (cache.dtype != DType::kF32) Die(op, "the CUDA backend keeps the KV cache in fp32");
  }

  // y = x w^T (+ bias) for bf16 w and m <= kGemvRows.
  void Gemv(const Tensor& x, const Tensor& w, const float* bias, const Tensor& y) {
    const int64_t m = x.rows, n = w.rows, k = w.cols;
    const unsigned grid = Blocks(n, kGemvWarps);
    const auto* wp = static_cast<const __nv_bfloat16*>(w.data);
    switch (m) {
#define BE_GEMV_CASE(M)                                                                       \
  case M:                                                                                     \
    GemvBf16Kernel<M><<<grid, kGemvWarps * 32, 0, stream_>>>(x.f32(), x.stride, wp, w.stride, \
                                                             bias, y.f32(), y.stride, n, k);  \
    break;
      BE_GEMV_CASE(1)
      BE_GEMV_CASE(2)
      BE_GEMV_CASE(3)
      BE_GEMV_CASE(4)
      BE_GEMV_CASE(5)
      BE_GEMV_CASE(6)
      BE_GEMV_CASE(7)
      BE_GEMV_CASE(8)
#undef BE_GEMV_CASE
    }
    CheckLaunch("MatMul (gemv)");
  }

  // Whether x (m, k) and w (n, k) suit the streaming kernel.
  static bool GemvFits(const Tensor& x, const Tensor& w) {
    return w.dtype == DType::kBF16 && x.rows <= kGemvRows && w.cols % 8 == 0 && x.stride % 4 == 0 &&
           w.stride % 8 == 0 && reinterpret_cast<uintptr_t>(x.data) % 16 == 0 &&
           reinterpret_cast<uintptr_t>(w.data) % 16 == 0;
  }

  DeviceInfo info_;
  int64_t sms_ = 1;
  int ordinal_ = 0;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  void* workspace_ = nullptr;
  Scratch narrow_, attn_acc_, attn_ml_;
  bool capturing_ = false;
  std::vector<cudaGraphExec_t> graphs_;
};

}  // namespace

Result<std::unique_ptr<Backend>> CreateCudaBackend(const BackendOptions& options) {
  return CudaBackend::Create(options);
}

}  // namespace breakeven::kernels
