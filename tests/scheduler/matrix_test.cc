// Benchmark matrix files: every field, the cross product, and errors at the right line and field.
#include "scheduler/matrix.h"

#include <gtest/gtest.h>

namespace breakeven::scheduler {
namespace {

// Line numbers below count from the first line of each raw string.
constexpr char kFull[] = R"(name: nightly
description: every field set
models:
  - tiny-15m
  - {name: llama-3.2-1b, weights: /models/Llama-3.2-1B}
workloads:
  - shared-prefix
  - "512:64"
  - {name: samples, input_tokens: 256, output_tokens: 64, n: 8, prefix_tokens: 16}
tensor_parallel: [1, 2]
devices: [cpu, cuda]
allow_multi_host: true
dtype: bf16
kv_cache_mib: 2048
load:
  pattern: concurrency
  concurrency: [1, 4, 16]
  rates: [0.5, 2]
  sweep_points: 6
  search_steps: 7
  warmup_s: 1.5
  duration_s: 30
  max_requests: 500
  max_concurrency: 32
slo: {ttft_p95: 500ms, tpot_p99: 0.05s, e2e_mean: 2s}
repeats: 2
max_attempts: 3
schedule: "0 3 * * *"
)";

void ExpectLoad(const bench::LoadPlan& l) {
  EXPECT_EQ(l.pattern, bench::LoadPattern::kConcurrency);
  EXPECT_EQ(l.concurrency, (std::vector<int64_t>{1, 4, 16}));
  EXPECT_EQ(l.rates, (std::vector<double>{0.5, 2}));
  EXPECT_EQ(l.sweep_points, 6);
  EXPECT_EQ(l.search_steps, 7);
  EXPECT_EQ(l.warmup_s, 1.5);
  EXPECT_EQ(l.duration_s, 30);
  EXPECT_EQ(l.max_requests, 500);
  EXPECT_EQ(l.max_concurrency, 32);
}

TEST(ParseMatrix, EveryField) {
  Result<MatrixSpec> r = ParseMatrix(kFull, "nightly.yaml");
  ASSERT_TRUE(r.ok()) << r.status().message();
  const MatrixSpec& m = *r;
  EXPECT_EQ(m.name, "nightly");
  EXPECT_EQ(m.description, "every field set");
  ASSERT_EQ(m.models.size(), 2u);
  EXPECT_EQ(m.models[0].name, "tiny-15m");
  EXPECT_EQ(m.models[0].weights, "dummy");
  EXPECT_EQ(m.models[1].name, "llama-3.2-1b");
  EXPECT_EQ(m.models[1].weights, "/models/Llama-3.2-1B");
  ASSERT_EQ(m.workloads.size(), 3u);
  EXPECT_EQ(m.workloads[0].name, "shared-prefix");
  EXPECT_EQ(m.workloads[0].prefix_tokens, 2048);
  EXPECT_EQ(m.workloads[1].name, "512/64");
  EXPECT_EQ(m.workloads[1].input_tokens, 512);
  EXPECT_EQ(m.workloads[1].output_tokens, 64);
  EXPECT_EQ(m.workloads[2].name, "samples");
  EXPECT_EQ(m.workloads[2].input_tokens, 256);
  EXPECT_EQ(m.workloads[2].output_tokens, 64);
  EXPECT_EQ(m.workloads[2].samples, 8);
  EXPECT_EQ(m.workloads[2].prefix_tokens, 16);
  EXPECT_EQ(m.tensor_parallel, (std::vector<int>{1, 2}));
  EXPECT_EQ(m.devices, (std::vector<std::string>{"cpu", "cuda"}));
  EXPECT_TRUE(m.allow_multi_host);
  EXPECT_EQ(m.dtype, "bf16");
  EXPECT_EQ(m.kv_cache_mib, 2048);
  ExpectLoad(m.load);
  EXPECT_EQ(m.slo.ToString(), "ttft_p95=500ms,tpot_p99=50ms,e2e_mean=2000ms");
  EXPECT_EQ(m.repeats, 2);
  EXPECT_EQ(m.max_attempts, 3);
  EXPECT_EQ(m.schedule, "0 3 * * *");
}

TEST(ParseMatrix, ExpandIsTheCrossProductInNestingOrder) {
  Result<MatrixSpec> r = ParseMatrix(kFull, "nightly.yaml");
  ASSERT_TRUE(r.ok()) << r.status().message();
  const MatrixSpec& m = *r;
  std::vector<RunSpec> runs = m.Expand();
  ASSERT_EQ(runs.size(), 2u * 3 * 2 * 2 * 2);
  size_t i = 0;
  for (size_t mi = 0; mi < 2; ++mi) {
    for (size_t wi = 0; wi < 3; ++wi) {
      for (size_t ti = 0; ti < 2; ++ti) {
        for (size_t di = 0; di < 2; ++di) {
          for (int rep = 0; rep < 2; ++rep, ++i) {
            SCOPED_TRACE(i);
            const RunSpec& run = runs[i];
            EXPECT_EQ(run.model.name, m.models[mi].name);
            EXPECT_EQ(run.workload.name, m.workloads[wi].name);
            EXPECT_EQ(run.tp, m.tensor_parallel[ti]);
            EXPECT_EQ(run.device_type, m.devices[di]);
            EXPECT_EQ(run.repeat, rep);
          }
        }
      }
    }
  }

  // A few runs field by field.
  const RunSpec& first = runs[0];
  EXPECT_EQ(first.model.name, "tiny-15m");
  EXPECT_EQ(first.model.weights, "dummy");
  EXPECT_EQ(first.workload.name, "shared-prefix");
  EXPECT_EQ(first.workload.input_tokens, 2176);
  EXPECT_EQ(first.tp, 1);
  EXPECT_EQ(first.device_type, "cpu");
  EXPECT_TRUE(first.allow_multi_host);
  EXPECT_EQ(first.dtype, "bf16");
  EXPECT_EQ(first.kv_cache_mib, 2048);
  ExpectLoad(first.load);
  EXPECT_EQ(first.slo.ToString(), "ttft_p95=500ms,tpot_p99=50ms,e2e_mean=2000ms");
  EXPECT_EQ(first.repeat, 0);
  EXPECT_EQ(first.max_attempts, 3);

  EXPECT_EQ(runs[1].repeat, 1);
  EXPECT_EQ(runs[1].device_type, "cpu");
  EXPECT_EQ(runs[2].repeat, 0);
  EXPECT_EQ(runs[2].device_type, "cuda");
  EXPECT_EQ(runs[4].tp, 2);
  EXPECT_EQ(runs[4].device_type, "cpu");
  EXPECT_EQ(runs[8].workload.name, "512/64");
  EXPECT_EQ(runs[8].tp, 1);

  const RunSpec& last = runs.back();
  EXPECT_EQ(last.model.name, "llama-3.2-1b");
  EXPECT_EQ(last.model.weights, "/models/Llama-3.2-1B");
  EXPECT_EQ(last.workload.name, "samples");
  EXPECT_EQ(last.workload.samples, 8);
  EXPECT_EQ(last.workload.prefix_tokens, 16);
  EXPECT_EQ(last.tp, 2);
  EXPECT_EQ(last.device_type, "cuda");
  EXPECT_EQ(last.repeat, 1);
  EXPECT_EQ(last.dtype, "bf16");
  EXPECT_EQ(last.max_attempts, 3);
}

TEST(ParseMatrix, DefaultsForAMinimalFile) {
  Result<MatrixSpec> r =
      ParseMatrix("name: quick\nmodels: [tiny-15m]\nworkloads: [\"128/16\"]\n", "quick.yaml");
  ASSERT_TRUE(r.ok()) << r.status().message();
  const MatrixSpec& m = *r;
  EXPECT_EQ(m.description, "");
  EXPECT_EQ(m.tensor_parallel, (std::vector<int>{1}));
  EXPECT_EQ(m.devices, (std::vector<std::string>{"cpu"}));
  EXPECT_FALSE(m.allow_multi_host);
  EXPECT_EQ(m.dtype, "f32");
  EXPECT_EQ(m.kv_cache_mib, 1024);
  EXPECT_EQ(m.load.pattern, bench::LoadPattern::kSweep);
  EXPECT_EQ(m.load.sweep_points, 4);
  EXPECT_TRUE(m.slo.empty());
  EXPECT_EQ(m.repeats, 1);
  EXPECT_EQ(m.max_attempts, 2);
  EXPECT_EQ(m.schedule, std::nullopt);
  std::vector<RunSpec> runs = m.Expand();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].model.name, "tiny-15m");
  EXPECT_EQ(runs[0].workload.name, "128/16");
  EXPECT_EQ(runs[0].tp, 1);
  EXPECT_EQ(runs[0].device_type, "cpu");
}

TEST(ParseMatrix, AlmanacExpandsInsideAMatrix) {
  Result<MatrixSpec> r = ParseMatrix(R"(name: almanac
models: [tiny-15m, llama-110m]
workloads:
  - almanac
  - 64/8
tensor_parallel: 4
devices: cpu
)",
                                     "almanac.yaml");
  ASSERT_TRUE(r.ok()) << r.status().message();
  const MatrixSpec& m = *r;
  ASSERT_EQ(m.workloads.size(), 10u);
  const char* names[] = {"128/1024",  "1024/128", "512/512",  "256/2048",  "2048/256",
                         "1024/1024", "512/4096", "4096/512", "2048/2048", "64/8"};
  for (size_t i = 0; i < 10; ++i) EXPECT_EQ(m.workloads[i].name, names[i]);
  EXPECT_EQ(m.tensor_parallel, (std::vector<int>{4}));  // a single value for a list of one
  EXPECT_EQ(m.devices, (std::vector<std::string>{"cpu"}));
  std::vector<RunSpec> runs = m.Expand();
  ASSERT_EQ(runs.size(), 20u);
  EXPECT_EQ(runs[9].model.name, "tiny-15m");
  EXPECT_EQ(runs[9].workload.name, "64/8");
  EXPECT_EQ(runs[10].model.name, "llama-110m");
  EXPECT_EQ(runs[10].workload.name, "128/1024");
}

TEST(ParseMatrix, SloAsAStringOrAMap) {
  Result<MatrixSpec> a = ParseMatrix(
      "name: a\nmodels: [tiny-15m]\nworkloads: [almanac-long]\nslo: \"ttft_p95=0.5s, "
      "e2e_mean=2s\"\n",
      "a.yaml");
  Result<MatrixSpec> b = ParseMatrix(
      "name: b\nmodels: [tiny-15m]\nworkloads: [almanac-long]\nslo:\n  ttft_p95: 500ms\n  "
      "e2e_mean: 2000ms\n",
      "b.yaml");
  ASSERT_TRUE(a.ok()) << a.status().message();
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ(a->slo.ToString(), "ttft_p95=500ms,e2e_mean=2000ms");
  EXPECT_EQ(b->slo.ToString(), a->slo.ToString());
  EXPECT_EQ(a->workloads.size(), 3u);
}

TEST(ParseMatrix, TpThatDividesEveryDummyModelIsAccepted) {
  // tiny-15m has 8 heads over 4 KV heads: 8 replicates the KV heads, which is allowed.
  Result<MatrixSpec> r = ParseMatrix(
      "name: t\nmodels: [tiny-15m]\nworkloads: [\"8/8\"]\ntensor_parallel: [1, 2, 4, 8]\n",
      "t.yaml");
  ASSERT_TRUE(r.ok()) << r.status().message();
  // A model with real weights is not checked here: its shape is known only on a node.
  Result<MatrixSpec> files = ParseMatrix(
      "name: t\nmodels: [{name: mine, weights: /m.gguf}]\nworkloads: [\"8/8\"]\n"
      "tensor_parallel: [3]\n",
      "t.yaml");
  ASSERT_TRUE(files.ok()) << files.status().message();
}

struct Bad {
  const char* what;
  const char* yaml;
  const char* message;  // the exact message, or its beginning when `prefix`
  bool prefix = false;
};

// Each file has one mistake; the message gives the file, its line and the field path.
const Bad kBad[] = {
    {"unknown top-level key", R"(name: demo
models: [tiny-15m]
modles: [tiny-15m]
workloads: [almanac]
)",
     "demo.yaml:3: 'modles' is not a matrix field (name, description, models, workloads, "
     "tensor_parallel, devices, allow_multi_host, dtype, kv_cache_mib, load, slo, repeats, "
     "max_attempts, schedule)"},
    {"unknown key inside load", R"(name: demo
models: [tiny-15m]
workloads: [almanac]
load:
  pattern: sweep
  duraton_s: 5
)",
     "demo.yaml:6: load: 'duraton_s' is not a load field (pattern, concurrency, rates, "
     "sweep_points, search_steps, warmup_s, duration_s, max_requests, max_concurrency)"},
    {"bad pattern", R"(name: demo
description: a typo in the pattern
models: [tiny-15m]
workloads: [almanac]
load:
  duration_s: 5
  pattern: swep
)",
     "demo.yaml:7: load.pattern: 'swep' is not one of sync, concurrency, rate, sweep, "
     "slo-search"},
    {"negative duration", R"(name: demo
models: [tiny-15m]
workloads: [almanac]
load:
  pattern: sync
  warmup_s: 1

  duration_s: -1
)",
     "demo.yaml:8: load.duration_s: must be positive (got -1)"},
    {"duration not a number", R"(name: demo
models: [tiny-15m]
workloads: [almanac]
load: {duration_s: 10s}
)",
     "demo.yaml:4: load.duration_s: '10s' is not a number"},
    {"concurrency pattern without levels", R"(name: demo
models: [tiny-15m]
workloads: [almanac]
load:
  duration_s: 5
  pattern: concurrency
)",
     "demo.yaml:6: load.concurrency: the concurrency pattern needs at least one level"},
    {"a concurrency level below 1", R"(name: demo
models: [tiny-15m]
workloads: [almanac]
load:
  pattern: concurrency
  concurrency:
    - 1
    - 0
)",
     "demo.yaml:8: load.concurrency[1]: must be at least 1 (got 0)"},
    {"tp that does not divide the heads", R"(name: demo
models:
  - tiny-15m
workloads: [almanac]
tensor_parallel:
  - 1
  - 3
)",
     "demo.yaml:7: tensor_parallel[1]: tp 3 does not divide the 8 attention heads of tiny-15m"},
    {"tp that does not divide the heads, single value", R"(name: demo
models: [tiny-15m, llama-110m]
workloads: [almanac]
tensor_parallel: 8
)",
     "demo.yaml:4: tensor_parallel: tp 8 does not divide the 12 attention heads of llama-110m"},
    {"tp 0", R"(name: demo
models: [tiny-15m]
workloads: [almanac]
tensor_parallel: [1, 0]
)",
     "demo.yaml:4: tensor_parallel[1]: must be at least 1 (got 0)"},
    {"unknown model", R"(name: demo
models:
  - tiny-15m
  - llama-9b
workloads: [almanac]
)",
     "demo.yaml:4: models[1]: 'llama-9b' is not a catalog model (llama-3.1-8b, llama-3.1-70b, "
     "llama-3.2-1b, llama-3.2-3b, qwen2.5-7b, mistral-7b, tiny-15m, llama-110m); for other "
     "models give {name, weights}"},
    {"unknown model given as a map with dummy weights", R"(name: demo
models:
  - name: llama-9b
    weights: dummy
workloads: [almanac]
)",
     "demo.yaml:3: models[0].name: 'llama-9b' is not a catalog model", true},
    {"unknown model field", R"(name: demo
models:
  - name: tiny-15m
    wieghts: /m
workloads: [almanac]
)",
     "demo.yaml:4: models[0]: 'wieghts' is not a model field (name, weights)"},
    {"missing workloads", R"(# a comment first
name: demo
models: [tiny-15m]
)",
     "demo.yaml:2: workloads: missing (a matrix needs name, models and workloads)"},
    {"empty models", R"(name: demo
models: []
workloads: [almanac]
)",
     "demo.yaml:2: models: must list at least one model"},
    {"bad dtype", R"(name: demo
models: [tiny-15m]
workloads: [almanac]
dtype: fp8
)",
     "demo.yaml:4: dtype: 'fp8' is not one of f32, bf16, f16"},
    {"YAML syntax error", R"(name: demo
models: [tiny-15m]
workloads: [almanac
dtype: f32
)",
     "demo.yaml:", true},
    {"duplicate workload names", R"(name: demo
models: [tiny-15m]
workloads:
  - almanac
  - 64/8
  - "512:512"
)",
     "demo.yaml:6: workloads[2] ('512:512'): workload '512/512' is given twice (also by "
     "workloads[0] ('almanac') on line 4)"},
    {"duplicate workload names, maps", R"(name: demo
models: [tiny-15m]
workloads:
  - {name: chat, input_tokens: 64, output_tokens: 8}
  - {name: chat, input_tokens: 128, output_tokens: 8}
)",
     "demo.yaml:5: workloads[1]: workload 'chat' is given twice (also by workloads[0] on line "
     "4)"},
    {"unknown workload", R"(name: demo
models: [tiny-15m]
workloads: [almanac, almanak]
)",
     "demo.yaml:3: workloads[1]: unknown workload 'almanak'", true},
    {"workload prefix not shorter than the input", R"(name: demo
models: [tiny-15m]
workloads:
  - name: chat
    input_tokens: 256
    output_tokens: 8
    prefix_tokens: 256
)",
     "demo.yaml:7: workloads[0].prefix_tokens: must be less than input_tokens 256 (got 256)"},
    {"workload n below 1", R"(name: demo
models: [tiny-15m]
workloads:
  - name: chat
    input_tokens: 256
    output_tokens: 8
    n: 0
)",
     "demo.yaml:7: workloads[0].n: must be at least 1 (got 0)"},
    {"workload map without output_tokens", R"(name: demo
models: [tiny-15m]
workloads:
  - name: chat
    input_tokens: 256
)",
     "demo.yaml:4: workloads[0]: output_tokens is required"},
    {"bad slo duration", R"(name: demo
models: [tiny-15m]
workloads: [almanac]
slo:
  ttft_p95: 500ms
  tpot_p95: fast
)",
     "demo.yaml:6: slo.tpot_p95: 'fast' is not a duration like 500ms"},
    {"bad slo metric", R"(name: demo
models: [tiny-15m]
workloads: [almanac]
slo: {ttfb_p95: 5ms}
)",
     "demo.yaml:4: slo.ttfb_p95: 'ttfb' is not a metric (ttft, tpot, itl, e2e)"},
    {"bad slo string", R"(name: demo
models: [tiny-15m]
workloads: [almanac]
slo: "ttft_p95=500ms,tpot_p97=5ms"
)",
     "demo.yaml:4: slo: 'ttft_p95=500ms,tpot_p97=5ms': 'p97' is not a statistic (p50, p90, p95, "
     "p99, mean) (in 'tpot_p97=5ms')"},
    {"repeats 0", "name: demo\nmodels: [tiny-15m]\nworkloads: [almanac]\nrepeats: 0\n",
     "demo.yaml:4: repeats: must be at least 1 (got 0)"},
    {"max_attempts not a number",
     "name: demo\nmodels: [tiny-15m]\nworkloads: [almanac]\nmax_attempts: two\n",
     "demo.yaml:4: max_attempts: 'two' is not an integer"},
    {"kv_cache_mib 0", "name: demo\nmodels: [tiny-15m]\nworkloads: [almanac]\nkv_cache_mib: 0\n",
     "demo.yaml:4: kv_cache_mib: must be at least 1 (got 0)"},
    {"allow_multi_host not a bool",
     "name: demo\nmodels: [tiny-15m]\nworkloads: [almanac]\nallow_multi_host: maybe\n",
     "demo.yaml:4: allow_multi_host: must be true or false"},
    {"empty schedule", "name: demo\nmodels: [tiny-15m]\nworkloads: [almanac]\nschedule: \"\"\n",
     "demo.yaml:4: schedule: must not be empty"},
    {"devices as a map", "name: demo\nmodels: [tiny-15m]\nworkloads: [almanac]\ndevices: {a: 1}\n",
     "demo.yaml:4: devices: must be a list of device type, not a map"},
    {"a key given twice",
     "name: demo\nmodels: [tiny-15m]\ndtype: f32\nworkloads: [almanac]\n"
     "dtype: f16\n",
     "demo.yaml:5: 'dtype' is given twice (first on line 3)"},
    {"name missing", "models: [tiny-15m]\nworkloads: [almanac]\n",
     "demo.yaml:1: name: missing (a matrix needs name, models and workloads)"},
    {"name is a list", "models: [tiny-15m]\nworkloads: [almanac]\nname: [a]\n",
     "demo.yaml:3: name: must be a string, not a list"},
    {"a field with no value",
     "name: demo\nmodels: [tiny-15m]\ndescription:\nworkloads: [almanac]\n",
     "demo.yaml:3: description: has no value (give one or leave the field out)"},
    {"a load field with no value",
     "name: demo\nmodels: [tiny-15m]\nworkloads: [almanac]\nload:\n  pattern:\n  duration_s: 1\n",
     "demo.yaml:5: load.pattern: has no value (give one or leave the field out)"},
    {"rates not numbers",
     "name: demo\nmodels: [tiny-15m]\nworkloads: [almanac]\nload:\n  "
     "pattern: rate\n  rates:\n    - 1\n    - x\n",
     "demo.yaml:8: load.rates[1]: 'x' is not a number"},
    {"two documents", "name: demo\nmodels: [tiny-15m]\nworkloads: [almanac]\n---\nname: x\n",
     "demo.yaml:5: a matrix file holds one YAML document; this is a second"},
    {"a model listed twice", "name: demo\nmodels:\n  - tiny-15m\n  - tiny-15m\nworkloads: [a]\n",
     "demo.yaml:4: models[1]: model 'tiny-15m' is listed twice (also models[0] on line 3)"},
    {"not a map", "- a\n- b\n",
     "demo.yaml:1: a matrix must be a map of fields (name, models, workloads, ...), not a list"},
    {"empty file", "",
     "demo.yaml:1: the matrix is empty: it needs at least name, models and "
     "workloads"},
};

TEST(ParseMatrix, ErrorsNameTheFileLineAndField) {
  for (const Bad& bad : kBad) {
    SCOPED_TRACE(bad.what);
    Result<MatrixSpec> r = ParseMatrix(bad.yaml, "demo.yaml");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    if (bad.prefix) {
      EXPECT_EQ(r.status().message().substr(0, std::string_view(bad.message).size()), bad.message)
          << r.status().message();
    } else {
      EXPECT_EQ(r.status().message(), bad.message);
    }
  }
}

TEST(ParseMatrix, SyntaxErrorsGiveTheLine) {
  // An unclosed flow list: yaml-cpp reports where the list should have ended.
  Result<MatrixSpec> r =
      ParseMatrix("name: demo\nmodels: [tiny-15m]\nworkloads: [almanac\n", "syntax.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().rfind("syntax.yaml:", 0), 0u) << r.status().message();
  EXPECT_NE(r.status().message().find("invalid YAML"), std::string::npos) << r.status().message();

  // A tab where indentation is expected, on line 3.
  Result<MatrixSpec> tab =
      ParseMatrix("name: demo\nmodels:\n\t- tiny-15m\nworkloads: [a]\n", "tab.yaml");
  ASSERT_FALSE(tab.ok());
  EXPECT_EQ(tab.status().message().rfind("tab.yaml:3: invalid YAML: ", 0), 0u)
      << tab.status().message();
}

}  // namespace
}  // namespace breakeven::scheduler
