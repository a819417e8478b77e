// breakeven-node: the agent on each host. Discovers devices, registers with the scheduler and
// heartbeats until stopped.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdlib>

#include "common/auth.h"
#include "common/log.h"
#include "common/system.h"
#include "common/version.h"
#include "kernels/device.h"
#include "node/agent.h"
#include "node/inventory.h"

using namespace breakeven;

namespace {

int Fail(const Status& s) {
  fmt::print(stderr, "breakeven-node: {}\n", s.message());
  return 1;
}

std::string EnvOr(const char* name, std::string fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

}  // namespace

int main(int argc, char** argv) {
  std::string scheduler = EnvOr("BREAKEVEN_SCHEDULER", "127.0.0.1:7070");
  std::string token_file = EnvOr("BREAKEVEN_TOKEN_FILE", "");
  std::string name = HostName();
  std::string log_level = "info";
  int64_t reconnect_max_ms = 2000;

  CLI::App app{"breakeven-node: registers this host's devices with the breakeven scheduler"};
  app.set_version_flag("--version", kVersion);
  app.add_option("--scheduler", scheduler, "scheduler HOST:PORT (env BREAKEVEN_SCHEDULER)")
      ->capture_default_str();
  app.add_option("--token-file", token_file,
                 "file holding the cluster token (env BREAKEVEN_TOKEN_FILE)");
  app.add_option("--name", name, "node name at the scheduler (default: the host name)")
      ->capture_default_str();
  app.add_option("--reconnect-max-ms", reconnect_max_ms, "longest wait between reconnects")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{100}, int64_t{600000}));
  app.add_option("--log-level", log_level, "trace, debug, info, warn or error")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  if (token_file.empty()) {
    return Fail(InvalidArgument("--token-file: no token file given (or set BREAKEVEN_TOKEN_FILE)"));
  }
  auto address = ParseHostPort(scheduler, "--scheduler");
  if (!address.ok()) return Fail(address.status());
  auto token = LoadTokenFile(token_file, "--token-file");
  if (!token.ok()) return Fail(token.status());
  if (name.empty()) return Fail(InvalidArgument("--name must not be empty"));
  if (Status s = InitLogging("node", log_level); !s.ok()) return Fail(s);

  // Block the stop signals before any thread starts, so only sigwait below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  kernels::Discovery discovery = kernels::DiscoverDevices();
  std::vector<v1::Device> devices;
  for (const auto& d : discovery.devices) devices.push_back(node::ToWire(d));
  spdlog::info(
      "breakeven-node {} '{}': {}{}", kVersion, name, node::Summarize(devices),
      discovery.cuda_note.empty() ? "" : fmt::format(" (no CUDA: {})", discovery.cuda_note));

  node::AgentConfig config;
  config.scheduler = *address;
  config.token = *token;
  config.name = name;
  config.hostname = HostName();
  config.reconnect_max = Millis(reconnect_max_ms);
  node::NodeAgent agent(config, std::move(devices));
  agent.Start();

  int signo = 0;
  sigwait(&stop_signals, &signo);
  spdlog::info("signal {}: stopping", signo);
  agent.Stop();
  return 0;
}
