// breakeven-ops-bench: where a decode step's time goes, op by op, on one backend.
//
// For one layer of a catalog model (its shapes, one rank), with weights made on the device:
//   - each matrix product at 1 activation row (decode at batch 1) and at --prefill-tokens rows,
//     as time, weight bytes / time (against the device's copy bandwidth) and FLOP/s (against
//     its matrix rate);
//   - each small op of a decode step at batch 1 (norms, RoPE with the KV write, attention over
//     --context cached tokens);
//   - attention of a --prefill-tokens prompt;
//   - their sum for a whole decode step (layers x layer + the LM head), the floor a step would
//     have if nothing but these kernels ran.
// Each figure: --iters back-to-back runs between two synchronisations, median of --repeats.
// Prints a table, then one JSON object.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>

#include "engine/catalog.h"
#include "engine/weights.h"
#include "kernels/backend.h"
#include "kernels/calibration.h"

namespace breakeven::bench {
namespace {

using kernels::Backend;
using kernels::Tensor;
using nlohmann::ordered_json;

struct Options {
  std::string backend = "cuda";
  std::string model = "llama-3.1-8b";
  int64_t context = 192;
  int64_t prefill_tokens = 2048;
  int iters = 50;
  int repeats = 5;
};

class Arena {
 public:
  explicit Arena(Backend& b) : b_(b) {}
  // A tensor of random values in [-scale, scale] (made by the backend where it can).
  Result<Tensor> Random(int64_t rows, int64_t cols, DType dtype, float scale) {
    BE_ASSIGN_OR_RETURN(auto buf, b_.Allocate(static_cast<size_t>(rows * cols) * DTypeSize(dtype)));
    kernels::UniformFill fill;
    fill.key = ++key_ * 0x9e3779b97f4a7c15ull;
    fill.full_cols = cols;
    fill.scale = scale;
    if (!b_.FillUniform(buf->data(), dtype, rows, cols, fill)) {
      std::mt19937 rng(static_cast<uint32_t>(key_));
      std::uniform_real_distribution<float> u(-scale, scale);
      std::vector<float> host(static_cast<size_t>(rows * cols));
      for (float& x : host) x = u(rng);
      std::vector<uint8_t> narrow(static_cast<size_t>(rows * cols) * DTypeSize(dtype));
      FromF32(host.data(), dtype, host.size(), narrow.data());
      b_.CopyToDevice(buf->data(), narrow.data(), narrow.size());
    }
    Tensor t{buf->data(), dtype, rows, cols, cols};
    owned_.push_back(std::move(buf));
    return t;
  }
  Result<int32_t*> Ints(const std::vector<int32_t>& host) {
    BE_ASSIGN_OR_RETURN(auto buf, b_.Allocate(host.size() * sizeof(int32_t)));
    b_.CopyToDevice(buf->data(), host.data(), host.size() * sizeof(int32_t));
    auto* p = static_cast<int32_t*>(buf->data());
    owned_.push_back(std::move(buf));
    return p;
  }

 private:
  Backend& b_;
  uint64_t key_ = 0;
  std::vector<std::unique_ptr<kernels::Buffer>> owned_;
};

// Seconds per run of fn: iters runs between synchronisations, median of repeats.
double Time(Backend& b, const Options& o, const std::function<void()>& fn) {
  fn();  // warm-up: first-use costs (library kernels, scratch) stay out
  b.Synchronize();
  std::vector<double> samples;
  for (int r = 0; r < o.repeats; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < o.iters; ++i) fn();
    b.Synchronize();
    samples.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
                      o.iters);
  }
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

int Main(int argc, char** argv) {
  Options o;
  CLI::App app{"breakeven-ops-bench: a decode step's ops, one by one, against the roofline"};
  app.add_option("--backend", o.backend, "cpu or cuda")->capture_default_str();
  app.add_option("--model", o.model, "catalog model (its layer shapes, tp 1)")
      ->capture_default_str();
  app.add_option("--context", o.context, "cached tokens the decode attention reads")
      ->capture_default_str();
  app.add_option("--prefill-tokens", o.prefill_tokens, "rows of the prefill products")
      ->capture_default_str();
  app.add_option("--iters", o.iters, "runs between synchronisations")->capture_default_str();
  app.add_option("--repeats", o.repeats, "timed rounds; medians are reported")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  auto fail = [](const Status& s) {
    fmt::print(stderr, "breakeven-ops-bench: {}\n", s.message());
    return 1;
  };
  auto config = engine::FindModel(o.model);
  if (!config.ok()) return fail(config.status());
  auto backend_or = kernels::CreateBackend(o.backend);
  if (!backend_or.ok()) return fail(backend_or.status());
  Backend& b = **backend_or;
  const engine::ModelConfig& c = *config;
  const bool gpu = o.backend == "cuda";
  auto cal = gpu ? kernels::CalibrateCuda(0, {}) : kernels::CalibrateCpu({});
  if (!cal.ok()) return fail(cal.status());
  const DType wt = gpu ? DType::kBF16 : DType::kF32;

  const int64_t h = c.hidden_size, hd = c.head_dim, nq = c.num_heads, nkv = c.num_kv_heads;
  const int64_t inter = c.intermediate_size, t = o.prefill_tokens;
  Arena arena(b);
  struct Product {
    std::string name;
    int64_t n, k;
    Tensor w;
    std::vector<Tensor> copies;  // rotated through so that a small matrix is read from memory,
                                 // not from the last-level cache
  };
  std::vector<Product> products = {{"qkv_proj", (nq + 2 * nkv) * hd, h, {}},
                                   {"o_proj", h, nq * hd, {}},
                                   {"gate_up_proj", 2 * inter, h, {}},
                                   {"down_proj", h, inter, {}},
                                   {"lm_head", c.vocab_size, h, {}}};
  for (Product& p : products) {
    const double bytes = static_cast<double>(p.n * p.k) * DTypeSize(wt);
    const int copies = static_cast<int>(std::clamp(512e6 / bytes, 1.0, 16.0));
    for (int i = 0; i < copies; ++i) {
      auto w = arena.Random(p.n, p.k, wt, 0.02f);
      if (!w.ok()) return fail(w.status());
      p.copies.push_back(*w);
    }
    p.w = p.copies[0];
  }
  const int64_t widest = std::max(2 * inter, c.vocab_size);
  auto x = arena.Random(t, std::max(inter, h) * 2, DType::kF32, 1.0f);
  auto y = arena.Random(t, widest, DType::kF32, 1.0f);
  auto act = arena.Random(t, inter, DType::kF32, 1.0f);
  if (!x.ok() || !y.ok() || !act.ok()) return fail(Internal("activation buffers"));

  ordered_json out = {{"backend", o.backend},
                      {"device", cal->device},
                      {"model", o.model},
                      {"weight_dtype", DTypeName(wt)},
                      {"copy_gb_per_s", cal->copy_bytes_per_s / 1e9},
                      {"matmul_tflops", cal->matmul_flops_per_s / 1e12}};
  fmt::print(
      "{} layer shapes on {} ({}), {} weights; copy {:.0f} GB/s, matrix rate {:.1f} "
      "TFLOP/s\n\n",
      o.model, cal->device, o.backend, DTypeName(wt), cal->copy_bytes_per_s / 1e9,
      cal->matmul_flops_per_s / 1e12);
  fmt::print("{:<14} {:>8} {:>10} {:>9} {:>7} {:>12} {:>9} {:>7}\n", "PRODUCT", "N x K", "1 ROW us",
             "GB/s", "%COPY", "PREFILL us", "TFLOP/s", "%RATE");
  double layer_s = 0, lm_head_s = 0;
  ordered_json rows = ordered_json::array();
  for (const Product& p : products) {
    Tensor x1 = x->Rows(0, 1).Cols(0, p.k), y1 = y->Rows(0, 1).Cols(0, p.n);
    double one = 0;
    size_t turn = 0;
    auto next = [&]() -> const Tensor& { return p.copies[turn++ % p.copies.size()]; };
    one = Time(b, o, [&] { b.MatMul(x1, next(), nullptr, y1); });
    const int64_t m = p.name == "lm_head" ? 1 : t;
    const double many = Time(b, o, [&] {
      b.MatMul(x->Rows(0, m).Cols(0, p.k), p.w, nullptr, y->Rows(0, m).Cols(0, p.n));
    });
    const double bytes = static_cast<double>(p.n * p.k) * DTypeSize(wt);
    const double flops = 2.0 * m * p.n * p.k;
    (p.name == "lm_head" ? lm_head_s : layer_s) += one;
    fmt::print("{:<14} {:>8} {:>10.1f} {:>9.0f} {:>7.1f} {:>12.1f} {:>9.1f} {:>7.1f}\n", p.name,
               fmt::format("{}x{}", p.n, p.k), one * 1e6, bytes / one / 1e9,
               100 * bytes / one / cal->copy_bytes_per_s, many * 1e6, flops / many / 1e12,
               100 * flops / many / cal->matmul_flops_per_s);
    rows.push_back({{"product", p.name},
                    {"n", p.n},
                    {"k", p.k},
                    {"decode_us", one * 1e6},
                    {"decode_gb_per_s", bytes / one / 1e9},
                    {"decode_of_copy", bytes / one / cal->copy_bytes_per_s},
                    {"prefill_rows", m},
                    {"prefill_us", many * 1e6},
                    {"prefill_tflops", flops / many / 1e12},
                    {"prefill_of_rate", flops / many / cal->matmul_flops_per_s}});
  }
  out["products"] = rows;

  // The small ops of one decode layer at batch 1.
  const int64_t bs = 16, blocks_per_seq = (std::max(o.context, t) + bs) / bs;
  auto kc = arena.Random(blocks_per_seq * bs, nkv * hd, DType::kF32, 1.0f);
  auto vc = arena.Random(blocks_per_seq * bs, nkv * hd, DType::kF32, 1.0f);
  auto cs = arena.Random(t, hd / 2, DType::kF32, 1.0f);
  auto norm = arena.Random(1, std::max(h, inter), DType::kF32, 1.0f);
  std::vector<int32_t> table(static_cast<size_t>(blocks_per_seq));
  for (size_t i = 0; i < table.size(); ++i) table[i] = static_cast<int32_t>(i);
  std::vector<int32_t> slots(static_cast<size_t>(t));
  for (int64_t i = 0; i < t; ++i) slots[static_cast<size_t>(i)] = static_cast<int32_t>(i);
  auto table_d = arena.Ints(table);
  auto slots_d = arena.Ints(slots);
  auto qs_decode = arena.Ints({0, 1});
  auto ctx_decode = arena.Ints({static_cast<int32_t>(o.context)});
  auto qs_prefill = arena.Ints({0, static_cast<int32_t>(t)});
  auto ctx_prefill = arena.Ints({static_cast<int32_t>(t)});
  auto ids = arena.Ints({7});
  if (!kc.ok() || !vc.ok() || !cs.ok() || !norm.ok() || !table_d.ok() || !slots_d.ok() ||
      !qs_decode.ok() || !ctx_decode.ok() || !qs_prefill.ok() || !ctx_prefill.ok() || !ids.ok()) {
    return fail(Internal("small-op buffers"));
  }
  kernels::KvCacheLayer cache{kc->data, vc->data, DType::kF32, blocks_per_seq, bs, nkv, hd};
  Tensor qkv = y->Cols(0, (nq + 2 * nkv) * hd);
  auto attention = [&](int64_t rows, int32_t* qs, int32_t* ctx, int64_t context) {
    kernels::AttentionBatch batch;
    batch.num_seqs = 1;
    batch.query_start = qs;
    batch.context_lens = ctx;
    batch.block_tables = *table_d;
    batch.max_blocks_per_seq = blocks_per_seq;
    batch.max_query_len = rows;
    batch.max_context_len = context;
    b.PagedAttention(qkv.Rows(0, rows).Cols(0, nq * hd), cache, batch, nq, 0.088f,
                     act->Rows(0, rows).Cols(0, nq * hd));
  };
  struct Small {
    std::string name;
    std::function<void()> fn;
  };
  Tensor x1 = x->Rows(0, 1).Cols(0, h), h1 = y->Rows(0, 1).Cols(0, h);
  std::vector<Small> small = {
      {"silu_mul", [&] { b.SiluMul(x->Rows(0, 1).Cols(0, 2 * inter), act->Rows(0, 1)); }},
      {"add_rms_norm (x2)",
       [&] { b.AddRmsNorm(x1, h1, norm->f32(), 1e-5f, act->Rows(0, 1).Cols(0, h)); }},
      {"rope + kv write",
       [&] {
         Tensor r = qkv.Rows(0, 1);
         b.RopeWriteKv(r.Cols(0, nq * hd), r.Cols(nq * hd, nkv * hd),
                       r.Cols((nq + nkv) * hd, nkv * hd), cs->Rows(0, 1), cs->Rows(0, 1), hd,
                       *slots_d, cache);
       }},
      {fmt::format("attention ({} cached)", o.context),
       [&] { attention(1, *qs_decode, *ctx_decode, o.context); }},
  };
  fmt::print("\n{:<28} {:>10}\n", "DECODE OP (1 row)", "us");
  ordered_json small_rows = ordered_json::array();
  for (const Small& s : small) {
    double sec = Time(b, o, s.fn);
    const bool twice = s.name.find("(x2)") != std::string::npos;
    layer_s += twice ? 2 * sec : sec;
    fmt::print("{:<28} {:>10.1f}\n", s.name, sec * 1e6);
    small_rows.push_back({{"op", s.name}, {"us", sec * 1e6}});
  }
  out["decode_ops"] = small_rows;
  const double step_floor = c.num_layers * layer_s + lm_head_s;
  const double weight_bytes =
      static_cast<double>(c.num_layers) *
          ((nq + 2 * nkv) * hd * h + h * nq * hd + 2 * inter * h + h * inter) * DTypeSize(wt) +
      static_cast<double>(c.vocab_size * h) * DTypeSize(wt);
  fmt::print(
      "\ndecode step from these ops: {:.2f} ms ({} layers x {:.1f} us + LM head {:.1f} us) = "
      "{:.1f}% of the copy bandwidth for {:.2f} GB of weights\n",
      step_floor * 1e3, c.num_layers, layer_s * 1e6, lm_head_s * 1e6,
      100 * weight_bytes / step_floor / cal->copy_bytes_per_s, weight_bytes / 1e9);
  out["decode_step_from_ops_ms"] = step_floor * 1e3;
  out["decode_step_from_ops_of_copy"] = weight_bytes / step_floor / cal->copy_bytes_per_s;

  const double prefill_attention = Time(b, o, [&] { attention(t, *qs_prefill, *ctx_prefill, t); });
  const double attention_flops = 4.0 * nq * hd * (t * (t + 1) / 2.0);  // QK^T and PV, causal
  fmt::print("prefill attention, {} tokens, one layer: {:.1f} us ({:.1f} TFLOP/s causal)\n", t,
             prefill_attention * 1e6, attention_flops / prefill_attention / 1e12);
  out["prefill_attention_us"] = prefill_attention * 1e6;
  out["prefill_attention_tflops"] = attention_flops / prefill_attention / 1e12;
  fmt::print("\n{}\n", out.dump());
  return 0;
}

}  // namespace
}  // namespace breakeven::bench

int main(int argc, char** argv) { return breakeven::bench::Main(argc, argv); }
