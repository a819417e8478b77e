// The CPU backend: the oracle every other backend is compared with.
//
// Design. One threading runtime: OpenMP splits every op over the backend's threads, and
// OpenBLAS runs single-threaded inside each share (two thread pools spinning on the same cores
// cost more than either saves). Matrix products split the weight rows: up to 32 activation rows
// (decode batches) a share goes to SmallMatMul, which streams each weight row once; above that
// to cblas_sgemm, whose packing then pays for itself. f16/bf16 weights are widened to fp32 a
// panel of rows at a time, so the narrow copy is what streams from memory. Attention reads the
// pages directly for decode rows; prefill chunks gather a KV head's keys and values into
// contiguous panels and do QK^T and PV as two sgemm calls per query head, with the causal mask
// and a numerically stable softmax in between. Elementwise ops are loops over contiguous rows
// that the compiler vectorises. "Device" memory is 64-byte aligned host memory, so copies are
// memcpy and Synchronize has nothing to wait for.
#include "kernels/cpu/cpu_backend.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/cpu/small_matmul.h"

namespace breakeven::kernels {

namespace {

class HostBuffer final : public Buffer {
 public:
  HostBuffer(void* data, size_t bytes) : data_(data), bytes_(bytes) {}
  ~HostBuffer() override { std::free(data_); }
  void* data() const override { return data_; }
  size_t bytes() const override { return bytes_; }

 private:
  void* data_;
  size_t bytes_;
};

// Up to this many activation rows, matrix products stream the weights once (small_matmul.cc);
// above it sgemm's packing pays for itself.
constexpr int64_t kSmallMatMulRows = 32;

// Up to this many query rows of one sequence, attention reads the pages directly; longer chunks
// gather K and V into panels for two sgemm calls per head.
constexpr int64_t kDirectAttentionRows = 4;

// Rows of a narrow-typed weight widened per panel; sized to stay in cache.
constexpr int64_t kWidenPanelRows = 64;

// Splits [0, n) into `parts` ranges whose starts are multiples of `align`.
inline std::pair<int64_t, int64_t> Share(int64_t n, int part, int parts, int64_t align) {
  const int64_t units = (n + align - 1) / align;
  const int64_t begin = units * part / parts * align;
  const int64_t end = std::min(n, units * (part + 1) / parts * align);
  return {std::min(begin, n), end};
}

float Silu(float g) { return g / (1.0f + std::exp(-g)); }

// One query row of one head over `visible` cached positions of KV head g: scores, softmax,
// weighted sum of values. Walks the block table block by block. Cloned per ISA so the head_dim
// loops use the widest vectors the machine has.
__attribute__((target_clones("avx512f", "avx2", "default"))) void AttendRow(
    const float* qh, float* oh, int64_t visible, const int32_t* table, const KvCacheLayer& cache,
    int64_t g, float scale, float* scores) {
  const int64_t hd = cache.head_dim, bs = cache.block_size;
  const int64_t width = cache.num_kv_heads * hd;
  const auto* kc = static_cast<const float*>(cache.k) + g * hd;
  const auto* vc = static_cast<const float*>(cache.v) + g * hd;
  float max = -std::numeric_limits<float>::infinity();
  for (int64_t b0 = 0; b0 < visible; b0 += bs) {
    const float* kb = kc + static_cast<int64_t>(table[b0 / bs]) * bs * width;
    for (int64_t t = 0; t < std::min(bs, visible - b0); ++t) {
      const float* kr = kb + t * width;
      float dot = 0;
#pragma omp simd reduction(+ : dot)
      for (int64_t e = 0; e < hd; ++e) dot += qh[e] * kr[e];
      scores[b0 + t] = dot * scale;
      max = std::max(max, scores[b0 + t]);
    }
  }
  double sum = 0;
  for (int64_t p = 0; p < visible; ++p) {
    scores[p] = std::exp(scores[p] - max);
    sum += scores[p];
  }
  const float inv = static_cast<float>(1.0 / sum);
  std::fill(oh, oh + hd, 0.0f);
  for (int64_t b0 = 0; b0 < visible; b0 += bs) {
    const float* vb = vc + static_cast<int64_t>(table[b0 / bs]) * bs * width;
    for (int64_t t = 0; t < std::min(bs, visible - b0); ++t) {
      const float* vr = vb + t * width;
      const float s = scores[b0 + t] * inv;
#pragma omp simd
      for (int64_t e = 0; e < hd; ++e) oh[e] += s * vr[e];
    }
  }
}

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(const BackendOptions& options) {
    device_ = DescribeCpu();
    threads_ = options.threads > 0 ? options.threads : static_cast<int>(device_.compute_units);
    openblas_set_num_threads(1);
    scratch_.resize(static_cast<size_t>(threads_));
  }

  std::string_view name() const override { return "cpu"; }
  DeviceInfo device() const override { return device_; }

  Result<std::unique_ptr<Buffer>> Allocate(size_t bytes) override {
    size_t rounded = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded);
    if (p == nullptr) return ResourceExhausted("cpu: cannot allocate {} bytes", bytes);
    return std::unique_ptr<Buffer>(new HostBuffer(p, bytes));
  }
  void CopyToDevice(void* dst, const void* src, size_t bytes) override {
    std::memcpy(dst, src, bytes);
  }
  void CopyToHost(void* dst, const void* src, size_t bytes) override {
    std::memcpy(dst, src, bytes);
  }
  void Synchronize() override {}

  void MatMul(const Tensor& x, const Tensor& w, const float* bias, const Tensor& y) override {
    const int64_t m = x.rows, n = w.rows;
    if (m == 0 || n == 0) return;
    const int parts = PartsFor(n / 16);
#pragma omp parallel num_threads(parts) if (parts > 1)
    {
      const int t = omp_get_thread_num();
      auto [j0, j1] = Share(n, t, parts, 16);
      if (j1 > j0) MatMulRows(x, w, y, j0, j1, t);
    }
    if (bias != nullptr) {
      for (int64_t i = 0; i < m; ++i) {
        float* row = y.row(i);
        for (int64_t j = 0; j < n; ++j) row[j] += bias[j];
      }
    }
  }

  void RmsNorm(const Tensor& x, const float* weight, float eps, const Tensor& out) override {
    ForRows(x.rows, x.cols, [&](int64_t i) { NormRow(x.row(i), weight, eps, x.cols, out.row(i)); });
  }

  void AddRmsNorm(const Tensor& residual, const Tensor& delta, const float* weight, float eps,
                  const Tensor& out) override {
    ForRows(residual.rows, residual.cols, [&](int64_t i) {
      float* r = residual.row(i);
      const float* d = delta.row(i);
      for (int64_t j = 0; j < residual.cols; ++j) r[j] += d[j];
      NormRow(r, weight, eps, residual.cols, out.row(i));
    });
  }

  void SiluMul(const Tensor& gate_up, const Tensor& out) override {
    const int64_t n = out.cols;
    ForRows(out.rows, n, [&](int64_t i) {
      const float* g = gate_up.row(i);
      const float* u = g + n;
      float* o = out.row(i);
      for (int64_t j = 0; j < n; ++j) o[j] = Silu(g[j]) * u[j];
    });
  }

  void Rope(const Tensor& q, const Tensor& k, const Tensor& cos, const Tensor& sin,
            int64_t head_dim) override {
    const int64_t half = head_dim / 2;
    auto rotate = [&](const Tensor& t, int64_t i) {
      const float* c = cos.row(i);
      const float* s = sin.row(i);
      for (int64_t h = 0; h < t.cols / head_dim; ++h) {
        float* x = t.row(i) + h * head_dim;
        for (int64_t j = 0; j < half; ++j) {
          float a = x[j], b = x[j + half];
          x[j] = a * c[j] - b * s[j];
          x[j + half] = b * c[j] + a * s[j];
        }
      }
    };
    ForRows(q.rows, q.cols + k.cols, [&](int64_t i) {
      rotate(q, i);
      rotate(k, i);
    });
  }

  void Embedding(const Tensor& table, const int32_t* ids, int64_t n, int64_t vocab_begin,
                 const Tensor& out) override {
    const size_t elem = DTypeSize(table.dtype);
    for (int64_t i = 0; i < n; ++i) {
      int64_t row = static_cast<int64_t>(ids[i]) - vocab_begin;
      float* o = out.row(i);
      if (row < 0 || row >= table.rows) {
        std::fill(o, o + out.cols, 0.0f);
        continue;
      }
      const auto* src = static_cast<const uint8_t*>(table.data) + row * table.stride * elem;
      ToF32(src, table.dtype, static_cast<size_t>(out.cols), o);
    }
  }

  void WriteKv(const Tensor& k, const Tensor& v, const int32_t* slots,
               const KvCacheLayer& cache) override {
    const int64_t width = cache.num_kv_heads * cache.head_dim;  // one token's row
    auto* kc = static_cast<float*>(cache.k);
    auto* vc = static_cast<float*>(cache.v);
    for (int64_t i = 0; i < k.rows; ++i) {
      if (slots[i] < 0) continue;
      std::memcpy(kc + slots[i] * width, k.row(i), width * sizeof(float));
      std::memcpy(vc + slots[i] * width, v.row(i), width * sizeof(float));
    }
  }

  void PagedAttention(const Tensor& q, const KvCacheLayer& cache, const AttentionBatch& batch,
                      int64_t num_heads, float scale, const Tensor& out) override {
    // One task per (sequence, KV head); tasks are independent and write disjoint outputs.
    const int64_t nkv = cache.num_kv_heads;
    const int64_t tasks = batch.num_seqs * nkv;
    const int parts = PartsFor(tasks);
#pragma omp parallel for num_threads(parts) schedule(dynamic) if (parts > 1)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t s = task / nkv, g = task % nkv;
      const int64_t q0 = batch.query_start[s];
      const int64_t nq = batch.query_start[s + 1] - q0;
      if (nq == 0) continue;
      const int32_t* table = batch.block_tables + s * batch.max_blocks_per_seq;
      Scratch& scratch = scratch_[static_cast<size_t>(omp_get_thread_num())];
      if (nq <= kDirectAttentionRows) {
        DirectAttention(q, out, q0, nq, batch.context_lens[s], table, cache, num_heads, g, scale,
                        scratch);
      } else {
        PanelAttention(q, out, q0, nq, batch.context_lens[s], table, cache, num_heads, g, scale,
                       scratch);
      }
    }
  }

  void GatherRows(const Tensor& src, const int32_t* rows, int64_t n, const Tensor& out) override {
    for (int64_t i = 0; i < n; ++i) {
      std::memcpy(out.row(i), src.row(rows[i]), static_cast<size_t>(src.cols) * sizeof(float));
    }
  }

  void CopyBlocks(const KvCacheLayer& cache, const int32_t* src, const int32_t* dst,
                  int64_t n) override {
    const size_t block_bytes =
        static_cast<size_t>(cache.block_size * cache.num_kv_heads * cache.head_dim) * sizeof(float);
    for (int64_t i = 0; i < n; ++i) {
      std::memcpy(static_cast<uint8_t*>(cache.k) + dst[i] * block_bytes,
                  static_cast<const uint8_t*>(cache.k) + src[i] * block_bytes, block_bytes);
      std::memcpy(static_cast<uint8_t*>(cache.v) + dst[i] * block_bytes,
                  static_cast<const uint8_t*>(cache.v) + src[i] * block_bytes, block_bytes);
    }
  }

 private:
  struct Scratch {
    std::vector<float> a, b, c;
    float* Grow(std::vector<float>& v, int64_t n) {
      if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
      return v.data();
    }
  };

  // Threads worth using for `work` independent pieces: one per piece at most.
  int PartsFor(int64_t work) const {
    return static_cast<int>(std::clamp<int64_t>(work, 1, threads_));
  }

  // Runs fn(i) for every row; rows are split over threads when there are enough elements.
  template <typename Fn>
  void ForRows(int64_t rows, int64_t cols, Fn fn) {
    const int parts = rows * cols >= 16384 ? PartsFor(rows) : 1;
#pragma omp parallel for num_threads(parts) schedule(static) if (parts > 1)
    for (int64_t i = 0; i < rows; ++i) fn(i);
  }

  // Output columns [j0, j1) of y = x w^T, single-threaded.
  void MatMulRows(const Tensor& x, const Tensor& w, const Tensor& y, int64_t j0, int64_t j1,
                  int thread) {
    const int64_t m = x.rows, k = x.cols, n = j1 - j0;
    if (w.dtype == DType::kF32) {
      const float* wj = static_cast<const float*>(w.data) + j0 * w.stride;
      if (m <= kSmallMatMulRows) {
        SmallMatMul(x.f32(), x.stride, wj, w.stride, y.f32() + j0, y.stride, m, n, k);
      } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, x.f32(), x.stride, wj,
                    w.stride, 0.0f, y.f32() + j0, y.stride);
      }
      return;
    }
    float* panel = scratch_[static_cast<size_t>(thread)].Grow(
        scratch_[static_cast<size_t>(thread)].a, kWidenPanelRows * k);
    const size_t elem = DTypeSize(w.dtype);
    for (int64_t r0 = j0; r0 < j1; r0 += kWidenPanelRows) {
      const int64_t rows = std::min(kWidenPanelRows, j1 - r0);
      for (int64_t r = 0; r < rows; ++r) {
        const auto* src = static_cast<const uint8_t*>(w.data) + (r0 + r) * w.stride * elem;
        ToF32(src, w.dtype, static_cast<size_t>(k), panel + r * k);
      }
      if (m <= kSmallMatMulRows) {
        SmallMatMul(x.f32(), x.stride, panel, k, y.f32() + r0, y.stride, m, rows, k);
      } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, rows, k, 1.0f, x.f32(), x.stride,
                    panel, k, 0.0f, y.f32() + r0, y.stride);
      }
    }
  }

  static int64_t Slot(const int32_t* table, int64_t pos, int64_t block_size) {
    return static_cast<int64_t>(table[pos / block_size]) * block_size + pos % block_size;
  }

  // Query rows [q0, q0 + nq) of one sequence, the query heads of KV head g, read straight from
  // the pages: no panel copies, each K and V row touched once per query head.
  static void DirectAttention(const Tensor& q, const Tensor& out, int64_t q0, int64_t nq,
                              int64_t ctx, const int32_t* table, const KvCacheLayer& cache,
                              int64_t num_heads, int64_t g, float scale, Scratch& scratch) {
    const int64_t hd = cache.head_dim;
    const int64_t group = num_heads / cache.num_kv_heads;
    float* scores = scratch.Grow(scratch.b, ctx);
    for (int64_t h = g * group; h < (g + 1) * group; ++h) {
      for (int64_t j = 0; j < nq; ++j) {
        AttendRow(q.row(q0 + j) + h * hd, out.row(q0 + j) + h * hd, ctx - nq + j + 1, table, cache,
                  g, scale, scores);
      }
    }
  }

  // The same for a prefill chunk: gather KV head g into panels, then two sgemm calls per head.
  static void PanelAttention(const Tensor& q, const Tensor& out, int64_t q0, int64_t nq,
                             int64_t ctx, const int32_t* table, const KvCacheLayer& cache,
                             int64_t num_heads, int64_t g, float scale, Scratch& scratch) {
    const int64_t hd = cache.head_dim, width = cache.num_kv_heads * hd;
    const int64_t group = num_heads / cache.num_kv_heads;
    float* kpanel = scratch.Grow(scratch.a, ctx * hd);
    float* vpanel = scratch.Grow(scratch.b, ctx * hd);
    float* scores = scratch.Grow(scratch.c, nq * ctx);
    const auto* kc = static_cast<const float*>(cache.k);
    const auto* vc = static_cast<const float*>(cache.v);
    for (int64_t p = 0; p < ctx; ++p) {
      const int64_t slot = Slot(table, p, cache.block_size);
      std::memcpy(kpanel + p * hd, kc + slot * width + g * hd, hd * sizeof(float));
      std::memcpy(vpanel + p * hd, vc + slot * width + g * hd, hd * sizeof(float));
    }
    for (int64_t h = g * group; h < (g + 1) * group; ++h) {
      const float* qh = q.row(q0) + h * hd;
      float* oh = out.row(q0) + h * hd;
      // scores (nq, ctx) = scale * Q_h (nq, hd) * K^T
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, ctx, hd, scale, qh, q.stride, kpanel,
                  hd, 0.0f, scores, ctx);
      for (int64_t j = 0; j < nq; ++j) {
        SoftmaxRow(scores + j * ctx, ctx - nq + j + 1, ctx);  // causal: 0..ctx-nq+j
      }
      // out_h (nq, hd) = P (nq, ctx) * V (ctx, hd)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, hd, ctx, 1.0f, scores, ctx, vpanel,
                  hd, 0.0f, oh, out.stride);
    }
  }

  static void NormRow(const float* x, const float* weight, float eps, int64_t n, float* out) {
    double sum = 0;  // a double accumulator keeps long rows exact enough for the oracle
    for (int64_t j = 0; j < n; ++j) sum += static_cast<double>(x[j]) * x[j];
    const float inv = static_cast<float>(1.0 / std::sqrt(sum / static_cast<double>(n) + eps));
    for (int64_t j = 0; j < n; ++j) out[j] = x[j] * inv * weight[j];
  }

  // Softmax over the first `visible` entries of a row of `n`; the rest become 0.
  static void SoftmaxRow(float* row, int64_t visible, int64_t n) {
    float max = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < visible; ++i) max = std::max(max, row[i]);
    double sum = 0;
    for (int64_t i = 0; i < visible; ++i) {
      row[i] = std::exp(row[i] - max);
      sum += row[i];
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t i = 0; i < visible; ++i) row[i] *= inv;
    std::fill(row + visible, row + n, 0.0f);
  }

  DeviceInfo device_;
  int threads_ = 1;
  std::vector<Scratch> scratch_;  // one per thread
};

}  // namespace

std::unique_ptr<Backend> CreateCpuBackend(const BackendOptions& options) {
  return std::make_unique<CpuBackend>(options);
}

}  // namespace breakeven::kernels
