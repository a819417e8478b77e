// Benchmark matrices through the real processes: a scheduler, node agents on loopback, one
// breakeven-worker per rank. Results are read back from the scheduler's SQLite file.
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <thread>

#include "common/client.h"
#include "db/sqlite.h"
#include "tests/support/cluster.h"

namespace breakeven::testing {
namespace {

using namespace std::chrono_literals;

class MatrixTest : public ::testing::Test {
 protected:
  void Start(int nodes, std::vector<std::string> node_flags = {}) {
    cluster_.StartScheduler(LocalCluster::FastLiveness());
    std::map<std::string, std::string> want;
    for (int i = 0; i < nodes; ++i) {
      std::string name = std::string(1, static_cast<char>('a' + i));
      cluster_.StartNode(name, node_flags);
      want[name] = "UP";
    }
    ASSERT_TRUE(cluster_.WaitForStates(want, 20s));
  }

  std::unique_ptr<SchedulerClient> Client() {
    ClientOptions o;
    o.scheduler = {"127.0.0.1", static_cast<uint16_t>(cluster_.port())};
    o.token = cluster_.cluster_token();
    o.timeout = 10s;
    auto c = SchedulerClient::Connect(o);
    EXPECT_TRUE(c.ok()) << c.status().message();
    return c.ok() ? std::move(*c) : nullptr;
  }

  v1::SubmitMatrixReply Submit(const std::string& yaml) {
    v1::Envelope req;
    req.mutable_submit_matrix()->set_yaml(yaml);
    req.mutable_submit_matrix()->set_source("test.yaml");
    auto reply = Client()->Call(req);
    EXPECT_TRUE(reply.ok()) << reply.status().message();
    return reply.ok() ? reply->submit_matrix_reply() : v1::SubmitMatrixReply{};
  }

  std::vector<v1::RunInfo> Runs() {
    v1::Envelope req;
    req.mutable_list_runs();
    auto reply = Client()->Call(req);
    EXPECT_TRUE(reply.ok()) << reply.status().message();
    if (!reply.ok()) return {};
    return {reply->list_runs_reply().runs().begin(), reply->list_runs_reply().runs().end()};
  }

  v1::RunInfo Run(uint64_t id) {
    for (const v1::RunInfo& r : Runs()) {
      if (r.id() == id) return r;
    }
    ADD_FAILURE() << "no run " << id;
    return {};
  }

  // Polls until every run is finished (or `pred` holds for run `id`).
  bool WaitFor(const std::function<bool(const std::vector<v1::RunInfo>&)>& pred,
               std::chrono::seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (pred(Runs())) return true;
      std::this_thread::sleep_for(200ms);
    }
    return false;
  }
  static bool AllFinished(const std::vector<v1::RunInfo>& runs) {
    for (const auto& r : runs) {
      if (r.state() != v1::RUN_STATE_SUCCEEDED && r.state() != v1::RUN_STATE_FAILED &&
          r.state() != v1::RUN_STATE_CANCELLED) {
        return false;
      }
    }
    return !runs.empty();
  }
  static bool IsRunning(const std::vector<v1::RunInfo>& runs, uint64_t id) {
    for (const auto& r : runs) {
      if (r.id() == id) return r.state() == v1::RUN_STATE_RUNNING;
    }
    return false;
  }

  int64_t Sql(const std::string& sql) {
    auto db = db::Database::Open(cluster_.db_path(), {.read_only = true});
    EXPECT_TRUE(db.ok()) << db.status().message();
    auto q = (*db)->Prepare(sql);
    EXPECT_TRUE(q.ok()) << q.status().message();
    auto row = q->Step();
    EXPECT_TRUE(row.ok() && *row) << sql;
    return q->Int64(0);
  }
  std::string SqlText(const std::string& sql) {
    auto db = db::Database::Open(cluster_.db_path(), {.read_only = true});
    auto q = (*db)->Prepare(sql);
    EXPECT_TRUE(q.ok()) << q.status().message();
    auto row = q->Step();
    EXPECT_TRUE(row.ok() && *row) << sql;
    return q->IsNull(0) ? "" : q->Text(0);
  }

  std::string Explain() {
    std::string out;
    for (const v1::RunInfo& r : Runs()) {
      out += fmt::format("run {} {} tp{} state {} attempt {} reason '{}'\n", r.id(), r.workload(),
                         r.tp(), static_cast<int>(r.state()), r.attempt(), r.reason());
    }
    return out;
  }

  LocalCluster cluster_;
};

// PIDs of breakeven-worker processes whose command line holds `needle` (tests run in parallel:
// the needle must name this cluster, e.g. by its work directory).
std::vector<pid_t> WorkerPids(const std::string& needle) {
  std::vector<pid_t> pids;
  DIR* proc = opendir("/proc");
  if (!proc) return pids;
  while (dirent* e = readdir(proc)) {
    pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
    if (pid <= 0) continue;
    std::ifstream in(fmt::format("/proc/{}/cmdline", pid));
    std::string cmd((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    if (cmd.find("breakeven-worker") != std::string::npos &&
        cmd.find(needle) != std::string::npos) {
      pids.push_back(pid);
    }
  }
  closedir(proc);
  return pids;
}

TEST_F(MatrixTest, SmallMatrixRunsToStoredResults) {
  Start(2);
  v1::SubmitMatrixReply reply = Submit(R"(name: small
models: [tiny-15m]
workloads: ["32/8", "16/16"]
tensor_parallel: [1, 2]
kv_cache_mib: 32
load: {pattern: sweep, sweep_points: 1, warmup_s: 0.2, duration_s: 1, max_requests: 40,
       max_concurrency: 8}
slo: {ttft_p95: 2s}
)");
  ASSERT_EQ(reply.runs_size(), 4);
  ASSERT_TRUE(WaitFor(AllFinished, 150s)) << Explain();
  for (const v1::RunInfo& r : Runs()) {
    EXPECT_EQ(r.state(), v1::RUN_STATE_SUCCEEDED) << Explain();
    EXPECT_EQ(r.points_done(), 3u) << "sweep: sync, throughput, one rate";
    ASSERT_EQ(r.nodes_size(), 1) << "one host is preferred";
  }
  // Every point stored with its requests; the per-point count matches the request rows.
  EXPECT_EQ(Sql("SELECT COUNT(*) FROM load_points"), 12);
  EXPECT_EQ(Sql("SELECT COUNT(*) FROM requests"), Sql("SELECT SUM(requests) FROM load_points"));
  EXPECT_GT(Sql("SELECT COUNT(*) FROM requests"), 12);
  EXPECT_EQ(Sql("SELECT COUNT(*) FROM load_points WHERE kind = 'rate' AND target > 0"), 4);
  EXPECT_EQ(Sql("SELECT COUNT(*) FROM load_points WHERE ttft_p95_ms IS NULL"), 0);
  EXPECT_EQ(Sql("SELECT COUNT(*) FROM requests WHERE output_tokens NOT IN (8, 16)"), 0);
  // Requests arrive no earlier than scheduled, and the first token comes after the arrival.
  EXPECT_EQ(Sql("SELECT COUNT(*) FROM requests WHERE sent_ms < scheduled_ms - 0.001 OR "
                "first_token_ms < scheduled_ms"),
            0);
  // Run metadata: the software version, backend and nodes of each attempt.
  EXPECT_EQ(Sql("SELECT COUNT(*) FROM run_attempts WHERE state = 'SUCCEEDED' AND backend = 'cpu' "
                "AND software_version != '' AND nodes != ''"),
            4);
  EXPECT_EQ(Sql("SELECT COUNT(*) FROM events WHERE kind = 'placed'"), 4);
  EXPECT_GT(Sql("SELECT COUNT(*) FROM events WHERE kind = 'point'"), 0);

  // The results query answers from what was stored.
  v1::Envelope q;
  q.mutable_query()->set_kind("results");
  (*q.mutable_query()->mutable_args())["matrix"] = "small";
  auto table = Client()->Call(q);
  ASSERT_TRUE(table.ok()) << table.status().message();
  EXPECT_EQ(table->query_reply().table().rows_size(), 12);

  // Worker logs are kept per attempt on the node.
  const v1::RunInfo first = Runs().back();
  EXPECT_FALSE(
      ReadFile(fmt::format("{}/run-{}-1/rank-0.out", cluster_.WorkDir(first.nodes(0)), first.id()))
          .empty());
}

TEST_F(MatrixTest, RanksSpanHostsThroughTheSchedulersStoreWhenAllowed) {
  // Each node offers 200 MiB: one rank (tiny-15m / 2 + 96 MiB of KV cache) fits, two do not.
  Start(2, {"--cpu-memory-mib", "200"});
  v1::SubmitMatrixReply refused = Submit(R"(name: one-host
models: [tiny-15m]
workloads: ["16/8"]
tensor_parallel: [2]
kv_cache_mib: 96
load: {pattern: sync, warmup_s: 0, duration_s: 0.5, max_requests: 3}
)");
  ASSERT_EQ(refused.runs_size(), 1);
  EXPECT_EQ(refused.runs(0).state(), v1::RUN_STATE_PENDING);
  EXPECT_NE(refused.runs(0).reason().find("allow_multi_host"), std::string::npos)
      << refused.runs(0).reason();
  v1::Envelope cancel;
  cancel.mutable_cancel_run()->set_run_id(refused.runs(0).id());
  ASSERT_TRUE(Client()->Call(cancel).ok());

  v1::SubmitMatrixReply reply = Submit(R"(name: two-hosts
models: [tiny-15m]
workloads: ["16/8"]
tensor_parallel: [2]
allow_multi_host: true
kv_cache_mib: 96
load: {pattern: sync, warmup_s: 0, duration_s: 0.5, max_requests: 3}
)");
  ASSERT_EQ(reply.runs_size(), 1);
  const uint64_t id = reply.runs(0).id();
  EXPECT_EQ(reply.runs(0).nodes_size(), 2);
  ASSERT_TRUE(WaitFor([&](const auto& runs) { return AllFinished(runs); }, 90s)) << Explain();
  EXPECT_EQ(Run(id).state(), v1::RUN_STATE_SUCCEEDED) << Explain();
  EXPECT_EQ(Sql(fmt::format("SELECT devices FROM run_attempts WHERE run_id = {}", id)), 2);
  EXPECT_NE(
      SqlText(fmt::format("SELECT detail FROM events WHERE run_id = {} AND kind = 'placed'", id))
          .find("collectives gloo"),
      std::string::npos);
  const int64_t requests =
      Sql(fmt::format("SELECT requests FROM load_points WHERE run_id = {}", id));
  EXPECT_GE(requests, 1);
  EXPECT_LE(requests, 3);
  EXPECT_EQ(Sql("SELECT COUNT(*) FROM requests WHERE ok = 1"), requests);
}

TEST_F(MatrixTest, KilledWorkerFailsTheAttemptAndTheRetrySucceeds) {
  Start(1);
  v1::SubmitMatrixReply reply = Submit(R"(name: retry
models: [tiny-15m]
workloads: ["16/8"]
load: {pattern: sync, duration_s: 2, max_requests: 10000}
max_attempts: 2
)");
  const uint64_t id = reply.runs(0).id();
  ASSERT_TRUE(WaitFor([&](const auto& runs) { return IsRunning(runs, id); }, 30s)) << Explain();
  std::vector<pid_t> pids;
  for (int i = 0; i < 100 && pids.empty(); ++i) {
    pids = WorkerPids(fmt::format("{}/run-{}-1/", cluster_.WorkDir("a"), id));
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(pids.size(), 1u);
  ::kill(pids[0], SIGKILL);
  ASSERT_TRUE(WaitFor(AllFinished, 90s)) << Explain();
  v1::RunInfo run = Run(id);
  EXPECT_EQ(run.state(), v1::RUN_STATE_SUCCEEDED) << Explain();
  EXPECT_EQ(run.attempt(), 2u);
  EXPECT_NE(
      SqlText(fmt::format("SELECT error FROM run_attempts WHERE run_id = {} AND attempt = 1", id))
          .find("status 137"),
      std::string::npos);
  EXPECT_EQ(
      Sql(fmt::format("SELECT COUNT(*) FROM load_points WHERE run_id = {} AND attempt = 2", id)),
      1);
}

TEST_F(MatrixTest, CancelStopsTheWorkers) {
  Start(1);
  v1::SubmitMatrixReply reply = Submit(R"(name: long
models: [tiny-15m]
workloads: ["16/8"]
load: {pattern: sync, duration_s: 120, max_requests: 100000}
)");
  const uint64_t id = reply.runs(0).id();
  ASSERT_TRUE(WaitFor([&](const auto& runs) { return IsRunning(runs, id); }, 30s)) << Explain();
  v1::Envelope cancel;
  cancel.mutable_cancel_run()->set_run_id(id);
  auto r = Client()->Call(cancel);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->run_change_reply().run().state(), v1::RUN_STATE_CANCELLED);
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    gone = WorkerPids(fmt::format("{}/run-{}-1/", cluster_.WorkDir("a"), id)).empty();
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(gone) << "the worker outlived its cancelled run";
}

TEST_F(MatrixTest, RunSurvivesASchedulerRestart) {
  Start(1);
  v1::SubmitMatrixReply reply = Submit(R"(name: restart
models: [tiny-15m]
workloads: ["16/8"]
load: {pattern: concurrency, concurrency: [1, 2, 4], duration_s: 1.5, max_requests: 10000}
)");
  const uint64_t id = reply.runs(0).id();
  ASSERT_TRUE(WaitFor([&](const auto& runs) { return IsRunning(runs, id); }, 30s)) << Explain();
  cluster_.KillScheduler(SIGKILL);
  std::this_thread::sleep_for(1500ms);  // points finish while the scheduler is away
  cluster_.StartScheduler(LocalCluster::FastLiveness());
  ASSERT_TRUE(WaitFor(AllFinished, 90s)) << Explain();
  EXPECT_EQ(Run(id).state(), v1::RUN_STATE_SUCCEEDED) << Explain();
  EXPECT_EQ(Run(id).attempt(), 1u) << "the same attempt went on";
  EXPECT_EQ(Sql(fmt::format("SELECT COUNT(*) FROM load_points WHERE run_id = {}", id)), 3)
      << "points reported while the scheduler was down arrive after it returns";
}

// The user's path: the real CLI against the real cluster, from a matrix file to the economics.
TEST_F(MatrixTest, CliTakesAMatrixFromFileToEconomics) {
  Start(1);
  const std::string bad = cluster_.dir() + "/bad.yaml";
  WriteFile(bad, "name: bad\nmodels: [tiny-15m]\nworkloads: [\"8/8\"]\nslo: {ttft_p95: fast}\n");
  CommandResult r = cluster_.Cli({"submit", bad});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("bad.yaml:4"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("fast"), std::string::npos) << r.err;

  const std::string good = cluster_.dir() + "/cli.yaml";
  WriteFile(good, R"(name: cli
models: [tiny-15m]
workloads: ["16/8"]
load: {pattern: concurrency, concurrency: [1, 2], warmup_s: 0, duration_s: 0.5}
slo: {ttft_p95: 5s}
)");
  r = cluster_.Cli({"submit", good, "--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("PLACED"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("nothing queued"), std::string::npos) << r.out;
  EXPECT_TRUE(Runs().empty());

  r = cluster_.Cli({"submit", good});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = cluster_.Cli({"watch", "--matrix", "1", "--interval-ms", "200"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("1 succeeded"), std::string::npos) << r.out;

  r = cluster_.Cli({"results", "--matrix", "cli", "-o", "csv"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 3) << "a header and two points:\n"
                                                             << r.out;
  EXPECT_NE(r.out.find("ttft_p99_ms"), std::string::npos);
  EXPECT_NE(r.out.find("usd_per_mtok"), std::string::npos);

  r = cluster_.Cli({"compare", "--model", "tiny-15m", "--api", "OpenAI/gpt-4o-mini", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json compare = nlohmann::json::parse(r.out);
  ASSERT_EQ(compare.size(), 1u) << r.out;
  EXPECT_GT(compare[0]["self_usd_per_mtok"].get<double>(), 0);
  EXPECT_GT(compare[0]["breakeven_utilization"].get<double>(), 0);

  r = cluster_.Cli({"plan", "--model", "tiny-15m", "--workload", "16/8", "--rate", "1000", "--slo",
                    "ttft_p95=5s", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json plan = nlohmann::json::parse(r.out);
  ASSERT_EQ(plan.size(), 1u) << r.out;
  EXPECT_GT(plan[0]["replicas"].get<int64_t>(), 1) << "1000 req/s needs several CPU replicas";

  // A price file with a bad row changes nothing.
  const std::string prices = cluster_.dir() + "/prices.csv";
  WriteFile(prices,
            "provider,gpu,usd_per_gpu_hour,source,as_of\nAcme,H100 SXM,1.99,test,2026-11\n"
            "Acme,A100 80GB,cheap,test,2026-11\n");
  const int64_t before = Sql("SELECT COUNT(*) FROM gpu_prices");
  r = cluster_.Cli({"prices", "import", prices});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("prices.csv:3"), std::string::npos) << r.err;
  EXPECT_EQ(Sql("SELECT COUNT(*) FROM gpu_prices"), before);
  EXPECT_EQ(Sql("SELECT COUNT(*) FROM gpu_prices WHERE provider = 'Acme'"), 0);
  r = cluster_.Cli({"prices", "set", "cpu_usd_per_hour", "cheap"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cpu_usd_per_hour"), std::string::npos) << r.err;
}

TEST_F(MatrixTest, BadMatrixIsRefusedWithItsLine) {
  Start(0);
  v1::Envelope req;
  req.mutable_submit_matrix()->set_yaml(
      "name: bad\nmodels: [tiny-15m]\nworkloads: [\"8/8\"]\n"
      "load: {pattern: swep}\n");
  req.mutable_submit_matrix()->set_source("bad.yaml");
  auto reply = Client()->Call(req);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(reply.status().message().find("bad.yaml:4"), std::string::npos)
      << reply.status().message();
  EXPECT_NE(reply.status().message().find("swep"), std::string::npos);
  EXPECT_EQ(Sql("SELECT COUNT(*) FROM matrices"), 0);
  // The scheduler goes on.
  EXPECT_TRUE(Runs().empty());
}

}  // namespace
}  // namespace breakeven::testing
