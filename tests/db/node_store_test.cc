#include "db/node_store.h"

#include <gtest/gtest.h>

#include "common/names.h"
#include "db/migrate.h"
#include "scheduler/node_state.h"

namespace breakeven::db {
namespace {

class NodeStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = Database::Open(":memory:");
    ASSERT_TRUE(db.ok());
    db_ = std::move(db).value();
    ASSERT_TRUE(Migrate(*db_).ok());
    auto store = NodeStore::Create(*db_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }

  NodeRow Sample(const std::string& name) {
    NodeRow row;
    row.name = name;
    row.hostname = name + ".lan";
    row.version = "0.1.0";
    row.boot_id = "boot-" + name;
    row.address = "10.0.0.1:5000";
    row.liveness_since_unix_ms = 1000;
    row.registered_at_unix_ms = 1000;
    row.last_registered_at_unix_ms = 1000;
    for (uint32_t i = 0; i < 2; ++i) {
      v1::Device d;
      d.set_kind(v1::DEVICE_KIND_CUDA);
      d.set_index(i);
      d.set_name("NVIDIA H100 80GB HBM3");
      d.set_uuid("GPU-" + std::to_string(i));
      d.set_memory_bytes(85'000'000'000ull);
      d.set_compute_units(132);
      d.set_compute_capability("9.0");
      row.devices.push_back(d);
    }
    return row;
  }

  std::unique_ptr<Database> db_;
  std::unique_ptr<NodeStore> store_;
};

TEST_F(NodeStoreTest, RegistrationRoundTripsWithDevices) {
  NodeRow row = Sample("h1");
  ASSERT_TRUE(store_->SaveRegistration(&row, {1000, {}, "registered", "first"}).ok());
  EXPECT_GT(row.id, 0);

  auto loaded = store_->LoadAll();
  ASSERT_TRUE(loaded.ok());
  ASSERT_EQ(loaded->size(), 1u);
  const NodeRow& n = (*loaded)[0];
  EXPECT_EQ(n.id, row.id);
  EXPECT_EQ(n.hostname, "h1.lan");
  EXPECT_EQ(n.liveness, v1::NODE_STATE_UP);
  ASSERT_EQ(n.devices.size(), 2u);
  EXPECT_EQ(n.devices[1].uuid(), "GPU-1");
  EXPECT_EQ(n.devices[1].compute_capability(), "9.0");
  EXPECT_EQ(n.devices[0].memory_bytes(), 85'000'000'000ull);

  // Re-registering replaces the device list instead of appending to it.
  row.devices.resize(1);
  row.boot_id = "boot-2";
  ASSERT_TRUE(store_->SaveRegistration(&row, {2000, {}, "restarted", "again"}).ok());
  loaded = store_->LoadAll();
  EXPECT_EQ((*loaded)[0].devices.size(), 1u);
  EXPECT_EQ((*loaded)[0].boot_id, "boot-2");
}

TEST_F(NodeStoreTest, EventsComeBackNewestFirstAndPerNode) {
  NodeRow a = Sample("a"), b = Sample("b");
  ASSERT_TRUE(store_->SaveRegistration(&a, {1, {}, "registered", "a1"}).ok());
  ASSERT_TRUE(store_->SaveRegistration(&b, {2, {}, "registered", "b1"}).ok());
  a.drain_reason = "fan";
  a.drained_at_unix_ms = 3;
  ASSERT_TRUE(store_->SaveDrain(a, {3, a.id, "drain", "a2"}).ok());

  auto all = store_->ListEvents(std::nullopt, 10);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].detail(), "a2");
  EXPECT_EQ((*all)[0].node(), "a");
  EXPECT_EQ((*all)[2].detail(), "a1");

  auto only_b = store_->ListEvents(b.id, 10);
  ASSERT_EQ(only_b->size(), 1u);
  EXPECT_EQ((*only_b)[0].node(), "b");

  auto limited = store_->ListEvents(std::nullopt, 2);
  EXPECT_EQ(limited->size(), 2u);
}

TEST_F(NodeStoreTest, HeartbeatFlushWritesEveryNode) {
  NodeRow a = Sample("a"), b = Sample("b");
  ASSERT_TRUE(store_->SaveRegistration(&a, {1, {}, "registered", ""}).ok());
  ASSERT_TRUE(store_->SaveRegistration(&b, {1, {}, "registered", ""}).ok());
  ASSERT_TRUE(store_->FlushHeartbeats({{a.id, 5000}, {b.id, 6000}}).ok());
  auto loaded = store_->LoadAll();
  EXPECT_EQ((*loaded)[0].last_heartbeat_unix_ms, 5000);
  EXPECT_EQ((*loaded)[1].last_heartbeat_unix_ms, 6000);
}

// The node_status view is what SQL users see; it must agree with the scheduler's state machine.
TEST_F(NodeStoreTest, StatusViewAgreesWithTheStateMachine) {
  int i = 0;
  for (v1::NodeState liveness : {v1::NODE_STATE_UP, v1::NODE_STATE_SUSPECT, v1::NODE_STATE_DOWN}) {
    for (bool drained : {false, true}) {
      NodeRow row = Sample("n" + std::to_string(i++));
      row.liveness = liveness;
      ASSERT_TRUE(store_->SaveRegistration(&row, {1, {}, "registered", ""}).ok());
      if (drained) {
        row.drain_reason = "r";
        row.drained_at_unix_ms = 2;
        ASSERT_TRUE(store_->SaveDrain(row, {2, row.id, "drain", ""}).ok());
      }
      auto q =
          db_->Prepare("SELECT state, device_count, memory_bytes FROM node_status WHERE id = ?1");
      ASSERT_TRUE(q.ok());
      q->Bind(1, row.id);
      ASSERT_TRUE(*q->Step());
      v1::NodeState want = scheduler::DisplayState(liveness, drained, /*active_runs=*/0);
      EXPECT_EQ(q->Text(0), NodeStateName(want))
          << NodeStateName(liveness) << (drained ? " drained" : "");
      EXPECT_EQ(q->Int64(1), 2);
      EXPECT_EQ(q->Int64(2), 170'000'000'000);
    }
  }
}

TEST_F(NodeStoreTest, DuplicateNameIsRefusedAndNothingIsHalfWritten) {
  NodeRow a = Sample("same");
  ASSERT_TRUE(store_->SaveRegistration(&a, {1, {}, "registered", ""}).ok());
  NodeRow b = Sample("same");
  Status s = store_->SaveRegistration(&b, {2, {}, "registered", "second"});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("UNIQUE"), std::string::npos) << s.message();
  auto events = store_->ListEvents(std::nullopt, 10);
  EXPECT_EQ(events->size(), 1u) << "the failed registration's event was kept";
  auto devices = db_->Prepare("SELECT count(*) FROM devices");
  ASSERT_TRUE(*devices->Step());
  EXPECT_EQ(devices->Int64(0), 2);
}

}  // namespace
}  // namespace breakeven::db
