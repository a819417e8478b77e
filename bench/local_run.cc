#include "bench/local_run.h"

#include <fmt/format.h>
#include <signal.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>
#include <vector>

#include "common/process.h"
#include "common/system.h"

namespace breakeven::bench {

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

}  // namespace

Result<ordered_json> RunLocalBenchmark(const LocalRunOptions& o) {
  auto fail = [](const std::string& why) { return Status(StatusCode::kUnavailable, why); };
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
  const std::string worker = o.worker_binary.empty() ? FindWorkerBinary() : o.worker_binary;
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
                                     "--graphs",
                                     o.graphs ? "on" : "off",
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
                                     "--collectives",
                                     o.collectives,
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
    if (temporary) fs::remove_all(dir);
    return fail(fmt::format("rank {} failed: {}", failed_rank, why));
  }
  ordered_json result = ReadJson(dir + "/rank0.json");
  if (!result.is_object()) return fail("rank 0 wrote no report; logs in " + dir);
  for (int r = 1; r < o.tp; ++r) {
    ordered_json other = ReadJson(fmt::format("{}/rank{}.json", dir, r));
    if (other.is_object()) result["ranks"].push_back({{"rank", r}, {"memory", other["memory"]}});
  }
  if (temporary) fs::remove_all(dir);
  return result;
}

}  // namespace breakeven::bench
