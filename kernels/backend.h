// The compute backend interface: device memory and the ops a Llama forward pass needs, drawn
// once so the CPU backend (the oracle), the CUDA backend and a simulated backend plug in
// without touching the engine. Shaped after ggml-backend: the engine owns the graph (the order
// of ops), the backend owns memory and kernels.
//
// Conventions. A Tensor is a 2-D row-major view of device memory. Activations are fp32;
// weights may be f32, f16 or bf16 (converted as they are used, accumulation in fp32). Integer
// inputs (token ids, positions, slots, block tables) live in device memory too: the engine
// copies them in once per step. Ops run in order on one stream; Synchronize() waits for them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "kernels/device.h"
#include "kernels/dtype.h"

namespace breakeven::kernels {

struct Tensor {
  void* data = nullptr;
  DType dtype = DType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t stride = 0;  // elements from one row to the next; == cols when packed

  static Tensor F32(float* data, int64_t rows, int64_t cols) {
    return {data, DType::kF32, rows, cols, cols};
  }
  float* f32() const { return static_cast<float*>(data); }
  float* row(int64_t i) const { return f32() + i * stride; }
  // Views of a row range / column range sharing this tensor's memory.
  Tensor Rows(int64_t begin, int64_t count) const;
  Tensor Cols(int64_t begin, int64_t count) const;
  size_t bytes() const { return static_cast<size_t>(rows * stride) * DTypeSize(dtype); }
};

// Device memory owned by its holder.
class Buffer {
 public:
  virtual ~Buffer() = default;
  virtual void* data() const = 0;
  virtual size_t bytes() const = 0;
};

// One layer's paged KV cache: K and V, each (num_blocks, block_size, num_kv_heads, head_dim).
struct KvCacheLayer {
  void* k = nullptr;
  void* v = nullptr;
  DType dtype = DType::kF32;
  int64_t num_blocks = 0;
  int64_t block_size = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
};

// A step's sequences as attention sees them (all pointers in device memory).
struct AttentionBatch {
  int64_t num_seqs = 0;
  const int32_t* query_start = nullptr;   // (num_seqs + 1): seq s owns query rows [qs[s], qs[s+1])
  const int32_t* context_lens = nullptr;  // (num_seqs): tokens in the cache, this step's included
  const int32_t* block_tables = nullptr;  // (num_seqs, max_blocks_per_seq)
  int64_t max_blocks_per_seq = 0;
  int64_t max_query_len = 0;
  int64_t max_context_len = 0;
};

// One sample to draw from a row of logits (device memory, an array per step). The random number
// is drawn on the host from the sequence's own generator, so a sample's tokens do not depend on
// which backend drew them.
struct SampleSpec {
  int32_t row = 0;        // logits row
  int32_t top_k = 0;      // 0: no top-k cut
  float temperature = 0;  // <= 0: greedy (lowest id wins a tie)
  float top_p = 1;        // 1: no nucleus cut
  double uniform = 0;     // in [0, 1): where the draw lands in the kept mass
};

// The dummy weight source's values, made where they live: element (r, c) of a block cut from a
// tensor with `full_cols` columns at (row_begin, col_begin) is
//   offset + scale * u,  u = (SplitMix64(key + (row_begin + r) * full_cols + col_begin + c) >> 11)
//                            * 2^-53 * 2 - 1   (computed in double, rounded to float)
struct UniformFill {
  uint64_t key = 0;
  int64_t row_begin = 0;
  int64_t col_begin = 0;
  int64_t full_cols = 0;
  float scale = 1;
  float offset = 0;
};

struct BackendOptions {
  int threads = 0;  // CPU: threads for matrix products; 0 = the cores this process may use
  int device = 0;   // CUDA ordinal
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  virtual DeviceInfo device() const = 0;

  // ---- memory
  virtual Result<std::unique_ptr<Buffer>> Allocate(size_t bytes) = 0;
  virtual void CopyToDevice(void* dst, const void* src, size_t bytes) = 0;
  virtual void CopyToHost(void* dst, const void* src, size_t bytes) = 0;
  virtual void Synchronize() = 0;

  // ---- ops
  // y (m, n) = x (m, k) * w^T + bias, for w (n, k) in any dtype; bias (n) may be null.
  virtual void MatMul(const Tensor& x, const Tensor& w, const float* bias, const Tensor& y) = 0;
  // out = x / sqrt(mean(x^2) + eps) * weight, row by row; weight (cols).
  virtual void RmsNorm(const Tensor& x, const float* weight, float eps, const Tensor& out) = 0;
  // residual += delta; out = RmsNorm(residual). The residual stream's add fused with the norm.
  virtual void AddRmsNorm(const Tensor& residual, const Tensor& delta, const float* weight,
                          float eps, const Tensor& out) = 0;
  // out (m, n) = silu(gate_up[:, :n]) * gate_up[:, n:], for gate_up (m, 2n).
  virtual void SiluMul(const Tensor& gate_up, const Tensor& out) = 0;
  // Rotary position embedding in place on every head of q (T, nq * head_dim) and k
  // (T, nkv * head_dim), in the Hugging Face "rotate_half" layout: element i pairs with
  // i + head_dim / 2. cos, sin (T, head_dim / 2) hold each token's angles.
  virtual void Rope(const Tensor& q, const Tensor& k, const Tensor& cos, const Tensor& sin,
                    int64_t head_dim) = 0;
  // out (n, hidden): row i = table row ids[i] - vocab_begin when that is inside the table,
  // zeros otherwise (the vocabulary-parallel lookup; an all-reduce completes it).
  virtual void Embedding(const Tensor& table, const int32_t* ids, int64_t n, int64_t vocab_begin,
                         const Tensor& out) = 0;
  // Stores k and v rows (T, nkv * head_dim) at cache slots (T); slot = block * block_size +
  // offset in the block.
  virtual void WriteKv(const Tensor& k, const Tensor& v, const int32_t* slots,
                       const KvCacheLayer& cache) = 0;
  // out (T, nq * head_dim): causal attention of each query row over its sequence's cached
  // tokens. Query row j of sequence s sits at position context_len - query_len + j and sees
  // positions 0..that. Query head h reads KV head h / (nq / nkv).
  virtual void PagedAttention(const Tensor& q, const KvCacheLayer& cache,
                              const AttentionBatch& batch, int64_t num_heads, float scale,
                              const Tensor& out) = 0;
  // out row i = src row rows[i], for i < n.
  virtual void GatherRows(const Tensor& src, const int32_t* rows, int64_t n, const Tensor& out) = 0;
  // Copies whole KV blocks src[i] -> dst[i] (copy-on-write of a shared block).
  virtual void CopyBlocks(const KvCacheLayer& cache, const int32_t* src, const int32_t* dst,
                          int64_t n) = 0;
  // tokens[i] = the token drawn for specs[i] from its logits row (logits (rows, vocab)), by
  // SampleRow's rule (kernels/sampling.h). specs and tokens are device memory. The default
  // copies the rows to the host and samples there.
  virtual void Sample(const Tensor& logits, const SampleSpec* specs, int64_t n, int32_t* tokens);

  // ---- fused ops: the default runs the two ops; a backend may do both in one pass.
  // Rope(q, k, ...) then WriteKv(k, v, slots, cache).
  virtual void RopeWriteKv(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& cos,
                           const Tensor& sin, int64_t head_dim, const int32_t* slots,
                           const KvCacheLayer& cache) {
    Rope(q, k, cos, sin, head_dim);
    WriteKv(k, v, slots, cache);
  }

  // ---- optional abilities
  // Fills dst (rows x cols of dtype, packed) as `fill` says. False when this backend does not
  // make values itself; the caller then makes them on the host and copies them in.
  virtual bool FillUniform(void* dst, DType dtype, int64_t rows, int64_t cols,
                           const UniformFill& fill) {
    (void)dst, (void)dtype, (void)rows, (void)cols, (void)fill;
    return false;
  }
  // Whether device pointers are host memory (the CPU backend): host collectives may use them.
  virtual bool host_addressable() const { return false; }
  // The native stream ops run on (cudaStream_t for CUDA), for collectives that join it.
  virtual void* native_stream() const { return nullptr; }
  // Graph capture of a fixed sequence of ops (CUDA graphs): between BeginCapture and EndCapture
  // ops are recorded, not run; Replay(id) runs them again with the inputs then in memory.
  // Pointers and sizes are frozen at capture; only memory contents may change between replays.
  virtual bool SupportsGraphs() const { return false; }
  virtual Status BeginCapture();
  virtual Result<int> EndCapture();
  virtual Status Replay(int graph);
};

// "cpu", or "cuda" when this build has the CUDA backend. Errors name the backend.
Result<std::unique_ptr<Backend>> CreateBackend(std::string_view name,
                                               const BackendOptions& options = {});

}  // namespace breakeven::kernels
