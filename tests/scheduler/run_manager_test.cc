// RunManager with a fake clock, a real SQLite file, registered nodes and a fake connection that
// records what the scheduler sends: the lifecycle, retries, cancellation, schedules, restarts.
#include "scheduler/run_manager.h"

#include <gtest/gtest.h>

#include "tests/scheduler/scheduler_state.h"

namespace breakeven::scheduler {
namespace {

constexpr char kTwoRuns[] = R"(name: unit
models: [tiny-15m]
workloads: ["32/8"]
tensor_parallel: [1, 2]
kv_cache_mib: 16
load: {pattern: sync, duration_s: 1, warmup_s: 0}
max_attempts: 2
)";

// Records what the run manager sends; nodes in disconnected_ are unreachable.
class RunManagerTest : public SchedulerStateTest {
 protected:
  bool Deliver(uint64_t node, const v1::Envelope& f) override {
    if (disconnected_.count(node)) return false;
    sent_.push_back({node, f});
    return true;
  }

  v1::RunInfo Info(uint64_t id) {
    auto info = run_store_->RunInfo(static_cast<int64_t>(id));
    EXPECT_TRUE(info.ok()) << info.status().message();
    return info.ok() ? *info : v1::RunInfo{};
  }

  // Assignments sent since the last call.
  std::vector<std::pair<uint64_t, v1::RunAssignment>> TakeAssignments() {
    std::vector<std::pair<uint64_t, v1::RunAssignment>> out;
    for (auto& [node, f] : sent_) {
      if (f.has_run_assignment()) out.emplace_back(node, f.run_assignment());
    }
    sent_.clear();
    return out;
  }

  v1::RunEvent Point(uint64_t run, uint32_t attempt, uint32_t index, int requests) {
    v1::RunEvent e = Event(run, attempt);
    v1::PointResult* p = e.mutable_point();
    p->set_index(index);
    p->set_planned(1);
    p->set_kind("sync");
    p->set_target(1);
    p->mutable_metrics()->set_requests(requests);
    p->mutable_metrics()->set_input_tokens(32 * requests);
    p->mutable_metrics()->set_output_tokens(8 * requests);
    p->mutable_metrics()->set_duration_s(2);
    p->mutable_metrics()->mutable_ttft_ms()->set_count(static_cast<uint64_t>(requests));
    p->mutable_metrics()->mutable_ttft_ms()->set_p95(12.5);
    for (int i = 0; i < requests; ++i) {
      auto* c = p->mutable_requests();
      c->add_arrival_ms(i * 100.0);
      c->add_sent_ms(i * 100.0);
      c->add_first_token_ms(i * 100.0 + 10);
      c->add_last_token_ms(i * 100.0 + 50);
      c->add_input_tokens(32);
      c->add_output_tokens(8);
      c->add_chunks(8);
      c->add_ok(true);
    }
    return e;
  }

  int64_t Count(const std::string& sql) {
    auto q = db_->Prepare(sql);
    EXPECT_TRUE(q.ok());
    auto row = q->Step();
    EXPECT_TRUE(row.ok() && *row);
    return q->Int64(0);
  }

  v1::Heartbeat Beat(uint64_t node, std::vector<std::pair<uint64_t, uint32_t>> running) {
    v1::Heartbeat hb;
    hb.set_node_id(node);
    for (auto [run, attempt] : running) {
      auto* r = hb.add_running();
      r->set_run_id(run);
      r->set_attempt(attempt);
    }
    return hb;
  }

  std::vector<std::pair<uint64_t, v1::Envelope>> sent_;
  std::set<uint64_t> disconnected_;
};

TEST_F(RunManagerTest, RunGoesFromPlacementToStoredResults) {
  const uint64_t a = AddNode("a", 1);
  v1::SubmitMatrixReply reply = Submit(kTwoRuns);
  ASSERT_EQ(reply.runs_size(), 2);
  EXPECT_NE(reply.matrix_id(), 0u);
  // One node, one CPU: the first run starts, the second waits for the device.
  const v1::RunInfo& first = reply.runs(0);
  EXPECT_EQ(first.state(), v1::RUN_STATE_STARTING);
  EXPECT_EQ(first.nodes_size(), 1);
  EXPECT_EQ(reply.runs(1).state(), v1::RUN_STATE_PENDING);
  EXPECT_NE(reply.runs(1).reason().find("waiting"), std::string::npos) << reply.runs(1).reason();

  auto assigned = TakeAssignments();
  ASSERT_EQ(assigned.size(), 1u);
  EXPECT_EQ(assigned[0].first, a);
  const v1::RunAssignment& as = assigned[0].second;
  EXPECT_EQ(as.run_id(), first.id());
  EXPECT_EQ(as.attempt(), 1u);
  EXPECT_EQ(as.model(), "tiny-15m");
  EXPECT_EQ(as.tp(), 1u);
  EXPECT_EQ(as.collectives(), "shm");
  EXPECT_EQ(as.group(), fmt::format("run-{}/1/", first.id()));
  EXPECT_EQ(as.threads_per_rank(), 4u);
  EXPECT_TRUE(rendezvous_->IsOpen(as.group()));

  v1::RunEvent started = Event(first.id(), 1);
  started.set_started(true);
  ASSERT_TRUE(runs_->OnRunEvent(a, started).ok());
  EXPECT_EQ(Info(first.id()).state(), v1::RUN_STATE_RUNNING);

  ASSERT_TRUE(runs_->OnRunEvent(a, Point(first.id(), 1, 0, 3)).ok());
  // The same point again (a node resending after a reconnect) is stored once.
  ASSERT_TRUE(runs_->OnRunEvent(a, Point(first.id(), 1, 0, 3)).ok());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM load_points"), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM requests"), 3);
  // device-seconds per Mtok total: 1 device x 2 s / (3 x 40 tokens) x 1e6 = 16666.67
  EXPECT_EQ(Count("SELECT CAST(device_seconds_per_mtok_total AS INTEGER) FROM load_points"), 16666);
  EXPECT_EQ(Info(first.id()).points_done(), 1u);

  v1::RunEvent done = Event(first.id(), 1);
  done.set_succeeded(true);
  ASSERT_TRUE(runs_->OnRunEvent(a, done).ok());
  EXPECT_EQ(Info(first.id()).state(), v1::RUN_STATE_SUCCEEDED);
  EXPECT_DOUBLE_EQ(Info(first.id()).progress(), 1);
  EXPECT_FALSE(rendezvous_->IsOpen(as.group())) << "the group is forgotten when the attempt ends";

  // The device comes back once the node's heartbeat no longer lists the attempt.
  runs_->Tick();
  EXPECT_TRUE(TakeAssignments().empty()) << "still held: the node has not confirmed";
  runs_->OnHeartbeat(a, Beat(a, {}));
  runs_->Tick();
  auto second = TakeAssignments();
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].second.run_id(), reply.runs(1).id());
  EXPECT_EQ(second[0].second.tp(), 2u);
  EXPECT_EQ(second[0].second.ranks_size(), 2);
  EXPECT_EQ(second[0].second.threads_per_rank(), 2u) << "4 cores split over 2 ranks";
}

TEST_F(RunManagerTest, GpuRunsAreAssignedTheCudaBackendAndNccl) {
  v1::RegisterNode req;
  req.set_name("gpu-1");
  for (int i = 0; i < 2; ++i) {
    auto* d = req.add_devices();
    d->set_kind(v1::DEVICE_KIND_CUDA);
    d->set_index(static_cast<uint32_t>(i));
    d->set_name("NVIDIA H200");
    d->set_memory_bytes(uint64_t{141} << 30);
    d->set_compute_units(132);
  }
  auto reg = registry_->Register(req, {"boot-gpu-1", "0.1.0", "127.0.0.1:1"}, 7);
  ASSERT_TRUE(reg.ok()) << reg.status().message();
  v1::SubmitMatrixReply reply = Submit(R"(name: gpu
models: [tiny-15m]
workloads: ["32/8"]
tensor_parallel: [2]
devices: [H200]
kv_cache_mib: 16
load: {pattern: sync, duration_s: 1, warmup_s: 0}
)");
  ASSERT_EQ(reply.runs_size(), 1);
  EXPECT_EQ(reply.runs(0).state(), v1::RUN_STATE_STARTING) << reply.runs(0).reason();
  auto assigned = TakeAssignments();
  ASSERT_EQ(assigned.size(), 1u);
  EXPECT_EQ(assigned[0].second.backend(), "cuda");
  // Tensors through NCCL on the GPUs; the step plans keep a host group.
  EXPECT_EQ(assigned[0].second.collectives(), "nccl");
}

TEST_F(RunManagerTest, FailedAttemptIsRetriedThenFails) {
  const uint64_t a = AddNode("a", 1);
  v1::SubmitMatrixReply reply = Submit(R"(name: retry
models: [tiny-15m]
workloads: ["32/8"]
load: {pattern: sync, duration_s: 1}
max_attempts: 2
)");
  const uint64_t id = reply.runs(0).id();
  ASSERT_EQ(TakeAssignments().size(), 1u);
  v1::RunEvent failed = Event(id, 1);
  failed.set_failed("rank 0 exited with status 1: out of memory");
  ASSERT_TRUE(runs_->OnRunEvent(a, failed).ok());
  v1::RunInfo info = Info(id);
  EXPECT_EQ(info.state(), v1::RUN_STATE_PENDING);
  EXPECT_NE(info.reason().find("out of memory"), std::string::npos) << info.reason();
  EXPECT_NE(info.reason().find("retrying"), std::string::npos) << info.reason();

  runs_->OnHeartbeat(a, Beat(a, {}));  // the workers are gone
  runs_->Tick();
  auto again = TakeAssignments();
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].second.attempt(), 2u);
  EXPECT_EQ(again[0].second.group(), fmt::format("run-{}/2/", id)) << "a fresh rendezvous group";
  EXPECT_FALSE(rendezvous_->IsOpen(fmt::format("run-{}/1/", id)));

  // A late event from the first attempt changes nothing (and its workers are told to stop).
  v1::RunEvent late = Point(id, 1, 0, 2);
  ASSERT_TRUE(runs_->OnRunEvent(a, late).ok());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM load_points"), 0);
  ASSERT_FALSE(sent_.empty());
  EXPECT_TRUE(sent_.back().second.has_kill_run());
  sent_.clear();

  failed = Event(id, 2);
  failed.set_failed("rank 0 exited with status 1: out of memory");
  ASSERT_TRUE(runs_->OnRunEvent(a, failed).ok());
  info = Info(id);
  EXPECT_EQ(info.state(), v1::RUN_STATE_FAILED);
  EXPECT_EQ(info.attempt(), 2u);
  EXPECT_NE(info.finished_at_unix_ms(), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM run_attempts WHERE state = 'FAILED'"), 2);
}

TEST_F(RunManagerTest, NodeThatStopsListingARunFailsIt) {
  const uint64_t a = AddNode("a", 1);
  const uint64_t id = Submit(kTwoRuns).runs(0).id();
  TakeAssignments();
  v1::RunEvent started = Event(id, 1);
  started.set_started(true);
  ASSERT_TRUE(runs_->OnRunEvent(a, started).ok());
  runs_->OnHeartbeat(a, Beat(a, {{id, 1}}));
  EXPECT_EQ(Info(id).state(), v1::RUN_STATE_RUNNING);
  runs_->OnHeartbeat(a, Beat(a, {}));  // the agent restarted and lost its workers
  v1::RunInfo info = Info(id);
  EXPECT_EQ(info.state(), v1::RUN_STATE_PENDING);
  EXPECT_NE(info.reason().find("no longer runs it"), std::string::npos) << info.reason();
}

TEST_F(RunManagerTest, StartTimeoutAndDownNodeFailAttempts) {
  const uint64_t a = AddNode("a", 1);
  const uint64_t id = Submit(kTwoRuns).runs(0).id();
  TakeAssignments();
  clock_.Advance(RunConfig{}.start_timeout + Millis(1));
  runs_->Tick();
  EXPECT_NE(Info(id).reason().find("did not start"), std::string::npos) << Info(id).reason();
  (void)a;
}

TEST_F(RunManagerTest, CancelStopsWorkersAndFreesTheRun) {
  const uint64_t a = AddNode("a", 1);
  v1::SubmitMatrixReply reply = Submit(kTwoRuns);
  const uint64_t running = reply.runs(0).id(), pending = reply.runs(1).id();
  TakeAssignments();

  auto cancelled = runs_->Cancel(pending);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status().message();
  EXPECT_EQ(cancelled->state(), v1::RUN_STATE_CANCELLED);
  EXPECT_TRUE(sent_.empty()) << "a pending run has no workers to stop";

  cancelled = runs_->Cancel(running);
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->state(), v1::RUN_STATE_CANCELLED);
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0].first, a);
  EXPECT_TRUE(sent_[0].second.has_kill_run());
  EXPECT_EQ(sent_[0].second.kill_run().run_id(), running);

  auto again = runs_->Cancel(running);
  EXPECT_EQ(again.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(again.status().message().find("CANCELLED"), std::string::npos);
  EXPECT_EQ(runs_->Cancel(9999).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(runs_->active(), 0u);
}

TEST_F(RunManagerTest, DryRunPlacesNothingAndStoresNothing) {
  AddNode("a", 1);
  AddNode("b", 2);
  v1::SubmitMatrixReply reply = Submit(kTwoRuns, /*dry_run=*/true);
  EXPECT_EQ(reply.matrix_id(), 0u);
  ASSERT_EQ(reply.runs_size(), 2);
  // Two nodes: both runs would start now, on different nodes.
  EXPECT_EQ(reply.runs(0).state(), v1::RUN_STATE_PLACED);
  EXPECT_EQ(reply.runs(1).state(), v1::RUN_STATE_PLACED);
  EXPECT_NE(reply.runs(0).nodes(0), reply.runs(1).nodes(0));
  EXPECT_EQ(reply.runs(1).load(), "sync x 1s");
  EXPECT_TRUE(sent_.empty());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM runs"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM matrices"), 0);
}

TEST_F(RunManagerTest, RunThatCannotFitStaysPendingWithTheReason) {
  AddNode("small", 1, /*mem_gib=*/1);
  v1::SubmitMatrixReply reply = Submit(R"(name: big
models: [llama-3.1-8b]
workloads: ["128/8"]
kv_cache_mib: 64
load: {pattern: sync, duration_s: 1}
)");
  ASSERT_EQ(reply.runs_size(), 1);
  EXPECT_EQ(reply.runs(0).state(), v1::RUN_STATE_PENDING);
  EXPECT_NE(reply.runs(0).reason().find("GiB per rank"), std::string::npos)
      << reply.runs(0).reason();
  EXPECT_TRUE(TakeAssignments().empty());
  runs_->Tick();
  EXPECT_EQ(Info(reply.runs(0).id()).state(), v1::RUN_STATE_PENDING);
}

TEST_F(RunManagerTest, BadMatrixStoresNothing) {
  v1::SubmitMatrixRequest req;
  req.set_yaml("name: x\nmodels: [no-such-model]\nworkloads: [\"8/8\"]\n");
  req.set_source("bad.yaml");
  auto reply = runs_->Submit(req);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(reply.status().message().find("bad.yaml:2"), std::string::npos)
      << reply.status().message();
  EXPECT_EQ(Count("SELECT COUNT(*) FROM matrices"), 0);
}

TEST_F(RunManagerTest, ScheduleFiresBatches) {
  AddNode("a", 1);
  v1::SubmitMatrixReply reply = Submit(R"(name: hourly
models: [tiny-15m]
workloads: ["32/8"]
load: {pattern: sync, duration_s: 1}
schedule: "@hourly"
)");
  EXPECT_EQ(reply.runs_size(), 0) << "a scheduled matrix runs when its schedule fires";
  ASSERT_GT(reply.next_fire_unix_ms(), clock_.WallUnixMs());
  EXPECT_EQ(reply.next_fire_unix_ms() % 3600000, 0);
  runs_->Tick();
  EXPECT_EQ(Count("SELECT COUNT(*) FROM runs"), 0);

  clock_.Advance(Millis(reply.next_fire_unix_ms() - clock_.WallUnixMs()));
  runs_->Tick();
  EXPECT_EQ(Count("SELECT COUNT(*) FROM runs WHERE batch = 1"), 1);
  EXPECT_EQ(TakeAssignments().size(), 1u);
  // A restarted scheduler keeps the schedule.
  Close();
  Open();
  clock_.Advance(Millis(3600000));
  runs_->Tick();
  EXPECT_EQ(Count("SELECT COUNT(*) FROM runs WHERE batch = 2"), 1);
}

TEST_F(RunManagerTest, RestartKeepsRunsAndWaitsForNodesToConfirm) {
  const uint64_t a = AddNode("a", 1);
  const uint64_t b = AddNode("b", 2);
  v1::SubmitMatrixReply reply = Submit(kTwoRuns);
  const uint64_t r1 = reply.runs(0).id(), r2 = reply.runs(1).id();
  auto assigned = TakeAssignments();
  ASSERT_EQ(assigned.size(), 2u);
  std::map<uint64_t, uint64_t> node_of;
  for (auto& [node, as] : assigned) {
    node_of[as.run_id()] = node;
    v1::RunEvent started = Event(as.run_id(), 1);
    started.set_started(true);
    ASSERT_TRUE(runs_->OnRunEvent(node, started).ok());
  }

  Close();
  Open();
  EXPECT_EQ(runs_->active(), 2u);
  // r1's node still runs it; r2's node came back without it.
  runs_->OnHeartbeat(node_of[r1], Beat(node_of[r1], {{r1, 1}}));
  runs_->OnHeartbeat(node_of[r2], Beat(node_of[r2], {}));
  EXPECT_EQ(Info(r1).state(), v1::RUN_STATE_RUNNING);
  EXPECT_EQ(Info(r2).state(), v1::RUN_STATE_PENDING);
  EXPECT_NE(Info(r2).reason().find("no longer runs it"), std::string::npos);

  v1::RunEvent done = Event(r1, 1);
  done.set_succeeded(true);
  ASSERT_TRUE(runs_->OnRunEvent(node_of[r1], done).ok());
  EXPECT_EQ(Info(r1).state(), v1::RUN_STATE_SUCCEEDED);
  (void)a;
  (void)b;
}

TEST_F(RunManagerTest, UnconfirmedRunFailsAfterTheOrphanTimeout) {
  const uint64_t a = AddNode("a", 1);
  const uint64_t id = Submit(kTwoRuns).runs(0).id();
  TakeAssignments();
  v1::RunEvent started = Event(id, 1);
  started.set_started(true);
  ASSERT_TRUE(runs_->OnRunEvent(a, started).ok());
  Close();
  Open();
  clock_.Advance(RunConfig{}.orphan_timeout + Millis(1));
  runs_->Tick();
  v1::RunInfo info = Info(id);
  EXPECT_EQ(info.state(), v1::RUN_STATE_PENDING);
  EXPECT_NE(info.reason().find("no node confirmed it was still running"), std::string::npos)
      << info.reason();
  EXPECT_EQ(Count("SELECT COUNT(*) FROM run_attempts WHERE state = 'FAILED'"), 1);
}

TEST_F(RunManagerTest, WorkersOfDeadAttemptsAreStopped) {
  const uint64_t a = AddNode("a", 1);
  runs_->OnHeartbeat(a, Beat(a, {{424242, 3}}));
  ASSERT_EQ(sent_.size(), 1u);
  ASSERT_TRUE(sent_[0].second.has_kill_run());
  EXPECT_EQ(sent_[0].second.kill_run().run_id(), 424242u);
  EXPECT_EQ(sent_[0].second.kill_run().attempt(), 3u);
}

TEST_F(RunManagerTest, DrainedNodeShowsDrainingWhileItsRunIsActive) {
  const uint64_t a = AddNode("a", 1);
  const uint64_t id = Submit(kTwoRuns).runs(0).id();
  TakeAssignments();
  ASSERT_TRUE(registry_->Drain("a", "maintenance").ok());
  EXPECT_EQ(registry_->List()[0].state(), v1::NODE_STATE_DRAINING);
  ASSERT_TRUE(runs_->Cancel(id).ok());
  runs_->OnHeartbeat(a, Beat(a, {}));
  EXPECT_EQ(registry_->List()[0].state(), v1::NODE_STATE_DRAINED);
  EXPECT_EQ(runs_->ActiveRunsOn(a), 0);
}

}  // namespace
}  // namespace breakeven::scheduler
