// NodeAgent against an in-process fake scheduler on loopback.
#include "node/agent.h"

#include <gtest/gtest.h>

#include <mutex>
#include <thread>

#include "common/version.h"

namespace breakeven::node {
namespace {

using std::chrono::milliseconds;

// Accepts agents, answers Hello and RegisterNode, records heartbeat arrival times. Runs on its
// own thread. Can drop every connection to make the agent reconnect.
class FakeScheduler {
 public:
  explicit FakeScheduler(uint32_t interval_ms) : interval_ms_(interval_ms) {
    acceptor_.open(tcp::v4());
    acceptor_.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    acceptor_.listen();
    asio::co_spawn(io_, Accept(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~FakeScheduler() {
    asio::post(io_, [this] {
      acceptor_.close();
      DropAll();
    });
    io_.stop();
    thread_.join();
  }

  uint16_t port() const { return acceptor_.local_endpoint().port(); }

  std::vector<SteadyTime> beats() {
    std::lock_guard lock(mu_);
    return beats_;
  }
  std::vector<std::string> boot_ids() {
    std::lock_guard lock(mu_);
    return boot_ids_;
  }
  void DropAllConnections() {
    asio::post(io_, [this] { DropAll(); });
  }

 private:
  void DropAll() {
    for (auto& c : conns_) c->Close();
    conns_.clear();
  }

  awaitable<void> Accept() {
    for (;;) {
      boost::system::error_code ec;
      tcp::socket s = co_await acceptor_.async_accept(asio::redirect_error(use_awaitable, ec));
      if (ec) co_return;
      auto conn = std::make_shared<FramedConnection>(std::move(s), ConnectionLimits{});
      conn->Start();
      conns_.push_back(conn);
      asio::co_spawn(io_, Serve(conn), asio::detached);
    }
  }

  awaitable<void> Serve(std::shared_ptr<FramedConnection> conn) {
    for (;;) {
      Result<v1::Envelope> f = co_await conn->Read(milliseconds(10000));
      if (!f.ok()) co_return;
      v1::Envelope reply;
      reply.set_request_id(f->request_id());
      if (f->has_hello()) {
        std::lock_guard lock(mu_);
        boot_ids_.push_back(f->hello().boot_id());
        reply.mutable_hello_ack()->set_scheduler_version(kVersion);
      } else if (f->has_register_node()) {
        reply.mutable_register_ack()->set_node_id(7);
        reply.mutable_register_ack()->set_heartbeat_interval_ms(interval_ms_);
        reply.mutable_register_ack()->set_scheduler_silent_ms(interval_ms_ * 10);
        reply.mutable_register_ack()->set_state(v1::NODE_STATE_UP);
      } else if (f->has_heartbeat()) {
        std::lock_guard lock(mu_);
        beats_.push_back(std::chrono::steady_clock::now());
        reply.mutable_heartbeat_ack()->set_seq(f->heartbeat().seq());
      }
      conn->Send(reply);
    }
  }

  uint32_t interval_ms_;
  asio::io_context io_;
  tcp::acceptor acceptor_{io_};
  std::vector<std::shared_ptr<FramedConnection>> conns_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<SteadyTime> beats_;
  std::vector<std::string> boot_ids_;
};

AgentConfig ConfigFor(const FakeScheduler& s) {
  AgentConfig cfg;
  cfg.scheduler = {"127.0.0.1", s.port()};
  cfg.token = "0123456789abcdef";
  cfg.name = "agent-under-test";
  cfg.hostname = "test";
  cfg.reconnect_initial = milliseconds(20);
  cfg.reconnect_max = milliseconds(100);
  return cfg;
}

std::vector<v1::Device> OneCpu() {
  v1::Device d;
  d.set_kind(v1::DEVICE_KIND_CPU);
  return {d};
}

bool WaitFor(const std::function<bool()>& pred, milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return true;
}

TEST(NodeAgent, HeartbeatsAreNotDelayedByBlockedWork) {
  FakeScheduler scheduler(/*interval_ms=*/50);
  NodeAgent agent(ConfigFor(scheduler), OneCpu());
  agent.Start();
  ASSERT_TRUE(WaitFor([&] { return agent.heartbeats_acked() >= 3; }, milliseconds(5000)));

  // Occupy the work executor for a second, as a long calibration or a stuck worker would.
  std::atomic<bool> work_done{false};
  size_t beats_before = scheduler.beats().size();
  auto block_start = std::chrono::steady_clock::now();
  asio::post(agent.work_executor(), [&] {
    std::this_thread::sleep_for(milliseconds(1000));
    work_done = true;
  });
  ASSERT_TRUE(WaitFor([&] { return work_done.load(); }, milliseconds(5000)));
  auto block_end = std::chrono::steady_clock::now();
  agent.Stop();

  std::vector<SteadyTime> beats = scheduler.beats();
  std::vector<SteadyTime> during;
  for (size_t i = beats_before; i < beats.size(); ++i) {
    if (beats[i] >= block_start && beats[i] <= block_end) during.push_back(beats[i]);
  }
  // 1000 ms at one beat per 50 ms: about 20; a heartbeat stuck behind the work would give 0
  // or 1. The bounds leave room for a loaded test machine.
  EXPECT_GE(during.size(), 10u);
  for (size_t i = 1; i < during.size(); ++i) {
    EXPECT_LT(during[i] - during[i - 1], milliseconds(300)) << "gap at beat " << i;
  }
}

TEST(NodeAgent, ReconnectsWithTheSameBootIdAfterTheSchedulerDropsIt) {
  FakeScheduler scheduler(/*interval_ms=*/50);
  NodeAgent agent(ConfigFor(scheduler), OneCpu());
  agent.Start();
  ASSERT_TRUE(WaitFor([&] { return agent.registrations() == 1; }, milliseconds(5000)));
  scheduler.DropAllConnections();
  ASSERT_TRUE(WaitFor([&] { return agent.registrations() >= 2; }, milliseconds(5000)));
  uint64_t acked = agent.heartbeats_acked();
  ASSERT_TRUE(WaitFor([&] { return agent.heartbeats_acked() > acked + 2; }, milliseconds(5000)));
  agent.Stop();

  std::vector<std::string> boots = scheduler.boot_ids();
  ASSERT_GE(boots.size(), 2u);
  for (const auto& b : boots) EXPECT_EQ(b, agent.boot_id());
}

TEST(NodeAgent, KeepsTryingWhileTheSchedulerIsAway) {
  uint16_t port;
  {
    FakeScheduler gone(50);
    port = gone.port();
  }  // closed: nothing listens on the port now
  AgentConfig cfg;
  cfg.scheduler = {"127.0.0.1", port};
  cfg.token = "0123456789abcdef";
  cfg.name = "patient";
  cfg.reconnect_initial = milliseconds(10);
  cfg.reconnect_max = milliseconds(50);
  NodeAgent agent(cfg, OneCpu());
  agent.Start();
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(agent.registrations(), 0u);
  agent.Stop();  // and it stops promptly even while retrying
}

}  // namespace
}  // namespace breakeven::node
