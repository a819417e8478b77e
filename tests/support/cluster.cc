#include "tests/support/cluster.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <limits>
#include <random>
#include <sstream>
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

HttpReply HttpGet(const std::string& address, const std::string& path, Millis timeout) {
  HttpReply out;
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return out;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  if (::inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr) != 1 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return out;
  }
  const std::string request =
      "GET " + path + " HTTP/1.1\r\nHost: " + address + "\r\nConnection: close\r\n\r\n";
  if (::write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    ::close(fd);
    return out;
  }
  std::string reply;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    char buf[8192];
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  const size_t head_end = reply.find("\r\n\r\n");
  if (!reply.starts_with("HTTP/1.1 ") || head_end == std::string::npos) return out;
  out.status = std::atoi(reply.c_str() + 9);
  std::string head = reply.substr(0, head_end);
  std::string lower = head;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (size_t at = lower.find("\r\ncontent-type:"); at != std::string::npos) {
    size_t start = head.find_first_not_of(' ', at + 15);
    out.content_type = head.substr(start, head.find("\r\n", start) - start);
  }
  out.body = reply.substr(head_end + 4);
  return out;
}

std::optional<double> MetricSample(const std::string& text, const std::string& name,
                                   const std::map<std::string, std::string>& labels) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t name_end = line.find_first_of("{ ");
    if (name_end == std::string::npos || line.compare(0, name_end, name) != 0 ||
        name_end != name.size()) {
      continue;
    }
    std::map<std::string, std::string> found;
    size_t pos = name_end;
    if (line[pos] == '{') {
      ++pos;
      while (pos < line.size() && line[pos] != '}') {
        const size_t eq = line.find("=\"", pos);
        if (eq == std::string::npos) break;
        std::string key = line.substr(pos, eq - pos);
        std::string value;
        size_t i = eq + 2;
        for (; i < line.size() && line[i] != '"'; ++i) {
          if (line[i] == '\\' && i + 1 < line.size()) {
            ++i;
            value += line[i] == 'n' ? '\n' : line[i];
          } else {
            value += line[i];
          }
        }
        found[key] = value;
        pos = i + 1;
        if (pos < line.size() && line[pos] == ',') ++pos;
      }
      pos = line.find(' ', pos);
    }
    bool match = pos != std::string::npos;
    for (const auto& [k, v] : labels) {
      auto it = found.find(k);
      match = match && it != found.end() && it->second == v;
    }
    if (!match) continue;
    try {
      std::string value = line.substr(pos + 1);
      value = value.substr(0, value.find(' '));  // no timestamps are written, but be lenient
      if (value == "+Inf") return std::numeric_limits<double>::infinity();
      if (value == "-Inf") return -std::numeric_limits<double>::infinity();
      return std::stod(value);
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  return std::nullopt;
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
