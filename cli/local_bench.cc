#include "cli/local_bench.h"

#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/table.h"
#include "common/process.h"
#include "common/system.h"
#include "engine/catalog.h"

namespace breakeven::cli {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

std::string FindWorkerBinary() {
  if (const char* env = std::getenv("BREAKEVEN_WORKER"); env && *env) return env;
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec).parent_path();
  for (fs::path candidate :
       {self / "breakeven-worker", self / ".." / "node" / "breakeven-worker"}) {
    if (fs::exists(candidate, ec)) return candidate.lexically_normal().string();
  }
  return "breakeven-worker";
}

namespace {

ordered_json ReadJson(const std::string& path) {
  std::ifstream in(path);
  if (!in) return nullptr;
  try {
    return ordered_json::parse(in);
  } catch (...) {
    return nullptr;
  }
}

std::string LastLines(const std::string& path, int n) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  std::string out;
  for (size_t i = lines.size() > static_cast<size_t>(n) ? lines.size() - n : 0; i < lines.size();
       ++i) {
    out += "  " + lines[i] + "\n";
  }
  return out;
}

void PrintTable(const ordered_json& r) {
  const auto& m = r["metrics"];
  const auto& w = r["workload"];
  fmt::print("{} on {} ({}), tp {}, {} weights, workload {}:{}, concurrency {}, {} requests\n\n",
             r["model"].get<std::string>(), r["backend"].get<std::string>(),
             r["device"].get<std::string>(), r["tp"].get<int>(),
             r["weight_dtype"].get<std::string>(), w["input_tokens"].get<int64_t>(),
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

int CmdBench(const LocalBenchOptions& o, Output output) {
  auto fail = [](const std::string& why) {
    fmt::print(stderr, "breakeven bench: {}\n", why);
    return 1;
  };
  if (o.weights == "dummy" && o.model.empty())
    return fail("--model is required with dummy weights");
  std::string dir = o.keep_dir;
  bool temporary = dir.empty();
  if (temporary) {
    std::string templ = (fs::temp_directory_path() / "breakeven-bench-XXXXXX").string();
    if (!mkdtemp(templ.data())) return fail("cannot create a temporary directory");
    dir = templ;
  }
  fs::create_directories(dir + "/store");
  const std::string worker = FindWorkerBinary();
  const std::string group = NewBootId();  // a fresh rendezvous namespace for this run

  std::vector<ChildProcess> ranks;
  for (int r = 0; r < o.tp; ++r) {
    std::vector<std::string> argv = {worker,
                                     "--weights",
                                     o.weights,
                                     "--dtype",
                                     o.dtype,
                                     "--tp",
                                     std::to_string(o.tp),
                                     "--rank",
                                     std::to_string(r),
                                     "--store",
                                     dir + "/store",
                                     "--group",
                                     group,
                                     "--backend",
                                     o.backend,
                                     "--seed",
                                     std::to_string(o.seed),
                                     "--threads",
                                     std::to_string(o.threads),
                                     "--kv-cache-mib",
                                     std::to_string(o.kv_cache_mib),
                                     "--max-num-seqs",
                                     std::to_string(o.max_num_seqs),
                                     "--max-num-batched-tokens",
                                     std::to_string(o.max_num_batched_tokens),
                                     "--workload",
                                     o.workload,
                                     "--concurrency",
                                     std::to_string(o.concurrency),
                                     "--requests",
                                     std::to_string(o.requests),
                                     "--temperature",
                                     fmt::format("{}", o.temperature),
                                     "--n",
                                     std::to_string(o.n),
                                     "--timeout-ms",
                                     std::to_string(std::min<int64_t>(o.timeout.count(), 60000)),
                                     "--report",
                                     fmt::format("{}/rank{}.json", dir, r)};
    if (!o.model.empty()) {
      argv.push_back("--model");
      argv.push_back(o.model);
    }
    std::string log = fmt::format("{}/rank{}.log", dir, r);
    Result<ChildProcess> child = ChildProcess::Start(argv, log, log);
    if (!child.ok()) return fail(child.status().message());
    ranks.push_back(std::move(child).value());
  }

  // Wait for every rank. The first to fail decides the outcome; the others get a moment to
  // notice on their own, then are stopped.
  auto deadline = std::chrono::steady_clock::now() + o.timeout;
  int failed_rank = -1;
  std::vector<std::optional<int>> codes(ranks.size());
  for (;;) {
    bool all_done = true;
    for (size_t r = 0; r < ranks.size(); ++r) {
      if (!codes[r]) codes[r] = ranks[r].running() ? std::nullopt : ranks[r].Wait(Millis(0));
      if (!codes[r])
        all_done = false;
      else if (*codes[r] != 0 && failed_rank < 0)
        failed_rank = static_cast<int>(r);
    }
    if (all_done) break;
    if (failed_rank >= 0 || std::chrono::steady_clock::now() > deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(failed_rank >= 0 ? 500 : 0));
      for (auto& p : ranks) p.Signal(SIGKILL);
      for (size_t r = 0; r < ranks.size(); ++r) {
        if (!codes[r]) codes[r] = ranks[r].Wait(std::chrono::seconds(10));
      }
      if (failed_rank < 0) {
        return fail(
            fmt::format("no result within {} s; logs in {}", o.timeout.count() / 1000, dir));
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }

  if (failed_rank >= 0) {
    ordered_json report = ReadJson(fmt::format("{}/rank{}.json", dir, failed_rank));
    std::string why =
        report.is_object() && report.contains("error")
            ? report["error"].get<std::string>()
            : fmt::format("exited with status {}; last log lines:\n{}",
                          codes[failed_rank].value_or(-1),
                          LastLines(fmt::format("{}/rank{}.log", dir, failed_rank), 5));
    fail(fmt::format("rank {} failed: {}", failed_rank, why));
    if (temporary) fs::remove_all(dir);
    return 1;
  }
  ordered_json result = ReadJson(dir + "/rank0.json");
  if (!result.is_object()) return fail("rank 0 wrote no report; logs in " + dir);
  for (int r = 1; r < o.tp; ++r) {
    ordered_json other = ReadJson(fmt::format("{}/rank{}.json", dir, r));
    if (other.is_object()) result["ranks"].push_back({{"rank", r}, {"memory", other["memory"]}});
  }
  if (output == Output::kJson) {
    std::cout << result.dump(2) << "\n";
  } else {
    PrintTable(result);
  }
  if (temporary) fs::remove_all(dir);
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
