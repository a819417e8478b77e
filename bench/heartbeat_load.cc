// breakeven-heartbeat-bench: how many node agents one scheduler can hold.
//
// For each fleet size N it starts a real breakeven-scheduler process (fresh database), then
// opens N connections from this process, each a simulated node agent that says Hello,
// registers, and heartbeats at the scheduler's interval from its own fixed-rate timer with a
// random phase (so the load is spread, as a real fleet's is). After a warm-up it measures, over
// a fixed window:
//   heartbeats/s    acknowledgements received per second (the scheduler handled them)
//   rtt p50/p99/max send -> acknowledgement, per heartbeat; an upper bound on the scheduler's
//                   handling latency (it includes both kernels' loopback and this client's loop)
//   scheduler CPU   (utime + stime delta) / window, as % of one core, from /proc
//   client CPU      the same for this process, to show the client was not the bottleneck
// and at the end checks through the admin API that all N nodes are UP.
//
// The bound it is read against: the offered load (N / interval). A scheduler that keeps up
// acknowledges N / interval heartbeats per second.
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "bench/percentiles.h"
#include "common/asio.h"
#include "common/client.h"
#include "common/clock.h"
#include "common/connection.h"
#include "common/process.h"
#include "common/system.h"
#include "common/version.h"

namespace breakeven::bench {
namespace {

using Clock = std::chrono::steady_clock;

double SelfCpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

double RssMiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  while (in >> key) {
    if (key == "VmRSS:") {
      double kib = 0;
      in >> kib;
      return kib / 1024.0;
    }
    std::string rest;
    std::getline(in, rest);
  }
  return 0;
}

// N simulated agents on one io_context thread.
class Fleet {
 public:
  Fleet(HostPort scheduler, std::string token)
      : scheduler_(std::move(scheduler)), token_(std::move(token)) {}
  ~Fleet() { Stop(); }

  void Start() {
    thread_ = std::thread([this] {
      auto guard = asio::make_work_guard(io_);
      io_.run();
    });
  }

  void Stop() {
    if (!thread_.joinable()) return;
    asio::post(io_, [this] {
      stopping_ = true;
      for (auto& c : conns_) c->Close();
      io_.stop();
    });
    thread_.join();
  }

  // Adds `count` agents; returns once all of them have registered (or failed).
  void Add(int count, std::chrono::milliseconds timeout) {
    int target = started_ + count;
    for (int i = 0; i < count; ++i) {
      int index = started_++;
      asio::co_spawn(io_, RunAgent(index), asio::detached);
    }
    auto deadline = Clock::now() + timeout;
    while (registered_.load() + failed_.load() < target && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  void SetMeasuring(bool on) {
    std::promise<void> done;
    asio::post(io_, [&] {
      measuring_ = on;
      if (on) {
        rtt_ms_.clear();
        acks_in_window_ = 0;
      }
      done.set_value();
    });
    done.get_future().wait();
  }

  // Snapshot of the window's samples, taken on the fleet thread.
  std::pair<std::vector<double>, uint64_t> TakeSamples() {
    std::promise<std::pair<std::vector<double>, uint64_t>> out;
    asio::post(io_, [&] { out.set_value({std::move(rtt_ms_), acks_in_window_}); });
    return out.get_future().get();
  }

  int registered() const { return registered_.load(); }
  int failed() const { return failed_.load(); }
  const std::string& first_error() const { return first_error_; }

 private:
  awaitable<void> RunAgent(int index) {
    auto executor = co_await asio::this_coro::executor;
    tcp::resolver resolver(executor);
    boost::system::error_code ec;
    auto endpoints = co_await resolver.async_resolve(
        scheduler_.host, std::to_string(scheduler_.port), asio::redirect_error(use_awaitable, ec));
    tcp::socket socket(executor);
    if (!ec)
      co_await asio::async_connect(socket, endpoints, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      Fail(fmt::format("connect: {}", ec.message()));
      co_return;
    }
    auto conn = std::make_shared<FramedConnection>(std::move(socket), ConnectionLimits{});
    conn->Start();
    conns_.push_back(conn);

    v1::Envelope hello;
    hello.set_request_id(1);
    hello.mutable_hello()->set_role(v1::ROLE_NODE);
    hello.mutable_hello()->set_token(token_);
    hello.mutable_hello()->set_protocol_version(kProtocolVersion);
    hello.mutable_hello()->set_version(kVersion);
    hello.mutable_hello()->set_boot_id(NewBootId());
    conn->Send(hello);
    v1::Envelope reg;
    reg.set_request_id(2);
    reg.mutable_register_node()->set_name(fmt::format("sim-{:05}", index));
    reg.mutable_register_node()->set_hostname("heartbeat-bench");
    auto* dev = reg.mutable_register_node()->add_devices();
    dev->set_kind(v1::DEVICE_KIND_CUDA);
    dev->set_name("simulated GPU");
    dev->set_memory_bytes(80ull << 30);
    dev->set_compute_units(132);
    conn->Send(reg);

    uint64_t node_id = 0;
    uint32_t interval_ms = 1000;
    for (int replies = 0; replies < 2;) {
      Result<v1::Envelope> f = co_await conn->Read(std::chrono::seconds(30));
      if (!f.ok() || f->has_error()) {
        Fail(f.ok() ? f->error().message() : f.status().ToString());
        co_return;
      }
      if (f->has_register_ack()) {
        node_id = f->register_ack().node_id();
        interval_ms = f->register_ack().heartbeat_interval_ms();
      }
      ++replies;
    }
    ++registered_;
    asio::co_spawn(executor, Beat(conn, node_id, std::chrono::milliseconds(interval_ms), index),
                   asio::detached);
    while (!stopping_) {
      Result<v1::Envelope> f = co_await conn->Read(std::chrono::seconds(60));
      if (!f.ok()) break;
      if (f->has_heartbeat_ack() && measuring_) {
        rtt_ms_.push_back(
            static_cast<double>(SteadyNowNs() - static_cast<int64_t>(f->request_id())) / 1e6);
        ++acks_in_window_;
      }
    }
  }

  awaitable<void> Beat(std::shared_ptr<FramedConnection> conn, uint64_t node_id,
                       std::chrono::milliseconds interval, int index) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    std::mt19937 rng(static_cast<uint32_t>(index));
    auto next = Clock::now() + std::chrono::milliseconds(rng() % interval.count());
    uint64_t seq = 0;
    while (conn->is_open() && !stopping_) {
      timer.expires_at(next);
      boost::system::error_code ec;
      co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
      v1::Envelope beat;
      beat.set_request_id(static_cast<uint64_t>(SteadyNowNs()));  // echoed back: the send time
      beat.mutable_heartbeat()->set_node_id(node_id);
      beat.mutable_heartbeat()->set_seq(++seq);
      if (!conn->Send(beat)) break;
      next += interval;
    }
  }

  void Fail(const std::string& why) {
    if (failed_.fetch_add(1) == 0) first_error_ = why;
  }

  HostPort scheduler_;
  std::string token_;
  asio::io_context io_{1};
  std::thread thread_;
  std::vector<std::shared_ptr<FramedConnection>> conns_;
  int started_ = 0;
  std::atomic<int> registered_{0};
  std::atomic<int> failed_{0};
  std::string first_error_;
  bool stopping_ = false;
  bool measuring_ = false;
  std::vector<double> rtt_ms_;
  uint64_t acks_in_window_ = 0;
};

struct Options {
  std::vector<int> nodes = {1000, 5000, 10000};
  int interval_ms = 1000;
  int warmup_s = 5;
  int window_s = 20;
  int batch = 500;
  std::string scheduler_bin;
  std::string output = "table";
};

struct Row {
  int nodes = 0;
  double offered_per_s = 0;
  double handled_per_s = 0;
  Summary rtt;
  double scheduler_cpu_pct = 0;
  double scheduler_rss_mib = 0;
  double client_cpu_pct = 0;
  int up_at_end = 0;
  int failed = 0;
};

Result<Row> RunOne(const Options& opt, int nodes) {
  std::string dir = fmt::format("{}/breakeven-hb-bench-{}",
                                std::filesystem::temp_directory_path().string(), getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::string token = "heartbeat-bench-token-" + NewBootId();
  { std::ofstream(dir + "/token") << token << "\n"; }
  // Pick a free port by binding to 0 and releasing it.
  asio::io_context probe;
  tcp::acceptor a(probe, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  uint16_t port = a.local_endpoint().port();
  a.close();

  std::string log = dir + "/scheduler.log";
  BE_ASSIGN_OR_RETURN(
      ChildProcess scheduler,
      ChildProcess::Start(
          {opt.scheduler_bin, "--listen", fmt::format("127.0.0.1:{}", port), "--http",
           "127.0.0.1:0", "--db", dir + "/bench.db", "--token-file", dir + "/token",
           "--heartbeat-interval-ms", std::to_string(opt.interval_ms), "--suspect-after-ms",
           std::to_string(opt.interval_ms * 3), "--down-after-ms",
           std::to_string(opt.interval_ms * 5), "--log-level", "warn"},
          log, log));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  if (!scheduler.running()) return Unavailable("scheduler exited at start; see {}", log);

  Fleet fleet({"127.0.0.1", port}, token);
  fleet.Start();
  for (int added = 0; added < nodes; added += opt.batch) {
    fleet.Add(std::min(opt.batch, nodes - added), std::chrono::seconds(60));
  }
  if (fleet.failed() > 0) {
    return Internal("{} of {} agents failed to register; first error: {}", fleet.failed(), nodes,
                    fleet.first_error());
  }
  std::this_thread::sleep_for(std::chrono::seconds(opt.warmup_s));

  fleet.SetMeasuring(true);
  auto t0 = Clock::now();
  BE_ASSIGN_OR_RETURN(double sched_cpu0, ProcessCpuSeconds(scheduler.pid()));
  double self_cpu0 = SelfCpuSeconds();
  std::this_thread::sleep_for(std::chrono::seconds(opt.window_s));
  BE_ASSIGN_OR_RETURN(double sched_cpu1, ProcessCpuSeconds(scheduler.pid()));
  double self_cpu1 = SelfCpuSeconds();
  double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  fleet.SetMeasuring(false);
  auto [rtt, acks] = fleet.TakeSamples();

  Row row;
  row.nodes = nodes;
  row.offered_per_s = nodes * 1000.0 / opt.interval_ms;
  row.handled_per_s = static_cast<double>(acks) / seconds;
  row.rtt = Summarize(std::move(rtt));
  row.scheduler_cpu_pct = 100.0 * (sched_cpu1 - sched_cpu0) / seconds;
  row.client_cpu_pct = 100.0 * (self_cpu1 - self_cpu0) / seconds;
  row.scheduler_rss_mib = RssMiB(scheduler.pid());

  // Every simulated node must be UP in the scheduler's own view.
  ClientOptions copt;
  copt.scheduler = {"127.0.0.1", port};
  copt.token = token;
  copt.timeout = std::chrono::seconds(30);
  BE_ASSIGN_OR_RETURN(auto client, SchedulerClient::Connect(copt));
  v1::Envelope req;
  req.mutable_list_nodes();
  BE_ASSIGN_OR_RETURN(v1::Envelope reply, client->Call(std::move(req)));
  for (const auto& n : reply.list_nodes_reply().nodes())
    row.up_at_end += n.state() == v1::NODE_STATE_UP;
  fleet.Stop();
  scheduler.Signal(SIGTERM);
  scheduler.Wait(std::chrono::seconds(10));
  std::filesystem::remove_all(dir);
  return row;
}

int Main(int argc, char** argv) {
  Options opt;
  std::string self_dir = std::filesystem::canonical("/proc/self/exe").parent_path().string();
  opt.scheduler_bin = self_dir + "/../scheduler/breakeven-scheduler";
  CLI::App app{
      "breakeven-heartbeat-bench: simulated node agents heartbeating against a real scheduler"};
  app.add_option("--nodes", opt.nodes, "fleet sizes to run, e.g. --nodes 1000 5000 10000")
      ->capture_default_str();
  app.add_option("--interval-ms", opt.interval_ms, "heartbeat interval")->capture_default_str();
  app.add_option("--warmup-s", opt.warmup_s, "seconds after registration before measuring")
      ->capture_default_str();
  app.add_option("--window-s", opt.window_s, "measurement window")->capture_default_str();
  app.add_option("--batch", opt.batch, "agents connecting at once during ramp-up")
      ->capture_default_str();
  app.add_option("--scheduler-bin", opt.scheduler_bin, "breakeven-scheduler to test")
      ->capture_default_str();
  app.add_option("-o,--output", opt.output, "table or json")
      ->check(CLI::IsMember({"table", "json"}));
  CLI11_PARSE(app, argc, argv);
  RaiseOpenFileLimit();

  std::vector<Row> rows;
  for (int n : opt.nodes) {
    fmt::print(stderr, "running {} nodes ({} s warm-up, {} s window)...\n", n, opt.warmup_s,
               opt.window_s);
    Result<Row> r = RunOne(opt, n);
    if (!r.ok()) {
      fmt::print(stderr, "breakeven-heartbeat-bench: {} nodes: {}\n", n, r.status().message());
      return 1;
    }
    rows.push_back(*r);
  }

  if (opt.output == "table") {
    fmt::print("{:>6}  {:>10}  {:>10}  {:>8}  {:>8}  {:>8}  {:>8}  {:>9}  {:>9}  {:>8}  {:>6}\n",
               "NODES", "OFFERED/s", "HANDLED/s", "RTT_P50", "RTT_P99", "RTT_MAX", "SCHED",
               "SCHED_RSS", "CLIENT", "HANDLED", "UP");
    fmt::print("{:>6}  {:>10}  {:>10}  {:>8}  {:>8}  {:>8}  {:>8}  {:>9}  {:>9}  {:>8}  {:>6}\n",
               "", "beats/s", "beats/s", "ms", "ms", "ms", "%core", "MiB", "%core", "%offered", "");
  }
  for (const Row& r : rows) {
    if (opt.output != "table") break;
    fmt::print(
        "{:>6}  {:>10.0f}  {:>10.0f}  {:>8.2f}  {:>8.2f}  {:>8.2f}  {:>8.1f}  {:>9.1f}  {:>9.1f}  "
        "{:>8.1f}  {:>6}\n",
        r.nodes, r.offered_per_s, r.handled_per_s, r.rtt.p50, r.rtt.p99, r.rtt.max,
        r.scheduler_cpu_pct, r.scheduler_rss_mib, r.client_cpu_pct,
        100.0 * r.handled_per_s / r.offered_per_s, r.up_at_end);
  }
  for (const Row& r : rows) {
    nlohmann::ordered_json j = {{"bench", "heartbeat"},
                                {"nodes", r.nodes},
                                {"interval_ms", opt.interval_ms},
                                {"window_s", opt.window_s},
                                {"offered_per_s", r.offered_per_s},
                                {"handled_per_s", r.handled_per_s},
                                {"handled_fraction", r.handled_per_s / r.offered_per_s},
                                {"rtt_ms",
                                 {{"p50", r.rtt.p50},
                                  {"p90", r.rtt.p90},
                                  {"p99", r.rtt.p99},
                                  {"max", r.rtt.max},
                                  {"mean", r.rtt.mean},
                                  {"samples", r.rtt.count}}},
                                {"scheduler_cpu_pct_of_core", r.scheduler_cpu_pct},
                                {"scheduler_rss_mib", r.scheduler_rss_mib},
                                {"client_cpu_pct_of_core", r.client_cpu_pct},
                                {"nodes_up_at_end", r.up_at_end}};
    fmt::print("{}\n", j.dump());
  }
  return 0;
}

}  // namespace
}  // namespace breakeven::bench

int main(int argc, char** argv) { return breakeven::bench::Main(argc, argv); }
