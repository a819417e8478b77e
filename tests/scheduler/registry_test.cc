// NodeRegistry with a fake clock and a real (in-memory) SQLite database.
#include "scheduler/registry.h"

#include <gtest/gtest.h>

#include "db/migrate.h"
#include "tests/support/fake_clock.h"
#include "tests/support/process.h"

namespace breakeven::scheduler {
namespace {

using testing::FakeClock;

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("registry");
    Reopen();
  }
  void TearDown() override {
    registry_.reset();
    store_.reset();
    db_.reset();
    testing::RemoveTree(dir_);
  }

  // Opens the database file afresh, as a restarted scheduler would.
  void Reopen() {
    registry_.reset();
    store_.reset();
    db_.reset();
    auto db = db::Database::Open(dir_ + "/r.db");
    ASSERT_TRUE(db.ok());
    db_ = std::move(db).value();
    ASSERT_TRUE(db::Migrate(*db_).ok());
    store_ = std::move(db::NodeStore::Create(*db_)).value();
    registry_ = std::make_unique<NodeRegistry>(*store_, clock_, LivenessConfig{});
    ASSERT_TRUE(registry_->Load().ok());
  }

  Result<Registration> Register(const std::string& name, const std::string& boot,
                                SessionId session) {
    v1::RegisterNode req;
    req.set_name(name);
    req.set_hostname(name + ".lan");
    auto* d = req.add_devices();
    d->set_kind(v1::DEVICE_KIND_CPU);
    d->set_memory_bytes(1 << 30);
    d->set_compute_units(4);
    return registry_->Register(req, {boot, "0.1.0", "127.0.0.1:1"}, session);
  }

  v1::NodeInfo Get(const std::string& name) {
    for (const auto& n : registry_->List()) {
      if (n.name() == name) return n;
    }
    ADD_FAILURE() << "no node " << name;
    return {};
  }

  std::vector<std::string> EventKinds(const std::string& name) {
    std::vector<std::string> kinds;
    auto events = registry_->Events(name, 100);
    EXPECT_TRUE(events.ok());
    for (auto it = events->rbegin(); it != events->rend(); ++it) kinds.push_back(it->kind());
    return kinds;
  }

  std::string dir_;
  FakeClock clock_;
  std::unique_ptr<db::Database> db_;
  std::unique_ptr<db::NodeStore> store_;
  std::unique_ptr<NodeRegistry> registry_;
};

TEST_F(RegistryTest, SilentNodeGoesSuspectThenDownAndABeatBringsItBack) {
  auto reg = Register("n", "boot-1", 1);
  ASSERT_TRUE(reg.ok());
  EXPECT_EQ(reg->state, v1::NODE_STATE_UP);

  clock_.Advance(Millis(2999));
  ASSERT_EQ(*registry_->Sweep(), 0);
  EXPECT_EQ(Get("n").state(), v1::NODE_STATE_UP);
  clock_.Advance(Millis(1));
  ASSERT_EQ(*registry_->Sweep(), 1);
  EXPECT_EQ(Get("n").state(), v1::NODE_STATE_SUSPECT);
  clock_.Advance(Millis(2000));
  ASSERT_EQ(*registry_->Sweep(), 1);
  EXPECT_EQ(Get("n").state(), v1::NODE_STATE_DOWN);

  auto state = registry_->Heartbeat(reg->node_id, 1);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(*state, v1::NODE_STATE_UP);
  EXPECT_EQ((std::vector<std::string>{"registered", "state", "state", "state"}), EventKinds("n"));
}

TEST_F(RegistryTest, HeartbeatsKeepANodeUp) {
  auto reg = Register("n", "boot-1", 1);
  for (int i = 0; i < 20; ++i) {
    clock_.Advance(Millis(1000));
    ASSERT_TRUE(registry_->Heartbeat(reg->node_id, 1).ok());
    ASSERT_EQ(*registry_->Sweep(), 0);
  }
  EXPECT_EQ(Get("n").state(), v1::NODE_STATE_UP);
  EXPECT_EQ(Get("n").last_heartbeat_unix_ms(), clock_.WallUnixMs());
}

TEST_F(RegistryTest, NewBootIdIsARestartSameBootIdAReconnect) {
  auto first = Register("n", "boot-1", 1);
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first->restarted);

  // Same process on a new connection (the old one half-open): a reconnect that supersedes it.
  auto again = Register("n", "boot-1", 2);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->restarted);
  EXPECT_EQ(again->superseded, 1u);
  EXPECT_EQ(again->node_id, first->node_id);
  EXPECT_EQ(Get("n").restarts(), 0u);

  registry_->Disconnected(first->node_id, 2);
  clock_.Advance(Millis(500));
  auto restarted = Register("n", "boot-2", 3);
  ASSERT_TRUE(restarted.ok());
  EXPECT_TRUE(restarted->restarted);
  EXPECT_EQ(Get("n").restarts(), 1u);
  EXPECT_EQ(Get("n").boot_id(), "boot-2");
  EXPECT_EQ((std::vector<std::string>{"registered", "reconnected", "restarted"}), EventKinds("n"));
}

TEST_F(RegistryTest, NameHeldByALiveAgentIsRefusedUntilItFallsSilent) {
  auto owner = Register("n", "boot-1", 1);
  ASSERT_TRUE(owner.ok());
  auto impostor = Register("n", "boot-2", 2);
  ASSERT_FALSE(impostor.ok());
  EXPECT_EQ(impostor.status().code(), StatusCode::kAlreadyExists);
  EXPECT_NE(impostor.status().message().find("--name"), std::string::npos);
  EXPECT_EQ(Get("n").boot_id(), "boot-1");

  // The owner's host died without closing its connection: once it is past the suspect
  // threshold, the new agent may take the name.
  clock_.Advance(Millis(3000));
  auto taken = Register("n", "boot-2", 2);
  ASSERT_TRUE(taken.ok());
  EXPECT_EQ(taken->superseded, 1u);
  EXPECT_TRUE(taken->restarted);
}

TEST_F(RegistryTest, HeartbeatsAreCheckedAgainstTheConnection) {
  auto a = Register("a", "boot-a", 1);
  auto b = Register("b", "boot-b", 2);
  auto unknown = registry_->Heartbeat(999, 1);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  auto stolen = registry_->Heartbeat(b->node_id, 1);
  ASSERT_FALSE(stolen.ok());
  EXPECT_EQ(stolen.status().code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(registry_->Heartbeat(a->node_id, 1).ok());
}

TEST_F(RegistryTest, DrainNeedsAReasonAndResumeNeedsADrain) {
  ASSERT_TRUE(Register("n", "boot-1", 1).ok());
  EXPECT_EQ(registry_->Drain("n", "").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(registry_->Drain("nope", "x").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(registry_->Resume("n").status().code(), StatusCode::kFailedPrecondition);

  auto drained = registry_->Drain("n", "xid 79");
  ASSERT_TRUE(drained.ok());
  EXPECT_EQ(drained->state(), v1::NODE_STATE_DRAINED);
  EXPECT_EQ(drained->drain_reason(), "xid 79");

  // Silence takes a drained node DOWN; it keeps its drain through that.
  clock_.Advance(Millis(5000));
  ASSERT_TRUE(registry_->Sweep().ok());
  EXPECT_EQ(Get("n").state(), v1::NODE_STATE_DOWN);
  EXPECT_EQ(Get("n").drain_reason(), "xid 79");
  auto back = Register("n", "boot-2", 2);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->state, v1::NODE_STATE_DRAINED);

  auto resumed = registry_->Resume("n");
  ASSERT_TRUE(resumed.ok());
  EXPECT_EQ(resumed->state(), v1::NODE_STATE_UP);
  EXPECT_EQ(resumed->drain_reason(), "");
}

TEST_F(RegistryTest, RestartedSchedulerReloadsNodesAndGivesThemTimeToReturn) {
  auto a = Register("a", "boot-a", 1);
  auto b = Register("b", "boot-b", 2);
  ASSERT_TRUE(registry_->Drain("b", "disk").ok());
  clock_.Advance(Millis(700));
  ASSERT_TRUE(registry_->Heartbeat(a->node_id, 1).ok());
  ASSERT_TRUE(registry_->FlushHeartbeats().ok());
  int64_t beat_at = clock_.WallUnixMs();

  Reopen();  // the scheduler restarts; no agent has reconnected yet
  ASSERT_EQ(registry_->size(), 2u);
  v1::NodeInfo ra = Get("a");
  EXPECT_EQ(ra.id(), a->node_id);
  EXPECT_FALSE(ra.connected());
  EXPECT_EQ(ra.last_heartbeat_unix_ms(), beat_at);
  EXPECT_EQ(Get("b").state(), v1::NODE_STATE_DRAINED);
  EXPECT_EQ(Get("b").drain_reason(), "disk");

  // Silence is counted from the restart, not from the last heartbeat before it.
  clock_.Advance(Millis(2900));
  EXPECT_EQ(*registry_->Sweep(), 0);
  auto back = Register("a", "boot-a", 10);
  ASSERT_TRUE(back.ok());
  EXPECT_FALSE(back->restarted);
  EXPECT_EQ(back->node_id, a->node_id);

  clock_.Advance(Millis(5000));
  ASSERT_TRUE(registry_->Sweep().ok());
  EXPECT_EQ(Get("b").state(), v1::NODE_STATE_DOWN) << "b never came back";
  // History survived the restart.
  auto kinds = EventKinds("a");
  EXPECT_EQ(kinds.front(), "registered");
  EXPECT_EQ(kinds.back(), "state");
}

TEST_F(RegistryTest, HeartbeatTimesReachTheDatabaseInABoundedRollingPass) {
  std::vector<uint64_t> ids;
  for (int i = 0; i < 5; ++i) {
    auto r = Register("n" + std::to_string(i), "boot", static_cast<SessionId>(i + 1));
    ASSERT_TRUE(r.ok());
    ids.push_back(r->node_id);
  }
  clock_.Advance(Millis(500));
  for (size_t i = 0; i < ids.size(); ++i) ASSERT_TRUE(registry_->Heartbeat(ids[i], i + 1).ok());
  int64_t beat_ms = clock_.WallUnixMs();

  auto persisted = [&] {
    auto rows = store_->LoadAll();
    int n = 0;
    for (const auto& row : *rows) n += row.last_heartbeat_unix_ms == beat_ms;
    return n;
  };
  ASSERT_TRUE(registry_->FlushHeartbeats(2).ok());
  EXPECT_EQ(persisted(), 2);
  ASSERT_TRUE(registry_->FlushHeartbeats(2).ok());
  EXPECT_EQ(persisted(), 4);
  ASSERT_TRUE(registry_->FlushHeartbeats(2).ok());
  EXPECT_EQ(persisted(), 5) << "the pass wraps around to the nodes it has not written";
  ASSERT_TRUE(registry_->FlushHeartbeats(2).ok());  // nothing dirty: nothing written
  EXPECT_EQ(persisted(), 5);
}

TEST_F(RegistryTest, BadNamesAreRefused) {
  EXPECT_EQ(Register("", "boot", 1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Register(std::string(300, 'x'), "boot", 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Register("ok", "", 1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(registry_->size(), 0u);
}

}  // namespace
}  // namespace breakeven::scheduler
