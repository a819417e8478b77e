// /metrics and /sd/workers through the real processes: a scheduler and node agents with --http on
// loopback, and a running benchmark whose rank-0 worker Prometheus finds through the scheduler.
// Each body is also checked by `promtool check metrics` where Prometheus' tool is installed.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "common/client.h"
#include "tests/support/cluster.h"

namespace breakeven::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

bool HavePromtool() {
  return RunCommand({"/bin/sh", "-c", "command -v promtool"}, 10s).exit_code == 0;
}

// `promtool check metrics` on `body`: its output, empty when it found nothing wrong.
std::string PromtoolProblems(const std::string& dir, const std::string& body) {
  const std::string file = dir + "/scrape.txt";
  WriteFile(file, body);
  CommandResult r = RunCommand({"/bin/sh", "-c", "promtool check metrics < '" + file + "'"}, 20s);
  if (r.exit_code == 0) return "";
  return "exit " + std::to_string(r.exit_code) + ": " + r.out + r.err;
}

// Families every daemon of a kind serves from its first scrape.
const char* const kSchedulerFamilies[] = {
    "breakeven_scheduler_nodes",
    "breakeven_scheduler_runs",
    "breakeven_scheduler_queue_depth",
    "breakeven_scheduler_queue_oldest_age_seconds",
    "breakeven_scheduler_placements_total",
    "breakeven_scheduler_heartbeat_duration_seconds",
    "breakeven_scheduler_frames_total",
    "breakeven_scheduler_frames_refused_total",
    "breakeven_scheduler_db_write_duration_seconds",
    "breakeven_build_info",
};
const char* const kNodeFamilies[] = {
    "breakeven_node_device_memory_used_bytes",
    "breakeven_node_device_memory_total_bytes",
    "breakeven_node_calibration_copy_bytes_per_second",
    "breakeven_node_calibration_matmul_flops_per_second",
    "breakeven_node_workers_running",
    "breakeven_node_heartbeats_sent_total",
    "breakeven_build_info",
};
const char* const kWorkerFamilies[] = {
    "breakeven_worker_requests_in_flight",
    "breakeven_worker_prompt_tokens_total",
    "breakeven_worker_generated_tokens_total",
    "breakeven_worker_ttft_seconds",
    "breakeven_worker_inter_token_latency_seconds",
    "breakeven_worker_batch_size",
    "breakeven_worker_kv_blocks",
    "breakeven_worker_step_duration_seconds",
    "breakeven_worker_preemptions_total",
    "breakeven_build_info",
};

void ExpectFamilies(const std::string& body, const char* const* begin, const char* const* end,
                    const std::string& who) {
  for (const char* const* f = begin; f != end; ++f) {
    EXPECT_NE(body.find(std::string("# TYPE ") + *f + " "), std::string::npos)
        << who << " serves no family " << *f << ":\n"
        << body;
  }
}

class MetricsTest : public ::testing::Test {
 protected:
  // A scheduler and nodes named a, b, ... each serving /metrics on a port of its own.
  void Start(int nodes, std::vector<std::string> first_node_flags = {}) {
    cluster_.StartScheduler(LocalCluster::FastLiveness());
    std::map<std::string, std::string> want;
    for (int i = 0; i < nodes; ++i) {
      const std::string name(1, static_cast<char>('a' + i));
      node_http_[name] = "127.0.0.1:" + std::to_string(FreePort());
      std::vector<std::string> flags = {"--http", node_http_[name]};
      if (i == 0) flags.insert(flags.end(), first_node_flags.begin(), first_node_flags.end());
      cluster_.StartNode(name, flags);
      want[name] = "UP";
    }
    ASSERT_TRUE(cluster_.WaitForStates(want, 20s));
  }

  std::string SchedulerHttp() const { return "127.0.0.1:" + std::to_string(cluster_.http_port()); }

  // Scrapes until `pred` holds for the body (or `timeout` passes); returns the last body.
  std::string ScrapeUntil(const std::string& address,
                          const std::function<bool(const std::string&)>& pred,
                          std::chrono::seconds timeout, const std::string& path = "/metrics") {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string body;
    for (;;) {
      HttpReply r = HttpGet(address, path);
      body = r.body;
      if (r.status == 200 && pred(body)) return body;
      if (std::chrono::steady_clock::now() >= deadline) return body;
      std::this_thread::sleep_for(100ms);
    }
  }

  v1::SubmitMatrixReply Submit(const std::string& yaml) {
    ClientOptions o;
    o.scheduler = {"127.0.0.1", static_cast<uint16_t>(cluster_.port())};
    o.token = cluster_.cluster_token();
    o.timeout = 10s;
    auto client = SchedulerClient::Connect(o);
    EXPECT_TRUE(client.ok()) << client.status().message();
    if (!client.ok()) return {};
    v1::Envelope req;
    req.mutable_submit_matrix()->set_yaml(yaml);
    req.mutable_submit_matrix()->set_source("metrics.yaml");
    auto reply = (*client)->Call(req);
    EXPECT_TRUE(reply.ok()) << reply.status().message();
    return reply.ok() ? reply->submit_matrix_reply() : v1::SubmitMatrixReply{};
  }

  void ExpectPromtoolAccepts(const std::string& body, const std::string& who) {
    if (!have_promtool_) return;
    EXPECT_EQ(PromtoolProblems(cluster_.dir(), body), "") << who << ":\n" << body;
  }

  LocalCluster cluster_;
  std::map<std::string, std::string> node_http_;
  const bool have_promtool_ = HavePromtool();
};

TEST_F(MetricsTest, SchedulerAndNodesServeTheCatalog) {
  Start(2, {"--calibrate", "on"});

  // Nodes by state come from the registry at scrape time: both UP, every state present.
  const std::string scheduler = ScrapeUntil(
      SchedulerHttp(),
      [](const std::string& b) {
        return MetricSample(b, "breakeven_scheduler_nodes", {{"state", "UP"}}) == 2.0 &&
               MetricSample(b, "breakeven_scheduler_frames_total", {{"type", "heartbeat"}})
                       .value_or(0) > 0;
      },
      10s);
  HttpReply reply = HttpGet(SchedulerHttp(), "/metrics");
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.content_type, "text/plain; version=0.0.4; charset=utf-8");
  ExpectFamilies(scheduler, std::begin(kSchedulerFamilies), std::end(kSchedulerFamilies),
                 "the scheduler");
  EXPECT_EQ(MetricSample(scheduler, "breakeven_scheduler_nodes", {{"state", "UP"}}), 2.0)
      << scheduler;
  for (const char* state : {"SUSPECT", "DOWN", "DRAINING", "DRAINED"}) {
    EXPECT_EQ(MetricSample(scheduler, "breakeven_scheduler_nodes", {{"state", state}}), 0.0)
        << state;
  }
  for (const char* state : {"PENDING", "STARTING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"}) {
    EXPECT_EQ(MetricSample(scheduler, "breakeven_scheduler_runs", {{"state", state}}), 0.0)
        << state;
  }
  EXPECT_EQ(MetricSample(scheduler, "breakeven_scheduler_queue_depth"), 0.0);
  EXPECT_EQ(MetricSample(scheduler, "breakeven_scheduler_queue_oldest_age_seconds"), 0.0);
  // Every connection opens with Hello: the nodes' and the CLI's that polled their states.
  EXPECT_GE(
      MetricSample(scheduler, "breakeven_scheduler_frames_total", {{"type", "hello"}}).value_or(0),
      2.0);
  EXPECT_EQ(MetricSample(scheduler, "breakeven_scheduler_frames_total", {{"type", "register"}}),
            2.0);
  EXPECT_GT(
      MetricSample(scheduler, "breakeven_scheduler_heartbeat_duration_seconds_count").value_or(0),
      0);
  // Registrations were written to SQLite and timed.
  EXPECT_GE(MetricSample(scheduler, "breakeven_scheduler_db_write_duration_seconds_count",
                         {{"operation", "node_register"}})
                .value_or(0),
            2);
  EXPECT_EQ(MetricSample(scheduler, "breakeven_build_info", {{"component", "scheduler"}}), 1.0);
  ExpectPromtoolAccepts(scheduler, "scheduler /metrics");

  // A wrong token is refused and counted under the catalog's reason.
  {
    ClientOptions o;
    o.scheduler = {"127.0.0.1", static_cast<uint16_t>(cluster_.port())};
    o.token = "not-the-cluster-token-at-all";
    o.timeout = 5s;
    EXPECT_FALSE(SchedulerClient::Connect(o).ok());
    std::string after = ScrapeUntil(
        SchedulerHttp(),
        [](const std::string& b) {
          return MetricSample(b, "breakeven_scheduler_frames_refused_total",
                              {{"reason", "bad_token"}}) == 1.0;
        },
        5s);
    EXPECT_EQ(
        MetricSample(after, "breakeven_scheduler_frames_refused_total", {{"reason", "bad_token"}}),
        1.0)
        << after;
  }

  for (const auto& [name, address] : node_http_) {
    const std::string who = "node " + name;
    EXPECT_EQ(HttpGet(address, "/healthz").body, "ok\n") << who;
    const std::string body = ScrapeUntil(
        address,
        [&](const std::string& b) {
          return MetricSample(b, "breakeven_node_heartbeats_sent_total", {{"node", name}})
                     .value_or(0) > 0;
        },
        10s);
    if (name == "a") {
      // Only node a calibrated; b has no calibration series, which is how "not measured" reads.
      ExpectFamilies(body, std::begin(kNodeFamilies), std::end(kNodeFamilies), who);
      EXPECT_GT(MetricSample(body, "breakeven_node_calibration_copy_bytes_per_second",
                             {{"node", "a"}, {"device", "cpu"}})
                    .value_or(0),
                1e8)
          << body;
      EXPECT_GT(MetricSample(body, "breakeven_node_calibration_matmul_flops_per_second",
                             {{"node", "a"}, {"device", "cpu"}})
                    .value_or(0),
                1e8)
          << body;
    } else {
      EXPECT_FALSE(MetricSample(body, "breakeven_node_calibration_copy_bytes_per_second")) << body;
    }
    EXPECT_GT(
        MetricSample(body, "breakeven_node_heartbeats_sent_total", {{"node", name}}).value_or(0), 0)
        << body;
    EXPECT_EQ(MetricSample(body, "breakeven_node_workers_running", {{"node", name}}), 0.0) << body;
    const auto total = MetricSample(body, "breakeven_node_device_memory_total_bytes",
                                    {{"node", name}, {"device", "cpu"}});
    const auto used = MetricSample(body, "breakeven_node_device_memory_used_bytes",
                                   {{"node", name}, {"device", "cpu"}});
    ASSERT_TRUE(total && used) << body;
    EXPECT_GT(*total, 0);
    EXPECT_GT(*used, 0);
    EXPECT_LE(*used, *total);
    EXPECT_EQ(MetricSample(body, "breakeven_build_info", {{"component", "node"}}), 1.0);
    ExpectPromtoolAccepts(body, who + " /metrics");
  }
  if (!have_promtool_) GTEST_SKIP() << "promtool is not installed: the exposition was not linted";
}

TEST_F(MetricsTest, RunningWorkerIsDiscoveredAndServesTokens) {
  Start(1);
  EXPECT_EQ(HttpGet(SchedulerHttp(), "/sd/workers").body, "[]");
  v1::SubmitMatrixReply reply = Submit(R"(name: live
models: [tiny-15m]
workloads: ["16/8"]
load: {pattern: sync, duration_s: 120, max_requests: 100000}
)");
  ASSERT_EQ(reply.runs_size(), 1);
  const uint64_t id = reply.runs(0).id();

  // The worker reports its address to the node, the node to the scheduler in a heartbeat.
  json targets;
  const std::string sd = ScrapeUntil(
      SchedulerHttp(),
      [&](const std::string& b) {
        targets = json::parse(b, nullptr, /*allow_exceptions=*/false);
        return targets.is_array() && !targets.empty();
      },
      60s, "/sd/workers");
  ASSERT_TRUE(targets.is_array() && targets.size() == 1) << sd;
  const json& group = targets[0];
  ASSERT_EQ(group["targets"].size(), 1u) << sd;
  const std::string worker = group["targets"][0];
  EXPECT_EQ(group["labels"]["run_id"], std::to_string(id)) << sd;
  EXPECT_EQ(group["labels"]["attempt"], "1") << sd;
  EXPECT_EQ(group["labels"]["model"], "tiny-15m") << sd;
  EXPECT_EQ(group["labels"]["node"], "a") << sd;

  const std::map<std::string, std::string> labels = {
      {"run_id", std::to_string(id)}, {"attempt", "1"}, {"model", "tiny-15m"}};
  const std::string body = ScrapeUntil(
      worker,
      [&](const std::string& b) {
        return MetricSample(b, "breakeven_worker_generated_tokens_total", labels).value_or(0) > 0 &&
               MetricSample(b, "breakeven_worker_inter_token_latency_seconds_count", labels)
                       .value_or(0) > 0;
      },
      60s);
  ExpectFamilies(body, std::begin(kWorkerFamilies), std::end(kWorkerFamilies), "the worker");
  EXPECT_GT(MetricSample(body, "breakeven_worker_generated_tokens_total", labels).value_or(0), 0)
      << body;
  EXPECT_GT(MetricSample(body, "breakeven_worker_prompt_tokens_total", labels).value_or(0), 0)
      << body;
  EXPECT_GT(MetricSample(body, "breakeven_worker_ttft_seconds_count", labels).value_or(0), 0)
      << body;
  EXPECT_GT(MetricSample(body, "breakeven_worker_step_duration_seconds_count", labels).value_or(0),
            0)
      << body;
  auto used = MetricSample(body, "breakeven_worker_kv_blocks",
                           {{"run_id", std::to_string(id)}, {"state", "used"}});
  auto free = MetricSample(body, "breakeven_worker_kv_blocks",
                           {{"run_id", std::to_string(id)}, {"state", "free"}});
  ASSERT_TRUE(used && free) << body;
  EXPECT_GT(*used + *free, 0) << body;
  EXPECT_EQ(MetricSample(body, "breakeven_build_info", {{"component", "worker"}}), 1.0);
  ExpectPromtoolAccepts(body, "worker /metrics");

  // The node and the scheduler see the run too.
  const std::string node = ScrapeUntil(
      node_http_["a"],
      [](const std::string& b) {
        return MetricSample(b, "breakeven_node_workers_running").value_or(0) == 1;
      },
      10s);
  EXPECT_EQ(MetricSample(node, "breakeven_node_workers_running", {{"node", "a"}}), 1.0) << node;
  const std::string scheduler = ScrapeUntil(
      SchedulerHttp(),
      [](const std::string& b) {
        return MetricSample(b, "breakeven_scheduler_runs", {{"state", "RUNNING"}}) == 1.0;
      },
      10s);
  EXPECT_EQ(MetricSample(scheduler, "breakeven_scheduler_runs", {{"state", "RUNNING"}}), 1.0)
      << scheduler;
  EXPECT_EQ(MetricSample(scheduler, "breakeven_scheduler_placements_total", {{"result", "placed"}}),
            1.0)
      << scheduler;
  EXPECT_GE(MetricSample(scheduler, "breakeven_scheduler_frames_total", {{"type", "run_event"}})
                .value_or(0),
            1)
      << scheduler;

  // Once the run is cancelled its worker leaves discovery, and the run is counted as such.
  ClientOptions o;
  o.scheduler = {"127.0.0.1", static_cast<uint16_t>(cluster_.port())};
  o.token = cluster_.cluster_token();
  auto client = SchedulerClient::Connect(o);
  ASSERT_TRUE(client.ok()) << client.status().message();
  v1::Envelope cancel;
  cancel.mutable_cancel_run()->set_run_id(id);
  ASSERT_TRUE((*client)->Call(cancel).ok());
  EXPECT_EQ(
      ScrapeUntil(
          SchedulerHttp(), [](const std::string& b) { return b == "[]"; }, 10s, "/sd/workers"),
      "[]");
  const std::string after = ScrapeUntil(
      SchedulerHttp(),
      [](const std::string& b) {
        return MetricSample(b, "breakeven_scheduler_runs", {{"state", "CANCELLED"}}) == 1.0;
      },
      10s);
  EXPECT_EQ(MetricSample(after, "breakeven_scheduler_runs", {{"state", "CANCELLED"}}), 1.0)
      << after;
  EXPECT_EQ(MetricSample(after, "breakeven_scheduler_runs", {{"state", "RUNNING"}}), 0.0) << after;
  if (!have_promtool_) GTEST_SKIP() << "promtool is not installed: the exposition was not linted";
}

}  // namespace
}  // namespace breakeven::testing
