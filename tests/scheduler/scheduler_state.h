// A scheduler's state without its sockets: a real SQLite file (migrated), the node registry and
// the run manager on a fake clock, for tests that drive them directly. Frames the run manager
// sends go to Deliver, which accepts them; a fixture that wants to see them overrides it.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "db/migrate.h"
#include "scheduler/run_manager.h"
#include "tests/support/fake_clock.h"
#include "tests/support/process.h"

namespace breakeven::scheduler {

class SchedulerStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("scheduler-state");
    Open();
  }
  void TearDown() override {
    Close();
    testing::RemoveTree(dir_);
  }

  // False: the node is unreachable (the run manager then treats the send as failed).
  virtual bool Deliver(uint64_t node, const v1::Envelope& frame) {
    (void)node, (void)frame;
    return true;
  }

  // Opens (or reopens, as a restarted scheduler would) the database and the managers.
  void Open() {
    auto db = db::Database::Open(dir_ + "/s.db");
    ASSERT_TRUE(db.ok()) << db.status().message();
    db_ = std::move(db).value();
    ASSERT_TRUE(db::Migrate(*db_).ok());
    node_store_ = std::move(db::NodeStore::Create(*db_)).value();
    run_store_ = std::move(db::RunStore::Create(*db_)).value();
    registry_ = std::make_unique<NodeRegistry>(*node_store_, clock_, LivenessConfig{});
    ASSERT_TRUE(registry_->Load().ok());
    rendezvous_ = std::make_unique<RendezvousStore>(io_.get_executor());
    runs_ = std::make_unique<RunManager>(
        *db_, *run_store_, *registry_, *rendezvous_, clock_, RunConfig{},
        [this](uint64_t node, const v1::Envelope& f) { return Deliver(node, f); });
    ASSERT_TRUE(runs_->Load().ok());
  }
  void Close() {
    runs_.reset();
    rendezvous_.reset();
    registry_.reset();
    run_store_.reset();
    node_store_.reset();
    db_.reset();
  }

  // A node with one CPU of 4 cores and `mem_gib` of memory, connected from `peer`.
  uint64_t AddNode(const std::string& name, SessionId session, int64_t mem_gib = 8,
                   const std::string& peer = "127.0.0.1:1") {
    v1::RegisterNode req;
    req.set_name(name);
    auto* d = req.add_devices();
    d->set_kind(v1::DEVICE_KIND_CPU);
    d->set_name("Test CPU");
    d->set_memory_bytes(static_cast<uint64_t>(mem_gib) << 30);
    d->set_compute_units(4);
    auto reg = registry_->Register(req, {"boot-" + name, "0.1.0", peer}, session);
    EXPECT_TRUE(reg.ok()) << reg.status().message();
    return reg.ok() ? reg->node_id : 0;
  }

  v1::SubmitMatrixReply Submit(const std::string& yaml, bool dry_run = false) {
    v1::SubmitMatrixRequest req;
    req.set_yaml(yaml);
    req.set_source("unit.yaml");
    req.set_dry_run(dry_run);
    auto reply = runs_->Submit(req);
    EXPECT_TRUE(reply.ok()) << reply.status().message();
    return reply.ok() ? *reply : v1::SubmitMatrixReply{};
  }

  v1::RunEvent Event(uint64_t run, uint32_t attempt) {
    v1::RunEvent e;
    e.mutable_run()->set_run_id(run);
    e.mutable_run()->set_attempt(attempt);
    return e;
  }

  std::string dir_;
  testing::FakeClock clock_;
  asio::io_context io_;
  std::unique_ptr<db::Database> db_;
  std::unique_ptr<db::NodeStore> node_store_;
  std::unique_ptr<db::RunStore> run_store_;
  std::unique_ptr<NodeRegistry> registry_;
  std::unique_ptr<RendezvousStore> rendezvous_;
  std::unique_ptr<RunManager> runs_;
};

}  // namespace breakeven::scheduler
