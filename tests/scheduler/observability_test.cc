// The scheduler's /metrics and /sd/workers: what the registry and the run manager count, how
// worker addresses travel from heartbeats to service discovery, and the HTTP endpoints.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "db/migrate.h"
#include "scheduler/run_manager.h"
#include "scheduler/scheduler_metrics.h"
#include "scheduler/server.h"
#include "scheduler/worker_discovery.h"
#include "tests/scheduler/scheduler_state.h"
#include "tests/support/cluster.h"
#include "tests/support/process.h"

namespace breakeven::scheduler {
namespace {

using nlohmann::json;

constexpr char kOneRun[] = R"(name: unit
models: [tiny-15m]
workloads: ["32/8"]
kv_cache_mib: 16
load: {pattern: sync, duration_s: 1, warmup_s: 0}
)";

TEST(WorkerDiscovery, JsonListsEachTargetWithItsLabels) {
  EXPECT_EQ(WorkerTargetsJson({}), "[]");
  json sd = json::parse(WorkerTargetsJson({{"10.0.0.7:41235", 12, 1, "llama-110m", "node-a"},
                                           {"10.0.0.8:41000", 13, 2, "tiny-15m", "node-b"}}));
  ASSERT_EQ(sd.size(), 2u);
  EXPECT_EQ(sd[0], json::parse(R"({"targets": ["10.0.0.7:41235"],
      "labels": {"run_id": "12", "attempt": "1", "model": "llama-110m", "node": "node-a"}})"));
  EXPECT_EQ(sd[1]["targets"], json::array({"10.0.0.8:41000"}));
  EXPECT_EQ(sd[1]["labels"]["attempt"], "2");
}

TEST(WorkerDiscovery, AWildcardHostBecomesTheNodesAddress) {
  EXPECT_EQ(ReachableAddress("0.0.0.0:41235", "10.0.0.7:53122"), "10.0.0.7:41235");
  EXPECT_EQ(ReachableAddress("[::]:41235", "10.0.0.7:53122"), "10.0.0.7:41235");
  EXPECT_EQ(ReachableAddress("0.0.0.0:41235", "fd00::7:53122"), "[fd00::7]:41235");
  // A real host is what the node was told to use: kept.
  EXPECT_EQ(ReachableAddress("192.168.1.5:41235", "10.0.0.7:53122"), "192.168.1.5:41235");
  EXPECT_EQ(ReachableAddress("127.0.0.1:41235", "127.0.0.1:53122"), "127.0.0.1:41235");
  // Without a connection (or with nonsense) there is nothing better than what was reported.
  EXPECT_EQ(ReachableAddress("0.0.0.0:41235", ""), "0.0.0.0:41235");
  EXPECT_EQ(ReachableAddress("not an address", "10.0.0.7:53122"), "not an address");
}

TEST(SchedulerMetricsNames, FramesAndRefusalsUseTheCatalogsLabels) {
  v1::Envelope e;
  e.mutable_hello();
  EXPECT_EQ(FrameType(e, v1::ROLE_UNSPECIFIED), "hello");
  e.mutable_register_node();
  EXPECT_EQ(FrameType(e, v1::ROLE_NODE), "register");
  e.mutable_heartbeat();
  EXPECT_EQ(FrameType(e, v1::ROLE_NODE), "heartbeat");
  e.mutable_run_event();
  EXPECT_EQ(FrameType(e, v1::ROLE_NODE), "run_event");
  e.mutable_store_get();
  EXPECT_EQ(FrameType(e, v1::ROLE_WORKER), "store");
  e.mutable_list_nodes();
  EXPECT_EQ(FrameType(e, v1::ROLE_ADMIN), "admin");
  EXPECT_EQ(FrameType(e, v1::ROLE_NODE), "list_nodes") << "a node sending an admin request";
  EXPECT_EQ(FrameType(v1::Envelope(), v1::ROLE_NODE), "empty");

  EXPECT_EQ(RefusalReason("oversized_frame"), "oversized");
  EXPECT_EQ(RefusalReason("malformed_frame"), "malformed");
  EXPECT_EQ(RefusalReason("protocol"), "unknown_type");
  EXPECT_EQ(RefusalReason("bad_token"), "bad_token");
  EXPECT_EQ(RefusalReason("before_hello"), "before_hello");
}

TEST(SchedulerMetricsNames, FrameCountersAreTheFamilysChildren) {
  SchedulerMetrics m;
  v1::Envelope beat;
  beat.mutable_heartbeat();
  m.FrameCounter(beat, v1::ROLE_NODE).Inc();
  m.FrameCounter(beat, v1::ROLE_NODE).Inc();
  EXPECT_EQ(m.frames.WithLabels({"heartbeat"}).value(), 2);
  v1::Envelope list;
  list.mutable_list_nodes();
  m.FrameCounter(list, v1::ROLE_ADMIN).Inc();
  m.FrameCounter(list, v1::ROLE_NODE).Inc();
  EXPECT_EQ(m.frames.WithLabels({"admin"}).value(), 1);
  EXPECT_EQ(m.frames.WithLabels({"list_nodes"}).value(), 1);
}

class ObservabilityTest : public SchedulerStateTest {
 protected:
  v1::Heartbeat Beat(uint64_t node, uint64_t run, uint32_t attempt, const std::string& metrics) {
    v1::Heartbeat hb;
    hb.set_node_id(node);
    auto* r = hb.add_running();
    r->set_run_id(run);
    r->set_attempt(attempt);
    r->set_metrics_address(metrics);
    return hb;
  }
};

TEST_F(ObservabilityTest, HeartbeatAddressIsDiscoveredUntilTheAttemptEnds) {
  const uint64_t a = AddNode("node-a", 1, 8, "10.1.2.3:5555");
  const uint64_t id = Submit(kOneRun).runs(0).id();
  v1::RunEvent started = Event(id, 1);
  started.set_started(true);
  ASSERT_TRUE(runs_->OnRunEvent(a, started).ok());
  // Listed without an address (the worker has not bound it yet): nothing to discover.
  runs_->OnHeartbeat(a, Beat(a, id, 1, ""));
  EXPECT_TRUE(runs_->WorkerTargets().empty());

  runs_->OnHeartbeat(a, Beat(a, id, 1, "0.0.0.0:41235"));
  std::vector<WorkerTarget> targets = runs_->WorkerTargets();
  ASSERT_EQ(targets.size(), 1u);
  EXPECT_EQ(targets[0].address, "10.1.2.3:41235") << "the wildcard host names the node";
  EXPECT_EQ(targets[0].run_id, id);
  EXPECT_EQ(targets[0].attempt, 1u);
  EXPECT_EQ(targets[0].model, "tiny-15m");
  EXPECT_EQ(targets[0].node, "node-a");

  // An address for another attempt (a stale worker) is not this one's.
  v1::Heartbeat both = Beat(a, id, 1, "0.0.0.0:41235");
  *both.add_running() = Beat(a, id, 7, "10.1.2.3:1").running(0);
  runs_->OnHeartbeat(a, both);
  ASSERT_EQ(runs_->WorkerTargets().size(), 1u);
  EXPECT_EQ(runs_->WorkerTargets()[0].address, "10.1.2.3:41235");

  v1::RunEvent done = Event(id, 1);
  done.set_succeeded(true);
  ASSERT_TRUE(runs_->OnRunEvent(a, done).ok());
  EXPECT_TRUE(runs_->WorkerTargets().empty()) << "a finished attempt leaves discovery";
}

TEST_F(ObservabilityTest, RunsAreCountedByStateWithTheQueue) {
  const uint64_t a = AddNode("node-a", 1, 8, "10.1.2.3:5555");
  metrics::Counter placed, waiting;
  runs_->set_metrics(DbWriteTimer(), &placed, &waiting);
  // One CPU: the first run starts, the second waits for it.
  v1::SubmitMatrixReply reply = Submit(std::string(kOneRun) + "repeats: 2\n");
  ASSERT_EQ(reply.runs_size(), 2);
  const uint64_t first = reply.runs(0).id();
  EXPECT_EQ(placed.value(), 1);
  EXPECT_EQ(waiting.value(), 1);

  auto counts = runs_->CountByState();
  EXPECT_EQ(counts[v1::RUN_STATE_STARTING], 1);
  EXPECT_EQ(counts[v1::RUN_STATE_PENDING], 1);
  clock_.Advance(Millis(2500));
  RunManager::QueueStats queue = runs_->Queue();
  EXPECT_EQ(queue.depth, 1);
  EXPECT_DOUBLE_EQ(queue.oldest_age_seconds, 2.5);

  v1::RunEvent started = Event(first, 1);
  started.set_started(true);
  ASSERT_TRUE(runs_->OnRunEvent(a, started).ok());
  EXPECT_EQ(runs_->CountByState()[v1::RUN_STATE_RUNNING], 1);
  v1::RunEvent done = Event(first, 1);
  done.set_succeeded(true);
  ASSERT_TRUE(runs_->OnRunEvent(a, done).ok());
  counts = runs_->CountByState();
  EXPECT_EQ(counts[v1::RUN_STATE_SUCCEEDED], 1);
  EXPECT_EQ(counts[v1::RUN_STATE_RUNNING], 0);
  ASSERT_TRUE(runs_->Cancel(reply.runs(1).id()).ok());
  EXPECT_EQ(runs_->CountByState()[v1::RUN_STATE_CANCELLED], 1);
  EXPECT_EQ(runs_->Queue().depth, 0);
  EXPECT_EQ(runs_->Queue().oldest_age_seconds, 0);

  // A restarted scheduler counts the finished runs from the database.
  Close();
  Open();
  counts = runs_->CountByState();
  EXPECT_EQ(counts[v1::RUN_STATE_SUCCEEDED], 1);
  EXPECT_EQ(counts[v1::RUN_STATE_CANCELLED], 1);
  EXPECT_EQ(counts[v1::RUN_STATE_PENDING], 0);
}

TEST_F(ObservabilityTest, DatabaseWritesAreTimedByOperation) {
  metrics::Registry registry;
  auto& family =
      registry.AddHistogram("db_seconds", "test", metrics::LatencyBuckets(), {"operation"});
  registry_->set_db_writes(DbWriteTimer(&family));
  runs_->set_metrics(DbWriteTimer(&family), nullptr, nullptr);
  const uint64_t a = AddNode("node-a", 1, 8, "10.1.2.3:5555");
  ASSERT_TRUE(registry_->Heartbeat(a, 1).ok());
  ASSERT_TRUE(registry_->FlushHeartbeats().ok());
  ASSERT_TRUE(registry_->FlushHeartbeats().ok());  // nothing changed: no transaction
  Submit(kOneRun);
  EXPECT_EQ(family.WithLabels({"node_register"}).Read().count, 1u);
  EXPECT_EQ(family.WithLabels({"heartbeat_flush"}).Read().count, 1u);
  EXPECT_EQ(family.WithLabels({"submit"}).Read().count, 1u);
  EXPECT_EQ(family.WithLabels({"attempt_start"}).Read().count, 1u);
}

TEST_F(ObservabilityTest, NodesAreCountedByTheirShownState) {
  const uint64_t a = AddNode("a", 1, 8, "127.0.0.1:1");
  AddNode("b", 2, 8, "127.0.0.1:2");
  AddNode("c", 3, 8, "127.0.0.1:3");
  ASSERT_TRUE(registry_->Drain("c", "maintenance").ok());
  clock_.Advance(Millis(4000));  // past suspect_after (3 s), before down_after (5 s)
  ASSERT_TRUE(registry_->Heartbeat(a, 1).ok());
  ASSERT_TRUE(registry_->Sweep().ok());
  auto counts = registry_->CountByState();
  EXPECT_EQ(counts[v1::NODE_STATE_UP], 1);
  EXPECT_EQ(counts[v1::NODE_STATE_SUSPECT], 1);
  EXPECT_EQ(counts[v1::NODE_STATE_DRAINED], 1);
  EXPECT_EQ(counts[v1::NODE_STATE_DOWN], 0);
  EXPECT_EQ(registry_->PeerAddressOf(a), "127.0.0.1:1");
}

// The endpoints themselves, on a Server with its own event loop.
TEST_F(ObservabilityTest, ServerServesMetricsAndDiscovery) {
  const uint64_t a = AddNode("node-a", 1, 8, "10.1.2.3:5555");
  const uint64_t id = Submit(kOneRun).runs(0).id();
  runs_->OnHeartbeat(a, Beat(a, id, 1, "10.1.2.3:41235"));

  SchedulerConfig config;
  config.listen = {"127.0.0.1", 0};
  config.http = {"127.0.0.1", 0};
  asio::io_context io(1);
  Server server(io, config, TokenChecker("0123456789abcdef0123", ""), *registry_,
                {runs_.get(), rendezvous_.get(), run_store_.get(), db_.get()});
  ASSERT_TRUE(server.Start().ok());
  std::thread loop([&] { io.run(); });
  const std::string http = server.bound_http().ToString();

  testing::HttpReply metrics = testing::HttpGet(http, "/metrics");
  testing::HttpReply sd = testing::HttpGet(http, "/sd/workers");
  asio::post(io, [&] {
    server.Stop();
    io.stop();
  });
  loop.join();

  EXPECT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.content_type, metrics::kContentType);
  const std::string& m = metrics.body;
  for (const char* state : {"UP", "SUSPECT", "DOWN", "DRAINING", "DRAINED"}) {
    EXPECT_EQ(testing::MetricSample(m, "breakeven_scheduler_nodes", {{"state", state}}),
              std::string(state) == "UP" ? 1.0 : 0.0)
        << state << "\n"
        << m;
  }
  for (const char* state : {"PENDING", "STARTING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"}) {
    EXPECT_EQ(testing::MetricSample(m, "breakeven_scheduler_runs", {{"state", state}}),
              std::string(state) == "STARTING" ? 1.0 : 0.0)
        << state << "\n"
        << m;
  }
  EXPECT_EQ(testing::MetricSample(m, "breakeven_scheduler_queue_depth"), 0.0) << m;
  EXPECT_EQ(testing::MetricSample(m, "breakeven_scheduler_frames_refused_total",
                                  {{"reason", "unknown_type"}}),
            0.0)
      << m;
  EXPECT_EQ(testing::MetricSample(m, "breakeven_build_info", {{"component", "scheduler"}}), 1.0);

  EXPECT_EQ(sd.status, 200);
  EXPECT_EQ(sd.content_type, "application/json");
  json targets = json::parse(sd.body);
  ASSERT_EQ(targets.size(), 1u) << sd.body;
  EXPECT_EQ(targets[0]["targets"][0], "10.1.2.3:41235");
  EXPECT_EQ(targets[0]["labels"]["node"], "node-a");
}

}  // namespace
}  // namespace breakeven::scheduler
