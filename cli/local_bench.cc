#include "cli/local_bench.h"

#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/table.h"
#include "engine/catalog.h"

namespace breakeven::cli {

using nlohmann::ordered_json;

namespace {

void PrintTable(const ordered_json& r) {
  const auto& m = r["metrics"];
  const auto& w = r["workload"];
  fmt::print("{} on {} ({}), tp {} (collectives: {}), {} weights, workload {}:{}, concurrency {}, "
             "{} requests\n\n",
             r["model"].get<std::string>(), r["backend"].get<std::string>(),
             r["device"].get<std::string>(), r["tp"].get<int>(),
             r["collectives"].get<std::string>(), r["weight_dtype"].get<std::string>(), w["input_tokens"].get<int64_t>(),
             w["output_tokens"].get<int64_t>(), w["concurrency"].get<int64_t>(),
             w["requests"].get<int64_t>());
  Table rates({"REQUESTS", "DURATION_S", "OUTPUT_TOK/S", "TOTAL_TOK/S", "REQ/S"});
  rates.AddRow({fmt::format("{}", m["requests"].get<int64_t>() - m["failed"].get<int64_t>()),
                fmt::format("{:.2f}", m["duration_s"].get<double>()),
                fmt::format("{:.1f}", m["output_tokens_per_s"].get<double>()),
                fmt::format("{:.1f}", m["total_tokens_per_s"].get<double>()),
                fmt::format("{:.2f}", m["requests_per_s"].get<double>())});
  std::cout << rates.Render() << "\n";
  Table lat({"LATENCY_MS", "MEAN", "P50", "P90", "P99", "MAX"});
  for (const char* key : {"ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"}) {
    const auto& s = m[key];
    std::string name(key);
    name = name.substr(0, name.size() - 3);
    for (char& c : name) c = static_cast<char>(std::toupper(c));
    lat.AddRow({name, fmt::format("{:.2f}", s["mean"].get<double>()),
                fmt::format("{:.2f}", s["p50"].get<double>()),
                fmt::format("{:.2f}", s["p90"].get<double>()),
                fmt::format("{:.2f}", s["p99"].get<double>()),
                fmt::format("{:.2f}", s["max"].get<double>())});
  }
  std::cout << lat.Render();
  const auto& e = r["engine"];
  fmt::print(
      "\nsteps {}, preemptions {}, peak batch {}, memory per rank: weights {:.1f} MiB, KV "
      "cache {:.1f} MiB, peak RSS {:.1f} MiB\n",
      e["steps"].get<int64_t>(), e["preemptions"].get<int64_t>(), e["peak_running"].get<int64_t>(),
      r["memory"]["weight_bytes"].get<int64_t>() / 1048576.0,
      r["memory"]["kv_cache_bytes"].get<int64_t>() / 1048576.0,
      r["memory"]["peak_rss_bytes"].get<int64_t>() / 1048576.0);
}

}  // namespace

int CmdBench(const bench::LocalRunOptions& o, Output output) {
  Result<ordered_json> result = bench::RunLocalBenchmark(o);
  if (!result.ok()) {
    fmt::print(stderr, "breakeven bench: {}\n", result.status().message());
    return 1;
  }
  if (output == Output::kJson) {
    std::cout << result->dump(2) << "\n";
  } else {
    PrintTable(*result);
  }
  return 0;
}

int CmdModels(Output output) {
  ordered_json all = ordered_json::array();
  Table t({"MODEL", "ARCH", "PARAMS", "LAYERS", "HIDDEN", "HEADS/KV", "WEIGHTS_BF16",
           "KV_BYTES/TOKEN_BF16", "MAX_CONTEXT"});
  for (const engine::CatalogEntry& e : engine::Catalog()) {
    const engine::ModelConfig& c = e.config;
    int64_t params = c.ParameterCount();
    int64_t weights = c.WeightBytes(DType::kBF16);
    int64_t kv = c.KvBytesPerToken(DType::kBF16);
    t.AddRow({c.name, c.architecture,
              params >= 1'000'000'000 ? fmt::format("{:.2f}B", params / 1e9)
                                      : fmt::format("{:.1f}M", params / 1e6),
              std::to_string(c.num_layers), std::to_string(c.hidden_size),
              fmt::format("{}/{}", c.num_heads, c.num_kv_heads),
              fmt::format("{:.2f} GiB", weights / double(1 << 30)),
              fmt::format("{} KiB", kv / 1024), std::to_string(c.max_position_embeddings)});
    all.push_back({{"name", c.name},
                   {"architecture", c.architecture},
                   {"parameters", params},
                   {"layers", c.num_layers},
                   {"hidden_size", c.hidden_size},
                   {"intermediate_size", c.intermediate_size},
                   {"heads", c.num_heads},
                   {"kv_heads", c.num_kv_heads},
                   {"head_dim", c.head_dim},
                   {"vocab_size", c.vocab_size},
                   {"tied_embeddings", c.tie_word_embeddings},
                   {"weight_bytes_bf16", weights},
                   {"kv_bytes_per_token_bf16", kv},
                   {"max_context", c.max_position_embeddings},
                   {"source", e.source}});
  }
  if (output == Output::kJson) {
    std::cout << ordered_json{{"models", all}}.dump(2) << "\n";
  } else {
    std::cout << t.Render();
  }
  return 0;
}

}  // namespace breakeven::cli
