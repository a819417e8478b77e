// LocalCluster: a real breakeven-scheduler and real breakeven-node processes on loopback, in a
// temporary directory of their own, driven through the real `breakeven` CLI.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "tests/support/process.h"

namespace breakeven::testing {

class LocalCluster {
 public:
  // Liveness flags that keep tests quick: heartbeat 200 ms, SUSPECT after 600, DOWN after 1000.
  static std::vector<std::string> FastLiveness();

  explicit LocalCluster(bool separate_admin_token = false);
  ~LocalCluster();  // kills everything; on test failure prints every log

  // Starts (or restarts) the scheduler on this cluster's port and database; waits until it
  // accepts connections.
  void StartScheduler(std::vector<std::string> extra_flags = {});
  void KillScheduler(int signo);
  TestProcess& scheduler() { return *scheduler_; }

  // Starts a node agent with its own work directory under dir(), running the build's worker;
  // without calibration unless `extra_flags` holds "--calibrate".
  TestProcess& StartNode(const std::string& name, std::vector<std::string> extra_flags = {});
  // The node's per-attempt worker logs live here.
  std::string WorkDir(const std::string& name) const { return dir_ + "/work-" + name; }
  void KillNode(const std::string& name, int signo);

  // Runs `breakeven --scheduler ADDR --token-file TOKEN args...`.
  CommandResult Cli(const std::vector<std::string>& args) const;
  CommandResult CliWithToken(const std::string& token_file,
                             const std::vector<std::string>& args) const;

  // `breakeven nodes -o json`, parsed; fails the test if the command fails.
  nlohmann::json Nodes() const;
  // The node named `name` in Nodes(), or null.
  static nlohmann::json FindNode(const nlohmann::json& nodes, const std::string& name);
  // Polls Nodes() until `pred` holds; returns the last listing and whether it held.
  bool WaitForNodes(const std::function<bool(const nlohmann::json&)>& pred, Millis timeout,
                    nlohmann::json* last = nullptr) const;
  bool WaitForStates(const std::map<std::string, std::string>& want, Millis timeout) const;

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  int http_port() const { return http_port_; }
  const std::string& dir() const { return dir_; }
  const std::string& token_file() const { return token_file_; }
  const std::string& admin_token_file() const { return admin_token_file_; }
  std::string cluster_token() const;
  std::string db_path() const { return dir_ + "/breakeven.db"; }
  std::string SchedulerLog() const;

 private:
  std::string dir_;
  int port_;
  int http_port_;
  std::string token_file_;
  std::string admin_token_file_;  // empty when the cluster token is also the admin token
  std::unique_ptr<TestProcess> scheduler_;
  std::vector<std::string> scheduler_flags_;
  std::map<std::string, std::unique_ptr<TestProcess>> nodes_;
  std::vector<std::unique_ptr<TestProcess>> retired_;  // killed processes, kept for their logs
};

// Connects a plain TCP socket to 127.0.0.1:port; -1 on failure.
int ConnectLoopback(int port);

struct HttpReply {
  int status = 0;  // 0: no answer (connection refused, timeout, not HTTP)
  std::string content_type;
  std::string body;
};
// GET http://<address><path> ("127.0.0.1:7080", IPv4 literal and port) with Connection: close,
// waiting at most `timeout` for the whole reply.
HttpReply HttpGet(const std::string& address, const std::string& path,
                  Millis timeout = Millis(5000));

// The value of the first sample of `name` in a Prometheus text exposition whose labels include
// every pair of `labels`; nothing when no sample matches. Histogram series are named in full
// ("x_bucket", "x_count").
std::optional<double> MetricSample(const std::string& text, const std::string& name,
                                   const std::map<std::string, std::string>& labels = {});

}  // namespace breakeven::testing
