// breakeven-node: the agent on each host. Discovers and calibrates devices, registers with the
// scheduler, heartbeats, and runs the benchmark workers the scheduler assigns, until stopped.
// With --http it also serves /metrics and /healthz for Prometheus.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <thread>

#include "bench/local_run.h"
#include "common/auth.h"
#include "common/log.h"
#include "common/system.h"
#include "common/version.h"
#include "kernels/device.h"
#include "node/agent.h"
#include "node/inventory.h"
#include "node/metrics_endpoint.h"
#include "node/node_metrics.h"
#include "node/nvml.h"

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
  std::string calibrate = "on";
  bool no_calibrate = false;
  int64_t cpu_memory_mib = 0;
  unsigned cpu_cores = 0;
  std::string worker_binary, work_dir, worker_host, http;

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
  app.add_option("--worker", worker_binary,
                 "breakeven-worker executable (default: $BREAKEVEN_WORKER, or next to this one)");
  app.add_option("--work-dir", work_dir,
                 "where run attempts keep worker logs (default: <tmp>/breakeven-<name>)");
  app.add_option("--worker-host", worker_host,
                 "address workers listen on for peers on other hosts (default: the local "
                 "address of the connection to the scheduler)");
  app.add_option("--cpu-memory-mib", cpu_memory_mib,
                 "offer at most this much of the CPU's memory to runs (0: all of it)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--cpu-cores", cpu_cores,
                 "offer this many CPU cores to runs (0: all); workers split them between ranks")
      ->capture_default_str();
  app.add_option("--calibrate", calibrate,
                 "on: measure each device's copy bandwidth and matrix rate at start (the "
                 "denominators of MBU and MFU); off: start at once, report neither")
      ->capture_default_str()
      ->check(CLI::IsMember({"on", "off"}));
  // The earlier spelling of --calibrate off, kept for scripts.
  app.add_flag("--no-calibrate", no_calibrate)->group("");
  app.add_option("--http", http,
                 "HOST:PORT to serve Prometheus /metrics and /healthz on (default: none); rank-0 "
                 "workers then serve theirs on HOST with a free port");
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
  std::optional<HostPort> http_address;
  if (!http.empty()) {
    auto parsed = ParseHostPort(http, "--http", /*allow_port_zero=*/true);
    if (!parsed.ok()) return Fail(parsed.status());
    http_address = *parsed;
  }
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
  for (v1::Device& d : devices) {
    const uint64_t cap = static_cast<uint64_t>(cpu_memory_mib) << 20;
    if (d.kind() != v1::DEVICE_KIND_CPU) continue;
    if (cap > 0 && cap < d.memory_bytes()) d.set_memory_bytes(cap);
    if (cpu_cores > 0 && cpu_cores < d.compute_units()) d.set_compute_units(cpu_cores);
  }
  // The CPU gets about half a second (kernels::CalibrationOptions::budget_s says what it buys);
  // CUDA devices take about a quarter of a second each, all at once.
  if (calibrate == "on" && !no_calibrate) node::CalibrateDevices(&devices, 0.5);
  if (worker_binary.empty()) worker_binary = bench::FindWorkerBinary();
  if (work_dir.empty()) {
    work_dir = (std::filesystem::temp_directory_path() / ("breakeven-" + name)).string();
  }

  node::AgentConfig config;
  config.scheduler = *address;
  config.token = *token;
  config.name = name;
  config.hostname = HostName();
  config.reconnect_max = Millis(reconnect_max_ms);
  config.supervisor.worker_binary = worker_binary;
  config.supervisor.work_dir = work_dir;
  config.worker_host = worker_host;
  if (http_address) config.supervisor.metrics_host = http_address->host;
  const std::vector<v1::Device> registered = devices;
  node::NodeAgent agent(config, std::move(devices));

  // The scrape runs on the endpoint's thread: the heartbeat keeps its own.
  std::unique_ptr<node::NodeMetrics> metrics;
  std::unique_ptr<node::MetricsEndpoint> endpoint;
  if (http_address) {
    std::string nvml_note;
    std::unique_ptr<node::Nvml> nvml = node::Nvml::Load("libnvidia-ml.so.1", &nvml_note);
    if (!nvml) spdlog::info("no NVML ({}): no device utilization or power in /metrics", nvml_note);
    node::NodeMetrics::Sources sources;
    sources.probe = node::MakeSystemProbe(std::move(nvml));
    sources.workers_running = [&agent] { return agent.workers_running(); };
    sources.heartbeats_sent = [&agent] { return agent.heartbeats_sent(); };
    metrics = std::make_unique<node::NodeMetrics>(name, registered, std::move(sources));
    auto started = node::MetricsEndpoint::Start(*http_address, metrics->registry(), "--http");
    if (!started.ok()) return Fail(started.status());
    endpoint = std::move(*started);
    spdlog::info("serving /metrics on http://{}/metrics", endpoint->bound().ToString());
  }
  agent.Start();

  int signo = 0;
  sigwait(&stop_signals, &signo);
  spdlog::info("signal {}: stopping", signo);
  endpoint.reset();  // before the agent it reads goes
  agent.Stop();
  return 0;
}
