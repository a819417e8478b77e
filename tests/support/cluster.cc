#include "tests/support/cluster.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <random>
#include <thread>

namespace breakeven::testing {

namespace {

std::string RandomToken() {
  std::random_device rd;
  std::string t;
  const char* hex = "0123456789abcdef";
  for (int i = 0; i < 48; ++i) t += hex[rd() % 16];
  return t;
}

}  // namespace

std::vector<std::string> LocalCluster::FastLiveness() {
  return {"--heartbeat-interval-ms", "200", "--suspect-after-ms", "600", "--down-after-ms", "1000"};
}

int ConnectLoopback(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

LocalCluster::LocalCluster(bool separate_admin_token)
    : dir_(MakeTempDir("cluster")), port_(FreePort()), http_port_(FreePort()) {
  token_file_ = dir_ + "/cluster.token";
  WriteFile(token_file_, RandomToken() + "\n");
  if (separate_admin_token) {
    admin_token_file_ = dir_ + "/admin.token";
    WriteFile(admin_token_file_, RandomToken() + "\n");
  }
}

LocalCluster::~LocalCluster() {
  bool failed = ::testing::Test::HasFailure();
  auto dump = [&](const char* what, const TestProcess& p) {
    if (failed)
      fprintf(stderr, "---- %s log (%s) ----\n%s\n", what, p.log_path().c_str(), p.Log().c_str());
  };
  for (auto& [name, p] : nodes_) {
    p->Signal(SIGKILL);
    p->Wait(std::chrono::seconds(5));
    dump(("node " + name).c_str(), *p);
  }
  for (auto& p : retired_) dump("retired process", *p);
  if (scheduler_) {
    scheduler_->Signal(SIGKILL);
    scheduler_->Wait(std::chrono::seconds(5));
    dump("scheduler", *scheduler_);
  }
  if (!failed) RemoveTree(dir_);
}

std::string LocalCluster::cluster_token() const {
  std::string t = ReadFile(token_file_);
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  return t;
}

void LocalCluster::StartScheduler(std::vector<std::string> extra_flags) {
  if (scheduler_) retired_.push_back(std::move(scheduler_));
  std::vector<std::string> argv = {BREAKEVEN_SCHEDULER_BIN,
                                   "--listen",
                                   address(),
                                   "--http",
                                   "127.0.0.1:" + std::to_string(http_port_),
                                   "--db",
                                   db_path(),
                                   "--token-file",
                                   token_file_};
  if (!admin_token_file_.empty()) {
    argv.push_back("--admin-token-file");
    argv.push_back(admin_token_file_);
  }
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  scheduler_ = std::make_unique<TestProcess>(TestProcess::Start(argv, dir_ + "/scheduler.log"));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    int fd = ConnectLoopback(port_);
    if (fd >= 0) {
      ::close(fd);
      return;
    }
    ASSERT_TRUE(scheduler_->running()) << "scheduler exited:\n" << scheduler_->Log();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  FAIL() << "scheduler did not start listening on " << address() << ":\n" << scheduler_->Log();
}

void LocalCluster::KillScheduler(int signo) {
  ASSERT_TRUE(scheduler_);
  scheduler_->Signal(signo);
  ASSERT_TRUE(scheduler_->Wait(std::chrono::seconds(10)).has_value());
}

TestProcess& LocalCluster::StartNode(const std::string& name,
                                     std::vector<std::string> extra_flags) {
  if (auto it = nodes_.find(name); it != nodes_.end()) retired_.push_back(std::move(it->second));
  std::vector<std::string> argv = {BREAKEVEN_NODE_BIN,
                                   "--scheduler",
                                   address(),
                                   "--token-file",
                                   token_file_,
                                   "--name",
                                   name,
                                   "--worker",
                                   BREAKEVEN_WORKER_BIN,
                                   "--work-dir",
                                   dir_ + "/work-" + name};
  // Calibration takes seconds; tests that need MBU and MFU ask for it.
  if (std::find(extra_flags.begin(), extra_flags.end(), "--calibrate") == extra_flags.end()) {
    argv.insert(argv.end(), {"--calibrate", "off"});
  }
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  auto p = std::make_unique<TestProcess>(TestProcess::Start(argv, dir_ + "/node-" + name + ".log"));
  TestProcess& ref = *p;
  nodes_[name] = std::move(p);
  return ref;
}

void LocalCluster::KillNode(const std::string& name, int signo) {
  auto it = nodes_.find(name);
  ASSERT_NE(it, nodes_.end()) << "no node " << name;
  it->second->Signal(signo);
  ASSERT_TRUE(it->second->Wait(std::chrono::seconds(10)).has_value());
}

CommandResult LocalCluster::Cli(const std::vector<std::string>& args) const {
  return CliWithToken(token_file_, args);
}

CommandResult LocalCluster::CliWithToken(const std::string& token_file,
                                         const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {BREAKEVEN_CLI_BIN, "--scheduler", address(), "--token-file",
                                   token_file};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv);
}

nlohmann::json LocalCluster::Nodes() const {
  CommandResult r = Cli({"nodes", "-o", "json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  if (r.exit_code != 0) return nlohmann::json::object({{"nodes", nlohmann::json::array()}});
  return nlohmann::json::parse(r.out);
}

nlohmann::json LocalCluster::FindNode(const nlohmann::json& nodes, const std::string& name) {
  for (const auto& n : nodes["nodes"]) {
    if (n["name"] == name) return n;
  }
  return nullptr;
}

bool LocalCluster::WaitForNodes(const std::function<bool(const nlohmann::json&)>& pred,
                                Millis timeout, nlohmann::json* last) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    nlohmann::json nodes = Nodes();
    if (last) *last = nodes;
    if (pred(nodes)) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

bool LocalCluster::WaitForStates(const std::map<std::string, std::string>& want,
                                 Millis timeout) const {
  nlohmann::json last;
  bool ok = WaitForNodes(
      [&](const nlohmann::json& nodes) {
        for (const auto& [name, state] : want) {
          nlohmann::json n = FindNode(nodes, name);
          if (n.is_null() || n["state"] != state) return false;
        }
        return true;
      },
      timeout, &last);
  if (!ok)
    ADD_FAILURE() << "states not reached within " << timeout.count() << " ms; last:\n"
                  << last.dump(2);
  return ok;
}

std::string LocalCluster::SchedulerLog() const { return scheduler_ ? scheduler_->Log() : ""; }

}  // namespace breakeven::testing
