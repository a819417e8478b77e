// breakeven-engine-bench: the engine against this machine's roofline.
//
// Measures, in one run on one machine:
//   bandwidth    a large copy split over all cores: (read + write bytes) / time; and the
//                matrix x vector stream over a matrix as large, through the CPU backend
//   gemm rate    OpenBLAS sgemm, all cores, on the model's prefill shapes (m = prompt tokens)
//   decode       step time (median TPOT) at batch 1 and batch B, for each tp, through real
//                breakeven-worker processes (bench/local_run.h)
//   prefill      time to first token of one prompt at tp 1
// and reports:
//   MBU  = bytes read per decode step / step time / copy bandwidth (and, second, / the matrix x
//          vector stream rate: a read-only stream moves more bytes per second than a copy's
//          read half, so that is the tighter roofline). Bytes read per step = every rank's
//          weights that a decode step touches (all matrices, not the embedding table unless it
//          is also the LM head) + the K and V of every cached token of the batch.
//   batch gain = tokens/s at batch B / tokens/s at batch 1
//   prefill efficiency = prefill matmul FLOP/s / OpenBLAS FLOP/s on the same shapes. Prefill
//          matmul FLOPs = 2 x prompt tokens x (layer matrix parameters) + 2 x vocab x hidden
//          (the LM head runs for the last token only); attention is not counted, so the ratio
//          is conservative.
// Each figure is the median of --repeats runs. Prints a table with units, then one JSON row per
// measurement.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <nlohmann/json.hpp>
#include <thread>

#include "bench/local_run.h"
#include "bench/roofline.h"
#include "engine/catalog.h"
#include "kernels/calibration.h"
#include "kernels/device.h"

namespace breakeven::bench {
namespace {

using nlohmann::ordered_json;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

struct Options {
  std::string model = "llama-110m";
  std::vector<int> tps = {1, 2};
  int batch = 16;
  int64_t input_tokens = 32;
  int64_t output_tokens = 64;
  int64_t prefill_tokens = 512;
  int repeats = 3;
  std::string collectives = "shm";
  std::string backend = "cpu";
  std::string dtype = "f32";
  std::string json_out;
  engine::ModelConfig config;  // of `model`, looked up once
};

struct Decode {
  int tp = 1;
  int batch = 1;
  bool graphs = true;
  double step_ms = 0;
  double tokens_per_s = 0;
  double bytes_per_step = 0;
  double mbu = 0;         // of the copy bandwidth
  double mbu_stream = 0;  // of the matrix x vector stream
  double peak_rss_mib = 0;
  double weights_mib = 0;
  double kv_cache_mib = 0;
};

Result<ordered_json> RunOnce(const Options& o, int tp, int64_t batch, int64_t in, int64_t out,
                             int64_t requests, bool graphs = true) {
  LocalRunOptions r;
  r.graphs = graphs;
  r.model = o.model;
  r.tp = tp;
  r.collectives = o.collectives;
  r.workload = fmt::format("{}:{}", in, out);
  r.concurrency = batch;
  r.requests = requests;
  r.backend = o.backend;
  r.dtype = o.dtype;
  // Room for the whole batch (no preemption), small enough that peak RSS shows weights + cache
  // rather than an untouched pool: the batch's tokens plus a quarter, at least 256 MiB.
  // The cache is fp32 and split over the ranks.
  const double kv_per_token = static_cast<double>(o.config.KvBytesPerToken(DType::kF32)) / tp;
  const double need = 1.25 * batch * (in + out + 32) * kv_per_token / 1048576.0;
  r.kv_cache_mib = std::max<int64_t>(256, static_cast<int64_t>(need));
  // Every prompt of the batch in the first step, so that the decode steps TPOT measures are all
  // batch-sized decodes rather than decodes mixed with other requests' prefill chunks.
  r.max_num_batched_tokens = std::max<int64_t>(2048, batch * in);
  return RunLocalBenchmark(r);
}

Result<Decode> MeasureDecode(const Options& o, int tp, int batch, const Bandwidth& bw,
                             bool graphs = true) {
  Decode d;
  d.tp = tp;
  d.batch = batch;
  d.graphs = graphs;
  std::vector<double> steps;
  for (int i = 0; i < o.repeats; ++i) {
    BE_ASSIGN_OR_RETURN(ordered_json r,
                        RunOnce(o, tp, batch, o.input_tokens, o.output_tokens, batch, graphs));
    steps.push_back(r["metrics"]["tpot_ms"]["p50"].get<double>());
    const auto& roof = r["roofline_inputs"];
    // Decode steps see contexts from input+1 to input+output tokens: on average the midpoint.
    const double avg_context = static_cast<double>(o.input_tokens) + o.output_tokens / 2.0;
    d.bytes_per_step =
        tp * (roof["decode_weight_bytes_per_rank"].get<double>() +
              batch * avg_context * roof["kv_bytes_per_token_per_rank"].get<double>());
    d.peak_rss_mib = r["memory"]["peak_rss_bytes"].get<double>() / 1048576.0;
    d.weights_mib = r["memory"]["weight_bytes"].get<double>() / 1048576.0;
    d.kv_cache_mib = r["memory"]["kv_cache_bytes"].get<double>() / 1048576.0;
  }
  d.step_ms = Median(steps);
  d.tokens_per_s = batch * 1000.0 / d.step_ms;
  d.mbu = d.bytes_per_step / (d.step_ms / 1000.0) / (bw.copy_gb_per_s * 1e9);
  d.mbu_stream = bw.matvec_gb_per_s > 0
                     ? d.bytes_per_step / (d.step_ms / 1000.0) / (bw.matvec_gb_per_s * 1e9)
                     : 0;
  return d;
}

int Main(int argc, char** argv) {
  Options o;
  CLI::App app{"breakeven-engine-bench: decode and prefill against the measured roofline"};
  app.add_option("--model", o.model, "catalog model")->capture_default_str();
  app.add_option("--tp", o.tps, "tensor-parallel degrees")->capture_default_str();
  app.add_option("--batch", o.batch, "the larger decode batch")->capture_default_str();
  app.add_option("--input-tokens", o.input_tokens, "prompt length of decode runs")
      ->capture_default_str();
  app.add_option("--output-tokens", o.output_tokens, "tokens generated per decode request")
      ->capture_default_str();
  app.add_option("--prefill-tokens", o.prefill_tokens, "prompt length of the prefill run")
      ->capture_default_str();
  app.add_option("--repeats", o.repeats, "runs per figure; medians are reported")
      ->capture_default_str();
  app.add_option("--collectives", o.collectives, "shm or gloo")->capture_default_str();
  app.add_option("--backend", o.backend, "cpu, or cuda (the roofline is then the GPU's)")
      ->capture_default_str();
  app.add_option("--dtype", o.dtype, "weight type: f32, bf16 or f16")->capture_default_str();
  app.add_option("--json-out", o.json_out, "also write the JSON rows to this file");
  CLI11_PARSE(app, argc, argv);
  if (o.backend != "cpu" && o.backend != "cuda") {
    fmt::print(stderr, "breakeven-engine-bench: --backend: '{}' is not cpu or cuda\n", o.backend);
    return 1;
  }

  auto config = engine::FindModel(o.model);
  if (!config.ok()) {
    fmt::print(stderr, "breakeven-engine-bench: {}\n", config.status().message());
    return 1;
  }
  o.config = *config;
  const bool gpu = o.backend == "cuda";
  const int cores = static_cast<int>(kernels::DescribeCpu().compute_units);
  std::string device = kernels::DescribeCpu().name;
  Bandwidth bw;
  double gemm_rate = 0;
  if (gpu) {
    // The GPU's two ceilings: a device-to-device copy and a large cuBLAS bf16 product.
    fmt::print(stderr, "calibrating CUDA device 0...\n");
    auto cal = kernels::CalibrateCuda(0, {});
    if (!cal.ok()) {
      fmt::print(stderr, "breakeven-engine-bench: {}\n", cal.status().message());
      return 1;
    }
    device = cal->device;
    bw.copy_gb_per_s = cal->copy_bytes_per_s / 1e9;
    gemm_rate = cal->matmul_flops_per_s;
  } else {
    fmt::print(stderr, "measuring bandwidth and the OpenBLAS rate on {} ({} cores)...\n", device,
               cores);
    bw = MeasureBandwidth(size_t{512} << 20, cores, 5);
  }

  // The prefill's matrix products, as OpenBLAS would run them.
  const engine::ModelConfig& c = *config;
  const int64_t t = o.prefill_tokens, h = c.hidden_size, hd = c.head_dim;
  std::vector<GemmShape> shapes;
  for (int64_t l = 0; l < c.num_layers; ++l) {
    shapes.push_back({t, (c.num_heads + 2 * c.num_kv_heads) * hd, h});
    shapes.push_back({t, h, c.num_heads * hd});
    shapes.push_back({t, 2 * c.intermediate_size, h});
    shapes.push_back({t, h, c.intermediate_size});
  }
  shapes.push_back({1, c.vocab_size, h});
  if (!gpu) gemm_rate = MeasureSgemmRate(shapes, cores, o.repeats);
  const std::string rate_name = gpu ? "cuBLAS bf16 (8192^3)" : "OpenBLAS on the same shapes";
  double prefill_flops = 0;
  for (const GemmShape& s : shapes) prefill_flops += 2.0 * s.m * s.n * s.k;

  std::vector<Decode> decodes;
  for (int tp : o.tps) {
    for (int batch : {1, o.batch}) {
      fmt::print(stderr, "decode: tp {} batch {}...\n", tp, batch);
      Result<Decode> d = MeasureDecode(o, tp, batch, bw);
      if (!d.ok()) {
        fmt::print(stderr, "breakeven-engine-bench: {}\n", d.status().message());
        return 1;
      }
      decodes.push_back(*d);
    }
  }
  if (gpu) {
    // What the graphs buy: batch 1 again with every kernel launched one by one.
    fmt::print(stderr, "decode: tp 1 batch 1 without CUDA graphs...\n");
    Result<Decode> d = MeasureDecode(o, 1, 1, bw, /*graphs=*/false);
    if (!d.ok()) {
      fmt::print(stderr, "breakeven-engine-bench: {}\n", d.status().message());
      return 1;
    }
    decodes.push_back(*d);
  }
  fmt::print(stderr, "prefill: {} tokens...\n", o.prefill_tokens);
  std::vector<double> ttft;
  for (int i = 0; i < o.repeats; ++i) {
    // On a GPU the first request of a process also pays for loading cuBLAS's kernels: three
    // one-at-a-time requests, the median of their times to first token.
    auto r = RunOnce(o, 1, 1, o.prefill_tokens, 2, gpu ? 3 : 1);
    if (!r.ok()) {
      fmt::print(stderr, "breakeven-engine-bench: {}\n", r.status().message());
      return 1;
    }
    ttft.push_back((*r)["metrics"]["ttft_ms"]["p50"].get<double>());
  }
  const double prefill_ms = Median(ttft);
  const double prefill_rate = prefill_flops / (prefill_ms / 1000.0);

  fmt::print("{} on {} ({} backend), {} weights, collectives {}; medians of {} runs\n\n", o.model,
             device, o.backend, o.dtype, o.collectives, o.repeats);
  if (gpu) {
    fmt::print("bandwidth: copy {:.1f} GB/s (read + write); cuBLAS bf16 8192^3: {:.1f} TFLOP/s\n\n",
               bw.copy_gb_per_s, gemm_rate / 1e12);
  } else {
    fmt::print(
        "bandwidth: copy {:.1f} GB/s (read + write), matrix x vector stream {:.1f} GB/s; "
        "OpenBLAS sgemm on the prefill shapes: {:.1f} GFLOP/s\n\n",
        bw.copy_gb_per_s, bw.matvec_gb_per_s, gemm_rate / 1e9);
  }
  fmt::print("{:>3}  {:>5}  {:>8}  {:>9}  {:>10}  {:>6}  {:>7}  {:>10}  {:>9}  {:>9}  {:>8}\n",
             "TP", "BATCH", "STEP", "TOKENS/S", "BYTES/STEP", "MBU", "MBU", "BATCH_GAIN",
             "RSS/RANK", "WEIGHTS", "KV");
  fmt::print("{:>3}  {:>5}  {:>8}  {:>9}  {:>10}  {:>6}  {:>7}  {:>10}  {:>9}  {:>9}  {:>8}\n", "",
             "", "ms", "tok/s", "MB", "%copy", "%stream", "x batch 1", "MiB", "MiB/rank",
             "MiB/rank");
  for (const Decode& d : decodes) {
    double base = 0;
    for (const Decode& b : decodes) {
      if (b.tp == d.tp && b.batch == 1 && b.graphs) base = b.tokens_per_s;
    }
    fmt::print(
        "{:>3}  {:>5}  {:>8.2f}  {:>9.1f}  {:>10.1f}  {:>6.1f}  {:>7.1f}  {:>10.2f}  {:>9.1f}  "
        "{:>9.1f}  {:>8.1f}{}\n",
        d.tp, d.batch, d.step_ms, d.tokens_per_s, d.bytes_per_step / 1e6, 100 * d.mbu,
        100 * d.mbu_stream, base > 0 ? d.tokens_per_s / base : 0.0, d.peak_rss_mib, d.weights_mib,
        d.kv_cache_mib, d.graphs ? "" : "  (without CUDA graphs)");
  }
  fmt::print(
      "\nprefill of {} tokens at tp 1: {:.1f} ms, {:.1f} GFLOP/s of matmul = {:.1f}% of "
      "{}\n\n",
      o.prefill_tokens, prefill_ms, prefill_rate / 1e9, 100 * prefill_rate / gemm_rate, rate_name);

  ordered_json machine = {
      {gpu ? "gpu" : "cpu", device},
      {"backend", o.backend},
      {"cores", cores},
      {"copy_gb_per_s", bw.copy_gb_per_s},
      {"matvec_gb_per_s", bw.matvec_gb_per_s},
      {gpu ? "gemm_tflops" : "sgemm_gflops", gpu ? gemm_rate / 1e12 : gemm_rate / 1e9}};
  std::vector<ordered_json> rows;
  for (const Decode& d : decodes) {
    double base = 0;
    for (const Decode& b : decodes) {
      if (b.tp == d.tp && b.batch == 1 && b.graphs) base = b.tokens_per_s;
    }
    rows.push_back(ordered_json{{"bench", "decode"},
                                {"model", o.model},
                                {"tp", d.tp},
                                {"batch", d.batch},
                                {"graphs", d.graphs},
                                {"collectives", o.collectives},
                                {"step_ms", d.step_ms},
                                {"tokens_per_s", d.tokens_per_s},
                                {"bytes_per_step", d.bytes_per_step},
                                {"mbu_of_copy_bandwidth", d.mbu},
                                {"mbu_of_matvec_stream", d.mbu_stream},
                                {"peak_rss_mib_rank0", d.peak_rss_mib},
                                {"weights_mib_per_rank", d.weights_mib},
                                {"kv_cache_mib_per_rank", d.kv_cache_mib},
                                {"dtype", o.dtype},
                                {"batch_gain", base > 0 ? d.tokens_per_s / base : 0.0},
                                {"machine", machine}});
  }
  rows.push_back(
      ordered_json{{"bench", "prefill"},
                   {"model", o.model},
                   {"tokens", o.prefill_tokens},
                   {"dtype", o.dtype},
                   {"ttft_ms", prefill_ms},
                   {"matmul_gflops", prefill_rate / 1e9},
                   {gpu ? "fraction_of_cublas" : "fraction_of_openblas", prefill_rate / gemm_rate},
                   {"machine", machine}});
  for (const ordered_json& row : rows) fmt::print("{}\n", row.dump());
  if (!o.json_out.empty()) {
    std::FILE* f = std::fopen(o.json_out.c_str(), "w");
    if (f == nullptr) {
      fmt::print(stderr, "breakeven-engine-bench: --json-out: cannot write '{}'\n", o.json_out);
      return 1;
    }
    fmt::print(f, "{}\n", ordered_json(rows).dump(2));
    std::fclose(f);
  }
  return 0;
}

}  // namespace
}  // namespace breakeven::bench

int main(int argc, char** argv) { return breakeven::bench::Main(argc, argv); }
