// What the CLI prints, from scheduler replies built by hand.
#include "cli/views.h"

#include <gtest/gtest.h>

#include "cli/table.h"

namespace breakeven::cli {
namespace {

v1::ListNodesReply Sample() {
  v1::ListNodesReply r;
  r.set_now_unix_ms(1'800'000'010'000);
  auto* a = r.add_nodes();
  a->set_id(1);
  a->set_name("gpu-a");
  a->set_state(v1::NODE_STATE_UP);
  a->set_last_heartbeat_unix_ms(1'800'000'009'600);
  a->set_connected(true);
  for (int i = 0; i < 8; ++i) {
    auto* d = a->add_devices();
    d->set_kind(v1::DEVICE_KIND_CUDA);
    d->set_index(i);
    d->set_name("NVIDIA H100 80GB HBM3");
    d->set_memory_bytes(80ull << 30);
  }
  auto* b = r.add_nodes();
  b->set_id(2);
  b->set_name("cpu-b");
  b->set_state(v1::NODE_STATE_DRAINED);
  b->set_drain_reason("xid 79 on GPU 3");
  b->set_restarts(2);
  auto* cpu = b->add_devices();
  cpu->set_kind(v1::DEVICE_KIND_CPU);
  cpu->set_compute_units(2);
  cpu->set_memory_bytes(24ull << 30);
  auto* c = r.add_nodes();
  c->set_id(3);
  c->set_name("gone");
  c->set_state(v1::NODE_STATE_DOWN);
  return r;
}

TEST(Table, PadsColumnsToTheWidestCell) {
  Table t({"A", "LONGER"});
  t.AddRow({"wide-cell", "x"});
  EXPECT_EQ(t.Render(), "A          LONGER\nwide-cell  x\n");
}

TEST(Table, RightAlignedColumnsLineUpOnTheLastCharacter) {
  Table t({"NAME", "N", "LAST"});
  t.AlignRight(1);
  t.AlignRight(2);
  t.AddRow({"a", "1234", "7"});
  t.AddRow({"bb", "5", "x"});
  EXPECT_EQ(t.Render(), "NAME     N  LAST\na     1234     7\nbb       5     x\n");
}

TEST(Views, NodesTableShowsStateDevicesMemoryAgeAndReason) {
  std::string out = NodesTable(Sample());
  EXPECT_EQ(
      out.substr(0, out.find('\n')),
      "NAME   STATE    DEVICES                         MEMORY     HEARTBEAT  RESTARTS  REASON");
  EXPECT_NE(out.find("8 cuda (NVIDIA H100 80GB HBM3)"), std::string::npos) << out;
  EXPECT_NE(out.find("640.0 GiB"), std::string::npos) << out;
  EXPECT_NE(out.find("0.4s ago"), std::string::npos) << out;
  EXPECT_NE(out.find("1 cpu (2 cores)"), std::string::npos) << out;
  EXPECT_NE(out.find("xid 79 on GPU 3"), std::string::npos) << out;
  EXPECT_NE(out.find("never"), std::string::npos) << out;
}

TEST(Views, NodesJsonHasStableFieldsAndNulls) {
  auto j = NodesJson(Sample());
  ASSERT_EQ(j["nodes"].size(), 3u);
  EXPECT_EQ(j["nodes"][0]["state"], "UP");
  EXPECT_EQ(j["nodes"][0]["last_heartbeat_age_ms"], 400);
  EXPECT_EQ(j["nodes"][0]["memory_bytes"], 8 * (80ull << 30));
  EXPECT_TRUE(j["nodes"][0]["drain_reason"].is_null());
  EXPECT_EQ(j["nodes"][1]["drain_reason"], "xid 79 on GPU 3");
  EXPECT_EQ(j["nodes"][1]["devices"][0]["kind"], "cpu");
  EXPECT_TRUE(j["nodes"][2]["last_heartbeat_at"].is_null());
  EXPECT_TRUE(j["nodes"][2]["address"].is_null());
}

TEST(Views, StatusCountsEveryState) {
  auto j = StatusJson(Sample(), "sched:7070", "0.1.0");
  EXPECT_EQ(j["nodes"], 3);
  EXPECT_EQ(j["by_state"]["UP"], 1);
  EXPECT_EQ(j["by_state"]["DRAINED"], 1);
  EXPECT_EQ(j["by_state"]["DOWN"], 1);
  EXPECT_EQ(j["by_state"]["SUSPECT"], 0);
  EXPECT_EQ(j["by_state"]["DRAINING"], 0);
  std::string table = StatusTable(Sample(), "sched:7070", "0.1.0");
  EXPECT_NE(
      table.find(
          "NODES  UP  SUSPECT  DOWN  DRAINING  DRAINED\n3      1   0        1     0         1"),
      std::string::npos)
      << table;
}

TEST(Views, EventsPrintOldestFirst) {
  v1::ListEventsReply r;
  for (int i = 3; i >= 1; --i) {  // the scheduler sends newest first
    auto* e = r.add_events();
    e->set_id(i);
    e->set_at_unix_ms(1'800'000'000'000 + i);
    e->set_node("n");
    e->set_kind("state");
    e->set_detail("step " + std::to_string(i));
  }
  std::string out = EventsTable(r);
  EXPECT_LT(out.find("step 1"), out.find("step 3"));
  EXPECT_EQ(EventsJson(r)["events"][0]["detail"], "step 1");
}

}  // namespace
}  // namespace breakeven::cli
