// The cluster end to end: real scheduler and node processes on loopback, observed through the
// real CLI.
#include "tests/support/cluster.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <csignal>
#include <set>

namespace breakeven::testing {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(Cluster, ThreeNodesRegisterAndShowUp) {
  LocalCluster c;
  c.StartScheduler(LocalCluster::FastLiveness());
  for (const char* name : {"gpu-a", "gpu-b", "gpu-c"}) c.StartNode(name);
  ASSERT_TRUE(c.WaitForStates({{"gpu-a", "UP"}, {"gpu-b", "UP"}, {"gpu-c", "UP"}}, seconds(10)));

  json nodes = c.Nodes();
  ASSERT_EQ(nodes["nodes"].size(), 3u);
  std::set<uint64_t> ids;
  for (const auto& n : nodes["nodes"]) {
    ids.insert(n["id"].get<uint64_t>());
    EXPECT_TRUE(n["connected"].get<bool>());
    EXPECT_EQ(n["restarts"], 0);
    EXPECT_TRUE(n["drain_reason"].is_null());
    ASSERT_EQ(n["devices"].size(), 1u) << n.dump();  // no GPU here: the CPU is the device
    const json& dev = n["devices"][0];
    EXPECT_EQ(dev["kind"], "cpu");
    EXPECT_GT(dev["memory_bytes"].get<uint64_t>(), 0u);
    EXPECT_GT(dev["compute_units"].get<uint32_t>(), 0u);
    EXPECT_EQ(n["memory_bytes"], dev["memory_bytes"]);
    EXPECT_LT(n["last_heartbeat_age_ms"].get<int64_t>(), 1000);
  }
  EXPECT_EQ(ids.size(), 3u);

  CommandResult status = c.Cli({"status", "-o", "json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  json s = json::parse(status.out);
  EXPECT_EQ(s["nodes"], 3);
  EXPECT_EQ(s["by_state"]["UP"], 3);
  EXPECT_EQ(s["by_state"]["DOWN"], 0);

  CommandResult table = c.Cli({"nodes"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_EQ(table.out.rfind("NAME", 0), 0u) << table.out;
  EXPECT_NE(table.out.find("gpu-b"), std::string::npos);
  EXPECT_NE(table.out.find("1 cpu"), std::string::npos);
}

TEST(Cluster, SigkilledNodeGoesSuspectThenDownWithinTheTimeout) {
  LocalCluster c;
  c.StartScheduler(LocalCluster::FastLiveness());  // DOWN after 1 s of silence
  c.StartNode("stays");
  c.StartNode("dies");
  ASSERT_TRUE(c.WaitForStates({{"stays", "UP"}, {"dies", "UP"}}, seconds(10)));

  c.KillNode("dies", SIGKILL);
  auto killed_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(c.WaitForStates({{"dies", "DOWN"}, {"stays", "UP"}}, seconds(5)));
  auto took =
      std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - killed_at);
  // 1 s of silence, one heartbeat interval of phase, a sweep tick, and a CLI round trip.
  EXPECT_LT(took.count(), 2500);

  CommandResult events = c.Cli({"events", "--node", "dies", "-o", "json"});
  ASSERT_EQ(events.exit_code, 0) << events.err;
  std::string all = events.out;
  EXPECT_NE(all.find("UP -> SUSPECT"), std::string::npos) << all;
  EXPECT_NE(all.find("SUSPECT -> DOWN"), std::string::npos) << all;
}

TEST(Cluster, SchedulerRestartKeepsNodesAndTheirHistory) {
  LocalCluster c;
  c.StartScheduler(LocalCluster::FastLiveness());
  for (const char* name : {"n1", "n2", "n3"}) c.StartNode(name);
  ASSERT_TRUE(c.WaitForStates({{"n1", "UP"}, {"n2", "UP"}, {"n3", "UP"}}, seconds(10)));
  json before = c.Nodes();
  CommandResult drain = c.Cli({"drain", "n2", "--reason", "bad fan"});
  ASSERT_EQ(drain.exit_code, 0) << drain.err;

  c.KillScheduler(SIGKILL);
  CommandResult down = c.Cli({"nodes"});
  EXPECT_NE(down.exit_code, 0);
  c.StartScheduler(LocalCluster::FastLiveness());

  // The agents come back by themselves; n2 is still drained.
  ASSERT_TRUE(c.WaitForStates({{"n1", "UP"}, {"n2", "DRAINED"}, {"n3", "UP"}}, seconds(10)));
  json after;
  ASSERT_TRUE(c.WaitForNodes(
      [](const json& nodes) {
        for (const auto& n : nodes["nodes"]) {
          if (!n["connected"].get<bool>()) return false;
        }
        return nodes["nodes"].size() == 3;
      },
      seconds(10), &after));
  for (const auto& old : before["nodes"]) {
    json now = LocalCluster::FindNode(after, old["name"]);
    ASSERT_FALSE(now.is_null());
    EXPECT_EQ(now["id"], old["id"]);
    EXPECT_EQ(now["registered_at"], old["registered_at"]);
    EXPECT_EQ(now["boot_id"], old["boot_id"]);
    EXPECT_EQ(now["restarts"], 0) << "a reconnect is not a restart";
  }
  EXPECT_EQ(LocalCluster::FindNode(after, "n2")["drain_reason"], "bad fan");

  CommandResult events = c.Cli({"events", "--limit", "100", "-o", "json"});
  ASSERT_EQ(events.exit_code, 0) << events.err;
  json ev = json::parse(events.out)["events"];
  int registered = 0, reconnected = 0, drained = 0;
  for (const auto& e : ev) {
    registered += e["kind"] == "registered";
    reconnected += e["kind"] == "reconnected";
    drained += e["kind"] == "drain";
  }
  EXPECT_EQ(registered, 3) << ev.dump(2);
  EXPECT_GE(reconnected, 3) << ev.dump(2);
  EXPECT_EQ(drained, 1);
}

TEST(Cluster, RestartedAgentIsKnownByItsNewBootId) {
  LocalCluster c;
  c.StartScheduler(LocalCluster::FastLiveness());
  c.StartNode("box");
  ASSERT_TRUE(c.WaitForStates({{"box", "UP"}}, seconds(10)));
  json first = LocalCluster::FindNode(c.Nodes(), "box");

  c.KillNode("box", SIGKILL);
  c.StartNode("box");
  json now;
  ASSERT_TRUE(c.WaitForNodes(
      [&](const json& nodes) {
        json n = LocalCluster::FindNode(nodes, "box");
        return !n.is_null() && n["restarts"] == 1 && n["state"] == "UP";
      },
      seconds(10), &now))
      << now.dump(2);
  json box = LocalCluster::FindNode(now, "box");
  EXPECT_NE(box["boot_id"], first["boot_id"]);
  EXPECT_EQ(box["id"], first["id"]);

  CommandResult events = c.Cli({"events", "--node", "box", "-o", "json"});
  EXPECT_NE(events.out.find("agent restarted: boot id " + first["boot_id"].get<std::string>()),
            std::string::npos)
      << events.out;
}

TEST(Cluster, DrainAndResumeNeedTheAdminToken) {
  LocalCluster c(/*separate_admin_token=*/true);
  c.StartScheduler(LocalCluster::FastLiveness());
  c.StartNode("w1");
  c.StartNode("w2");
  ASSERT_TRUE(c.WaitForStates({{"w1", "UP"}, {"w2", "UP"}}, seconds(10)));

  // The cluster token reads but cannot change.
  CommandResult refused = c.Cli({"drain", "w1", "--reason", "maintenance"});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("admin token"), std::string::npos) << refused.err;
  EXPECT_EQ(LocalCluster::FindNode(c.Nodes(), "w1")["state"], "UP");

  CommandResult drained =
      c.CliWithToken(c.admin_token_file(), {"drain", "w1", "--reason", "maintenance"});
  ASSERT_EQ(drained.exit_code, 0) << drained.err;
  json w1 = LocalCluster::FindNode(c.Nodes(), "w1");
  EXPECT_EQ(w1["state"], "DRAINED");
  EXPECT_EQ(w1["drain_reason"], "maintenance");
  EXPECT_EQ(LocalCluster::FindNode(c.Nodes(), "w2")["state"], "UP");
  CommandResult table = c.Cli({"nodes"});
  EXPECT_NE(table.out.find("maintenance"), std::string::npos) << table.out;

  // A drained node that reboots comes back drained.
  c.KillNode("w1", SIGKILL);
  c.StartNode("w1");
  json after;
  ASSERT_TRUE(c.WaitForNodes(
      [](const json& nodes) {
        json n = LocalCluster::FindNode(nodes, "w1");
        return n["restarts"] == 1 && n["connected"].get<bool>();
      },
      seconds(10), &after));
  EXPECT_EQ(LocalCluster::FindNode(after, "w1")["state"], "DRAINED");

  CommandResult resumed = c.CliWithToken(c.admin_token_file(), {"resume", "w1"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(LocalCluster::FindNode(c.Nodes(), "w1")["state"], "UP");
  EXPECT_TRUE(LocalCluster::FindNode(c.Nodes(), "w1")["drain_reason"].is_null());

  CommandResult again = c.CliWithToken(c.admin_token_file(), {"resume", "w1"});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("not drained"), std::string::npos) << again.err;

  CommandResult unknown = c.CliWithToken(c.admin_token_file(), {"drain", "nope", "--reason", "x"});
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE(unknown.err.find("no node named 'nope'"), std::string::npos) << unknown.err;
}

TEST(Cluster, SecondAgentWithTheSameNameIsRefused) {
  LocalCluster c;
  c.StartScheduler(LocalCluster::FastLiveness());
  c.StartNode("dup");
  ASSERT_TRUE(c.WaitForStates({{"dup", "UP"}}, seconds(10)));
  json first = LocalCluster::FindNode(c.Nodes(), "dup");

  // A second agent under the same name (a misconfigured host): refused while the first lives.
  TestProcess impostor = TestProcess::Start({BREAKEVEN_NODE_BIN, "--scheduler", c.address(),
                                             "--token-file", c.token_file(), "--name", "dup"},
                                            c.dir() + "/impostor.log");
  auto deadline = std::chrono::steady_clock::now() + seconds(10);
  while (impostor.Log().find("held by a live agent") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_NE(impostor.Log().find("held by a live agent"), std::string::npos) << impostor.Log();
  json now = LocalCluster::FindNode(c.Nodes(), "dup");
  EXPECT_EQ(now["boot_id"], first["boot_id"]);
  EXPECT_EQ(now["state"], "UP");
}

TEST(Cluster, DaemonsStopCleanlyOnSigtermEvenIfStartedWithItIgnored) {
  LocalCluster c;
  c.StartScheduler(LocalCluster::FastLiveness());
  // Background jobs of a shell script inherit ignored signals; the daemons must still stop.
  std::signal(SIGTERM, SIG_IGN);
  TestProcess& node = c.StartNode("polite");
  std::signal(SIGTERM, SIG_DFL);
  ASSERT_TRUE(c.WaitForStates({{"polite", "UP"}}, seconds(10)));

  node.Signal(SIGTERM);
  std::optional<int> node_exit = node.Wait(seconds(5));
  ASSERT_TRUE(node_exit.has_value()) << "node agent ignored SIGTERM";
  EXPECT_EQ(*node_exit, 0);

  c.scheduler().Signal(SIGTERM);
  std::optional<int> sched_exit = c.scheduler().Wait(seconds(5));
  ASSERT_TRUE(sched_exit.has_value()) << "scheduler ignored SIGTERM";
  EXPECT_EQ(*sched_exit, 0);
  EXPECT_NE(c.SchedulerLog().find("stopped"), std::string::npos);
}

TEST(Cluster, HealthzAnswersOverHttp) {
  LocalCluster c;
  c.StartScheduler();
  int fd = ConnectLoopback(c.http_port());
  ASSERT_GE(fd, 0);
  std::string req = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(::write(fd, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  std::string resp;
  char buf[1024];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) resp.append(buf, static_cast<size_t>(n));
  ::close(fd);
  EXPECT_EQ(resp.rfind("HTTP/1.1 200", 0), 0u) << resp;
  EXPECT_NE(resp.find("\r\n\r\nok\n"), std::string::npos) << resp;
}

}  // namespace
}  // namespace breakeven::testing
