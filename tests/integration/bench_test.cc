// `breakeven bench` and breakeven-worker as a user runs them: real processes, one per rank,
// rendezvous through a directory, collectives over shared memory or Gloo's TCP transport.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "engine/catalog.h"
#include "engine/export.h"
#include "engine/weights.h"
#include "tests/support/process.h"

namespace breakeven::testing {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

CommandResult Bench(std::vector<std::string> args) {
  std::vector<std::string> argv = {BREAKEVEN_CLI_BIN, "bench"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, seconds(120));
}

TEST(Bench, TensorParallelRunsReportTheSameTokensPerRequest) {
  for (const char* collectives : {"shm", "gloo"}) {
    for (const char* tp : {"1", "2"}) {
      CommandResult r = Bench({"--model", "tiny-15m", "--tp", tp, "--collectives", collectives,
                               "--workload", "24:12", "--concurrency", "3", "--requests", "5",
                               "-o", "json"});
      ASSERT_EQ(r.exit_code, 0) << r.err;
      json j = json::parse(r.out);
      EXPECT_EQ(j["tp"], std::stoi(tp));
      EXPECT_EQ(j["collectives"], std::string(tp) == "1" ? "none" : collectives);
      const json& m = j["metrics"];
      EXPECT_EQ(m["requests"], 5);
      EXPECT_EQ(m["failed"], 0);
      EXPECT_EQ(m["output_tokens"], 5 * 12) << "every request generates exactly OUT tokens";
      EXPECT_EQ(m["input_tokens"], 5 * 24);
      EXPECT_GT(m["output_tokens_per_s"].get<double>(), 0);
      EXPECT_EQ(m["tpot_ms"]["count"], 5);
      EXPECT_LE(m["ttft_ms"]["p50"].get<double>(), m["e2e_ms"]["p50"].get<double>());
      EXPECT_LE(j["engine"]["peak_running"].get<int>(), 3) << "closed loop: at most C in flight";
      if (std::string(tp) == "2") {
        ASSERT_EQ(j["ranks"].size(), 1u);
        // Each rank holds about half the weights.
        EXPECT_LT(j["memory"]["weight_bytes"].get<double>(),
                  0.6 * engine::FindModel("tiny-15m")->WeightBytes(DType::kF32));
      }
    }
  }
}

TEST(Bench, TableOutputHasTheLatencyRows) {
  CommandResult r = Bench({"--model", "tiny-15m", "--workload", "8:4", "--requests", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* row : {"OUTPUT_TOK/S", "TTFT", "TPOT", "ITL", "E2E", "peak RSS"}) {
    EXPECT_NE(r.out.find(row), std::string::npos) << row << " missing from:\n" << r.out;
  }
}

TEST(Bench, ModelFilesFromDiskWork) {
  // A GGUF file and a safetensors directory exported from the dummy weights run like dummy.
  std::string dir = MakeTempDir("benchfiles");
  engine::ModelConfig c = *engine::FindModel("tiny-15m");
  auto dummy = engine::MakeDummyWeights(c, 0);
  ASSERT_TRUE(engine::ExportGguf(*dummy, c, dir + "/tiny.gguf", DType::kBF16).ok());
  ASSERT_TRUE(engine::ExportHfDirectory(*dummy, c, dir + "/hf", DType::kF32, 2).ok());
  for (const std::string& weights : {dir + "/tiny.gguf", dir + "/hf"}) {
    CommandResult r = Bench({"--weights", weights, "--tp", "2", "--workload", "8:4",
                             "--requests", "2", "-o", "json"});
    ASSERT_EQ(r.exit_code, 0) << weights << ": " << r.err;
    EXPECT_EQ(json::parse(r.out)["metrics"]["output_tokens"], 8);
  }
  RemoveTree(dir);
}

TEST(Bench, BadInputIsNamed) {
  struct Case {
    std::vector<std::string> args;
    std::string expect;
  } cases[] = {
      {{"--model", "llama-9b"}, "unknown model 'llama-9b'"},
      {{"--model", "tiny-15m", "--tp", "3"}, "tp 3 does not divide the 8 attention heads"},
      {{"--weights", "/nonexistent/model"}, "/nonexistent/model"},
      {{"--model", "tiny-15m", "--workload", "3000:100"}, "context limit of 2048"},
      {{"--model", "tiny-15m", "--workload", "12"}, "IN:OUT"},
      {{"--model", "llama-3.1-70b", "--requests", "1"}, "GiB per rank"},
  };
  for (const Case& c : cases) {
    CommandResult r = Bench(c.args);
    EXPECT_NE(r.exit_code, 0) << c.args[0];
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << "for " << c.args[1] << ": " << r.err;
  }
}

// Two ranks started by hand; one is killed mid-run. The survivor must not hang: it reports the
// failure and exits non-zero within its collective deadline.
void KillOneRank(const std::string& collectives, int victim) {
  std::string dir = MakeTempDir("ranks");
  std::vector<TestProcess> ranks;
  for (int r = 0; r < 2; ++r) {
    ranks.push_back(TestProcess::Start(
        {BREAKEVEN_WORKER_BIN, "--model", "llama-110m", "--tp", "2", "--rank", std::to_string(r),
         "--store", dir + "/store", "--group", "kill-test", "--collectives", collectives,
         "--workload", "16:2000", "--requests", "1", "--timeout-ms", "3000", "--kv-cache-mib",
         "128", "--report", dir + "/rank" + std::to_string(r) + ".json"},
        dir + "/rank" + std::to_string(r) + ".log"));
  }
  // Wait until the group is generating (rank 0's log stays quiet; give loading time).
  std::this_thread::sleep_for(seconds(4));
  ASSERT_TRUE(ranks[0].running() && ranks[1].running()) << ranks[0].Log() << ranks[1].Log();
  ranks[victim].Signal(SIGKILL);
  ranks[victim].Wait(seconds(5));
  const int survivor = 1 - victim;
  auto start = std::chrono::steady_clock::now();
  std::optional<int> code = ranks[survivor].Wait(seconds(20));
  ASSERT_TRUE(code.has_value()) << "rank " << survivor << " hung after rank " << victim << " died";
  EXPECT_NE(*code, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(12));
  json report = json::parse(ReadFile(dir + "/rank" + std::to_string(survivor) + ".json"));
  EXPECT_FALSE(report["ok"].get<bool>());
  EXPECT_FALSE(report["error"].get<std::string>().empty());
  RemoveTree(dir);
}

TEST(Worker, SurvivorOfADeadFollowerFailsInsteadOfHanging) {
  KillOneRank("shm", 1);
  KillOneRank("gloo", 1);
}

TEST(Worker, FollowerOfADeadRankZeroFailsInsteadOfHanging) {
  KillOneRank("shm", 0);
  KillOneRank("gloo", 0);
}

TEST(Models, CatalogListsRealAndTestShapes) {
  CommandResult r = RunCommand({BREAKEVEN_CLI_BIN, "models", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json models = json::parse(r.out)["models"];
  std::set<std::string> names;
  for (const auto& m : models) names.insert(m["name"].get<std::string>());
  for (const char* want : {"llama-3.1-8b", "llama-3.1-70b", "llama-3.2-1b", "llama-3.2-3b",
                           "qwen2.5-7b", "mistral-7b", "tiny-15m", "llama-110m"}) {
    EXPECT_TRUE(names.count(want)) << want;
  }
  for (const auto& m : models) {
    if (m["name"] == "llama-3.1-8b") {
      EXPECT_EQ(m["parameters"], 8030261248);
      EXPECT_EQ(m["kv_bytes_per_token_bf16"], 131072);  // 2 x 32 layers x 8 heads x 128 x 2 B
    }
  }
}

}  // namespace
}  // namespace breakeven::testing
