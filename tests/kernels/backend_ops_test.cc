// Every op of every backend present, table-driven (llama.cpp's test-backend-ops). The CPU
// backend is checked against plain double-precision loops written here; any other backend is
// checked against the CPU backend on the same inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>

#include "kernels/backend.h"

namespace breakeven::kernels {
namespace {

using Floats = std::vector<float>;

Floats Random(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-scale, scale);
  Floats v(n);
  for (float& x : v) x = u(rng);
  return v;
}

// Device copies of host data, freed with the fixture.
class Device {
 public:
  explicit Device(Backend& b) : b_(b) {}
  template <typename T>
  T* Put(const std::vector<T>& host) {
    auto buf = b_.Allocate(host.size() * sizeof(T));
    EXPECT_TRUE(buf.ok());
    b_.CopyToDevice((*buf)->data(), host.data(), host.size() * sizeof(T));
    T* p = static_cast<T*>((*buf)->data());
    owned_.push_back(std::move(buf).value());
    return p;
  }
  Tensor F32(const Floats& host, int64_t rows, int64_t cols) {
    return Tensor::F32(Put(host), rows, cols);
  }
  Floats Get(const Tensor& t) {
    b_.Synchronize();
    Floats out(static_cast<size_t>(t.rows * t.cols));
    for (int64_t r = 0; r < t.rows; ++r) {
      b_.CopyToHost(out.data() + r * t.cols, t.row(r), static_cast<size_t>(t.cols) * sizeof(float));
    }
    return out;
  }

 private:
  Backend& b_;
  std::vector<std::unique_ptr<Buffer>> owned_;
};

struct OpCase {
  std::string name;
  // Runs the op on `b` and returns its output.
  std::function<Floats(Backend& b)> run;
  // The same op in plain double-precision loops.
  std::function<std::vector<double>()> reference;
  double tolerance;  // max |a - b| / max |reference|
};

double RelErr(const std::vector<double>& ref, const Floats& got) {
  double diff = 0, mag = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    diff = std::max(diff, std::abs(ref[i] - got[i]));
    mag = std::max(mag, std::abs(ref[i]));
  }
  return ref.size() == got.size() ? diff / std::max(mag, 1e-30) : 1e30;
}

// Causal paged attention in double: query row j of sequence s sits at position
// ctx[s] - query_len + j; head h reads KV head h / (nq / nkv).
std::vector<double> AttentionReference(const Floats& q, const Floats& kc, const Floats& vc,
                                       const std::vector<int32_t>& qs,
                                       const std::vector<int32_t>& ctx,
                                       const std::vector<int32_t>& tables, int64_t width,
                                       int64_t bs, int64_t nq, int64_t nkv, int64_t hd,
                                       float scale) {
  std::vector<double> out(static_cast<size_t>(qs.back() * nq * hd), 0.0);
  for (size_t s = 0; s + 1 < qs.size(); ++s) {
    const int64_t n_q = qs[s + 1] - qs[s];
    for (int64_t j = 0; j < n_q; ++j) {
      const int64_t row = qs[s] + j, pos = ctx[s] - n_q + j;
      for (int64_t h = 0; h < nq; ++h) {
        const int64_t g = h / (nq / nkv);
        auto at = [&](const Floats& c, int64_t t, int64_t e) {
          const int64_t blk = tables[s * width + t / bs];
          return double(c[((blk * bs + t % bs) * nkv + g) * hd + e]);
        };
        std::vector<double> p(pos + 1);
        double mx = -1e300, sum = 0;
        for (int64_t t = 0; t <= pos; ++t) {
          double dot = 0;
          for (int64_t e = 0; e < hd; ++e) dot += q[(row * nq + h) * hd + e] * at(kc, t, e);
          p[t] = dot * scale;
          mx = std::max(mx, p[t]);
        }
        for (double& v : p) sum += (v = std::exp(v - mx));
        for (int64_t t = 0; t <= pos; ++t)
          for (int64_t e = 0; e < hd; ++e)
            out[(row * nq + h) * hd + e] += p[t] / sum * at(vc, t, e);
      }
    }
  }
  return out;
}

std::vector<OpCase> Cases() {
  std::vector<OpCase> cases;

  // m = 5 takes the streaming small-batch kernel, m = 40 sgemm; odd k exercises the vector
  // tails; n spans two widening panels.
  // On CUDA: bf16 with k a multiple of 8 and m <= 8 takes the streaming kernel, larger m
  // cuBLAS on the tensor cores; odd k takes cuBLAS at any m.
  struct MatMulShape {
    DType wt;
    int64_t m, k;
  };
  for (auto [wt, m, k] : {MatMulShape{DType::kF32, 5, 70}, MatMulShape{DType::kF32, 40, 70},
                          MatMulShape{DType::kBF16, 5, 70}, MatMulShape{DType::kBF16, 40, 70},
                          MatMulShape{DType::kF16, 5, 70}, MatMulShape{DType::kBF16, 1, 1024},
                          MatMulShape{DType::kBF16, 8, 264}, MatMulShape{DType::kBF16, 24, 264}}) {
    const int64_t n = 130;
    Floats x = Random(m * k, 1), w = Random(n * k, 2), bias = Random(n, 3);
    // Weights as stored: rounded to the narrow type, so the reference sees the same values.
    std::vector<uint8_t> stored(static_cast<size_t>(n * k) * DTypeSize(wt));
    FromF32(w.data(), wt, w.size(), stored.data());
    Floats wq(w.size());
    ToF32(stored.data(), wt, w.size(), wq.data());
    cases.push_back({"MatMul_" + std::string(DTypeName(wt)) + "_m" + std::to_string(m) + "_k" +
                         std::to_string(k),
                     [=](Backend& b) {
                       Device d(b);
                       Tensor tx = d.F32(x, m, k);
                       Tensor tw{d.Put(stored), wt, n, k, k};
                       Tensor ty = d.F32(Floats(m * n), m, n);
                       b.MatMul(tx, tw, d.Put(bias), ty);
                       return d.Get(ty);
                     },
                     [=] {
                       std::vector<double> y(m * n);
                       for (int64_t i = 0; i < m; ++i)
                         for (int64_t j = 0; j < n; ++j) {
                           double s = bias[j];
                           for (int64_t t = 0; t < k; ++t)
                             s += double(x[i * k + t]) * wq[j * k + t];
                           y[i * n + j] = s;
                         }
                       return y;
                     },
                     1e-5});
  }

  {
    const int64_t rows = 4, cols = 96;
    Floats x = Random(rows * cols, 4, 3.0f), w = Random(cols, 5), delta = Random(rows * cols, 6);
    cases.push_back({"RmsNorm",
                     [=](Backend& b) {
                       Device d(b);
                       Tensor out = d.F32(Floats(rows * cols), rows, cols);
                       b.RmsNorm(d.F32(x, rows, cols), d.Put(w), 1e-5f, out);
                       return d.Get(out);
                     },
                     [=] {
                       std::vector<double> y(rows * cols);
                       for (int64_t i = 0; i < rows; ++i) {
                         double ss = 0;
                         for (int64_t j = 0; j < cols; ++j)
                           ss += double(x[i * cols + j]) * x[i * cols + j];
                         double inv = 1 / std::sqrt(ss / cols + 1e-5);
                         for (int64_t j = 0; j < cols; ++j)
                           y[i * cols + j] = x[i * cols + j] * inv * w[j];
                       }
                       return y;
                     },
                     1e-6});
    cases.push_back({"AddRmsNorm",
                     [=](Backend& b) {
                       Device d(b);
                       Tensor res = d.F32(x, rows, cols);
                       Tensor out = d.F32(Floats(rows * cols), rows, cols);
                       b.AddRmsNorm(res, d.F32(delta, rows, cols), d.Put(w), 1e-5f, out);
                       Floats both = d.Get(res);  // the residual is updated in place too
                       Floats normed = d.Get(out);
                       both.insert(both.end(), normed.begin(), normed.end());
                       return both;
                     },
                     [=] {
                       std::vector<double> res(rows * cols), y(rows * cols);
                       for (int64_t i = 0; i < rows * cols; ++i) res[i] = double(x[i]) + delta[i];
                       for (int64_t i = 0; i < rows; ++i) {
                         double ss = 0;
                         for (int64_t j = 0; j < cols; ++j)
                           ss += res[i * cols + j] * res[i * cols + j];
                         double inv = 1 / std::sqrt(ss / cols + 1e-5);
                         for (int64_t j = 0; j < cols; ++j)
                           y[i * cols + j] = res[i * cols + j] * inv * w[j];
                       }
                       res.insert(res.end(), y.begin(), y.end());
                       return res;
                     },
                     1e-6});
  }

  {
    const int64_t rows = 3, n = 50;
    Floats gu = Random(rows * 2 * n, 7, 4.0f);
    cases.push_back({"SiluMul",
                     [=](Backend& b) {
                       Device d(b);
                       Tensor out = d.F32(Floats(rows * n), rows, n);
                       b.SiluMul(d.F32(gu, rows, 2 * n), out);
                       return d.Get(out);
                     },
                     [=] {
                       std::vector<double> y(rows * n);
                       for (int64_t i = 0; i < rows; ++i)
                         for (int64_t j = 0; j < n; ++j) {
                           double g = gu[i * 2 * n + j], u = gu[i * 2 * n + n + j];
                           y[i * n + j] = g / (1 + std::exp(-g)) * u;
                         }
                       return y;
                     },
                     1e-6});
  }

  {
    const int64_t t = 3, hd = 8, nq = 4, nkv = 2;
    Floats q = Random(t * nq * hd, 8), k = Random(t * nkv * hd, 9);
    Floats cos(t * hd / 2), sin(t * hd / 2);
    for (int64_t i = 0; i < t * hd / 2; ++i) {
      cos[i] = std::cos(0.3f * i);
      sin[i] = std::sin(0.3f * i);
    }
    auto rotate = [=](const Floats& src, int64_t heads) {
      std::vector<double> out(src.begin(), src.end());
      for (int64_t r = 0; r < t; ++r)
        for (int64_t h = 0; h < heads; ++h)
          for (int64_t j = 0; j < hd / 2; ++j) {
            double a = src[(r * heads + h) * hd + j], bb = src[(r * heads + h) * hd + j + hd / 2];
            double c = cos[r * hd / 2 + j], s = sin[r * hd / 2 + j];
            out[(r * heads + h) * hd + j] = a * c - bb * s;
            out[(r * heads + h) * hd + j + hd / 2] = bb * c + a * s;
          }
      return out;
    };
    cases.push_back({"Rope",
                     [=](Backend& b) {
                       Device d(b);
                       Tensor tq = d.F32(q, t, nq * hd), tk = d.F32(k, t, nkv * hd);
                       b.Rope(tq, tk, d.F32(cos, t, hd / 2), d.F32(sin, t, hd / 2), hd);
                       Floats out = d.Get(tq), ko = d.Get(tk);
                       out.insert(out.end(), ko.begin(), ko.end());
                       return out;
                     },
                     [=] {
                       std::vector<double> out = rotate(q, nq), ko = rotate(k, nkv);
                       out.insert(out.end(), ko.begin(), ko.end());
                       return out;
                     },
                     1e-6});

    // The fused form: q and k rotated, rotated k and v in the cache at the slots (token 1's
    // slot is negative: a padding row that writes nothing), q, k then the cache K and V.
    Floats v = Random(t * nkv * hd, 10);
    const int64_t blocks = 2, bs = 4;
    Floats kc = Random(blocks * bs * nkv * hd, 17), vc = Random(blocks * bs * nkv * hd, 18);
    std::vector<int32_t> slots = {6, -1, 1};
    cases.push_back({"RopeWriteKv",
                     [=](Backend& b) {
                       Device d(b);
                       Tensor tq = d.F32(q, t, nq * hd), tk = d.F32(k, t, nkv * hd);
                       float* kp = d.Put(kc);
                       float* vp = d.Put(vc);
                       KvCacheLayer cache{kp, vp, DType::kF32, blocks, bs, nkv, hd};
                       b.RopeWriteKv(tq, tk, d.F32(v, t, nkv * hd), d.F32(cos, t, hd / 2),
                                     d.F32(sin, t, hd / 2), hd, d.Put(slots), cache);
                       Floats out = d.Get(tq), ko = d.Get(tk);
                       Floats kco = d.Get(Tensor::F32(kp, blocks * bs, nkv * hd));
                       Floats vco = d.Get(Tensor::F32(vp, blocks * bs, nkv * hd));
                       for (const Floats* part : {&ko, &kco, &vco})
                         out.insert(out.end(), part->begin(), part->end());
                       return out;
                     },
                     [=] {
                       std::vector<double> out = rotate(q, nq), ko = rotate(k, nkv);
                       std::vector<double> kk(kc.begin(), kc.end()), vv(vc.begin(), vc.end());
                       const int64_t w = nkv * hd;
                       for (int64_t r = 0; r < t; ++r) {
                         if (slots[r] < 0) continue;
                         for (int64_t e = 0; e < w; ++e) {
                           kk[slots[r] * w + e] = ko[r * w + e];
                           vv[slots[r] * w + e] = v[r * w + e];
                         }
                       }
                       for (const auto* part : {&ko, &kk, &vv})
                         out.insert(out.end(), part->begin(), part->end());
                       return out;
                     },
                     1e-6});
  }

  {
    const int64_t vocab = 10, hidden = 6;
    Floats table = Random(vocab * hidden, 10);
    std::vector<int32_t> ids = {3, 25, 7, 12, 9};  // this slice holds ids 5..14
    cases.push_back({"Embedding",
                     [=](Backend& b) {
                       Device d(b);
                       Tensor out = d.F32(Floats(ids.size() * hidden),
                                          static_cast<int64_t>(ids.size()), hidden);
                       b.Embedding(d.F32(table, vocab, hidden), d.Put(ids),
                                   static_cast<int64_t>(ids.size()), 5, out);
                       return d.Get(out);
                     },
                     [=] {
                       std::vector<double> y(ids.size() * hidden, 0.0);
                       for (size_t i = 0; i < ids.size(); ++i) {
                         int64_t row = ids[i] - 5;
                         if (row < 0 || row >= vocab) continue;
                         for (int64_t j = 0; j < hidden; ++j)
                           y[i * hidden + j] = table[row * hidden + j];
                       }
                       return y;
                     },
                     0});
  }

  {
    // Three sequences over a paged cache of 6 blocks of 4 tokens, GQA 4 query heads on 2 KV
    // heads: seq 0 has 7 cached tokens and queries its last 6 (a prefill chunk: the panel path);
    // seq 1 has 5 and queries 1 (a decode: the direct path); seq 2 has 3 and queries 2.
    const int64_t bs = 4, blocks = 6, nkv = 2, hd = 8, nq = 4, rows = 9;
    Floats kc = Random(blocks * bs * nkv * hd, 11), vc = Random(blocks * bs * nkv * hd, 12);
    std::vector<int32_t> qs = {0, 6, 7, 9}, ctx = {7, 5, 3}, tables = {4, 1, 0, 2, 5, 0, 3, 0, 0};
    Floats q = Random(rows * nq * hd, 13);
    const float scale = 0.35f;
    cases.push_back({"PagedAttention",
                     [=](Backend& b) {
                       Device d(b);
                       KvCacheLayer cache{d.Put(kc), d.Put(vc), DType::kF32, blocks, bs, nkv, hd};
                       AttentionBatch batch;
                       batch.num_seqs = 3;
                       batch.query_start = d.Put(qs);
                       batch.context_lens = d.Put(ctx);
                       batch.block_tables = d.Put(tables);
                       batch.max_blocks_per_seq = 3;
                       batch.max_query_len = 6;
                       batch.max_context_len = 7;
                       Tensor out = d.F32(Floats(rows * nq * hd), rows, nq * hd);
                       b.PagedAttention(d.F32(q, rows, nq * hd), cache, batch, nq, scale, out);
                       return d.Get(out);
                     },
                     [=] {
                       std::vector<double> out(rows * nq * hd, 0.0);
                       for (int s = 0; s < 3; ++s) {
                         int64_t n_q = qs[s + 1] - qs[s];
                         for (int64_t j = 0; j < n_q; ++j) {
                           int64_t row = qs[s] + j, pos = ctx[s] - n_q + j;
                           for (int64_t h = 0; h < nq; ++h) {
                             int64_t g = h / (nq / nkv);
                             std::vector<double> p(pos + 1);
                             double mx = -1e300, sum = 0;
                             auto at = [&](const Floats& c, int64_t t, int64_t e) {
                               int64_t blk = tables[s * 3 + t / bs];
                               return double(c[((blk * bs + t % bs) * nkv + g) * hd + e]);
                             };
                             for (int64_t t = 0; t <= pos; ++t) {
                               double dot = 0;
                               for (int64_t e = 0; e < hd; ++e)
                                 dot += q[(row * nq + h) * hd + e] * at(kc, t, e);
                               p[t] = dot * scale;
                               mx = std::max(mx, p[t]);
                             }
                             for (double& v : p) sum += (v = std::exp(v - mx));
                             for (int64_t t = 0; t <= pos; ++t)
                               for (int64_t e = 0; e < hd; ++e)
                                 out[(row * nq + h) * hd + e] += p[t] / sum * at(vc, t, e);
                           }
                         }
                       }
                       return out;
                     },
                     1e-5});

    // WriteKv then CopyBlocks: the cache contents, K then V, flattened.
    Floats k = Random(2 * nkv * hd, 14), v = Random(2 * nkv * hd, 15);
    std::vector<int32_t> slots = {9, 22};  // block 2 offset 1; block 5 offset 2
    cases.push_back({"WriteKvAndCopyBlocks",
                     [=](Backend& b) {
                       Device d(b);
                       float* kp = d.Put(kc);
                       float* vp = d.Put(vc);
                       KvCacheLayer cache{kp, vp, DType::kF32, blocks, bs, nkv, hd};
                       b.WriteKv(d.F32(k, 2, nkv * hd), d.F32(v, 2, nkv * hd), d.Put(slots), cache);
                       std::vector<int32_t> src = {2}, dst = {3};
                       b.CopyBlocks(cache, d.Put(src), d.Put(dst), 1);
                       Floats out = d.Get(Tensor::F32(kp, blocks * bs, nkv * hd));
                       Floats vo = d.Get(Tensor::F32(vp, blocks * bs, nkv * hd));
                       out.insert(out.end(), vo.begin(), vo.end());
                       return out;
                     },
                     [=] {
                       std::vector<double> kk(kc.begin(), kc.end()), vv(vc.begin(), vc.end());
                       const int64_t w = nkv * hd;
                       for (int i = 0; i < 2; ++i)
                         for (int64_t e = 0; e < w; ++e) {
                           kk[slots[i] * w + e] = k[i * w + e];
                           vv[slots[i] * w + e] = v[i * w + e];
                         }
                       for (int64_t e = 0; e < bs * w; ++e) {
                         kk[3 * bs * w + e] = kk[2 * bs * w + e];
                         vv[3 * bs * w + e] = vv[2 * bs * w + e];
                       }
                       kk.insert(kk.end(), vv.begin(), vv.end());
                       return kk;
                     },
                     0});
  }

  {
    // Model-sized heads (head_dim 128, GQA 8 on 2, blocks of 16): a 40-row prefill chunk (the
    // tiled kernel on CUDA), a decode over 300 cached tokens (three slices of the split-KV
    // kernel) and a decode over 5.
    const int64_t bs = 16, nkv = 2, hd = 128, nq = 8;
    const std::vector<int32_t> qs = {0, 40, 41, 42}, ctx = {40, 300, 5};
    const int64_t width = 19, blocks = 3 * width, rows = 42;
    std::vector<int32_t> tables(3 * width);
    for (size_t i = 0; i < tables.size(); ++i) tables[i] = static_cast<int32_t>((i * 7) % blocks);
    Floats kc = Random(blocks * bs * nkv * hd, 21), vc = Random(blocks * bs * nkv * hd, 22);
    Floats q = Random(rows * nq * hd, 23);
    const float scale = 1.0f / std::sqrt(128.0f);
    cases.push_back({"PagedAttention_hd128",
                     [=](Backend& b) {
                       Device d(b);
                       KvCacheLayer cache{d.Put(kc), d.Put(vc), DType::kF32, blocks, bs, nkv, hd};
                       AttentionBatch batch;
                       batch.num_seqs = 3;
                       batch.query_start = d.Put(qs);
                       batch.context_lens = d.Put(ctx);
                       batch.block_tables = d.Put(tables);
                       batch.max_blocks_per_seq = width;
                       batch.max_query_len = 40;
                       batch.max_context_len = 300;
                       Tensor out = d.F32(Floats(rows * nq * hd), rows, nq * hd);
                       b.PagedAttention(d.F32(q, rows, nq * hd), cache, batch, nq, scale, out);
                       return d.Get(out);
                     },
                     [=] {
                       return AttentionReference(q, kc, vc, qs, ctx, tables, width, bs, nq, nkv, hd,
                                                 scale);
                     },
                     1e-5});
  }

  {
    Floats src = Random(6 * 5, 16);
    std::vector<int32_t> rows = {4, 0, 4};
    cases.push_back({"GatherRows",
                     [=](Backend& b) {
                       Device d(b);
                       Tensor out = d.F32(Floats(3 * 5), 3, 5);
                       b.GatherRows(d.F32(src, 6, 5), d.Put(rows), 3, out);
                       return d.Get(out);
                     },
                     [=] {
                       std::vector<double> y;
                       for (int32_t r : rows)
                         for (int64_t j = 0; j < 5; ++j) y.push_back(src[r * 5 + j]);
                       return y;
                     },
                     0});
  }
  return cases;
}

TEST(BackendOps, CpuMatchesThePlainReference) {
  auto cpu = CreateBackend("cpu", {.threads = 1});
  ASSERT_TRUE(cpu.ok());
  for (const OpCase& op : Cases()) {
    SCOPED_TRACE(op.name);
    EXPECT_LE(RelErr(op.reference(), op.run(**cpu)), op.tolerance);
  }
}

TEST(BackendOps, CudaMatchesTheCpuOracle) {
  auto cuda = CreateBackend("cuda");
  if (!cuda.ok()) GTEST_SKIP() << "no CUDA backend here: " << cuda.status().message();
  auto cpu = CreateBackend("cpu", {.threads = 1});
  ASSERT_TRUE(cpu.ok());
  for (const OpCase& op : Cases()) {
    SCOPED_TRACE(op.name);
    Floats oracle = op.run(**cpu);
    EXPECT_LE(RelErr(std::vector<double>(oracle.begin(), oracle.end()), op.run(**cuda)), 1e-2)
        << "against the CPU oracle (bf16 tolerance)";
  }
}

}  // namespace
}  // namespace breakeven::kernels
