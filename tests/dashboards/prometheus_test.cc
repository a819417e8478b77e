// The two Prometheus dashboards against a real Prometheus scraping a real cluster: a scheduler
// and a node agent serving /metrics, a benchmark run in progress whose rank-0 worker Prometheus
// finds through the scheduler's /sd/workers. Every expression of every panel, with the
// variables set to label values Prometheus has, must return data. Skipped where Prometheus is
// not installed (Debian: apt-get install prometheus).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "tests/dashboards/cluster_cleanup.h"
#include "tests/dashboards/dashboard_files.h"
#include "tests/dashboards/http_get.h"
#include "tests/support/cluster.h"

namespace breakeven::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// A Prometheus server of the test's own, on loopback, with its data in a temporary directory.
class PrometheusServer {
 public:
  PrometheusServer(const std::string& binary, const std::string& dir, const std::string& config)
      : port_(FreePort()) {
    WriteFile(dir + "/prometheus.yml", config);
    process_ = std::make_unique<TestProcess>(TestProcess::Start(
        {binary, "--config.file=" + dir + "/prometheus.yml", "--storage.tsdb.path=" + dir + "/data",
         "--web.listen-address=127.0.0.1:" + std::to_string(port_), "--log.level=warn"},
        dir + "/prometheus.log"));
  }
  ~PrometheusServer() {
    process_->Signal(SIGTERM);
    if (!process_->Wait(10s)) process_->Signal(SIGKILL);
    process_->Wait(5s);
    if (::testing::Test::HasFailure()) {
      fprintf(stderr, "---- prometheus log ----\n%s\n", process_->Log().c_str());
    }
  }

  bool WaitReady(std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      Result<LoopbackReply> r = LoopbackGet(port_, "/-/ready", 2s);
      if (r.ok() && r->status == 200) return true;
      if (!process_->running()) return false;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  // GET /api/v1/...: the `data` of a successful answer, or the error.
  Result<json> Api(const std::string& target) {
    BE_ASSIGN_OR_RETURN(LoopbackReply reply, LoopbackGet(port_, target, 10s));
    json body = json::parse(reply.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded() || body.value("status", "") != "success") {
      return InvalidArgument("{} -> HTTP {}: {}", target, reply.status, reply.body.substr(0, 300));
    }
    return body["data"];
  }
  Result<json> Query(const std::string& promql) {
    return Api("/api/v1/query?query=" + UrlEncode(promql));
  }

  std::string Log() const { return process_->Log(); }

 private:
  int port_;
  std::unique_ptr<TestProcess> process_;
};

// Whether an instant query's answer holds a value.
bool HasData(const json& data) {
  if (data.value("resultType", "") == "scalar") return true;
  return data.contains("result") && data["result"].is_array() && !data["result"].empty();
}

// Series only a GPU node exports (NVML): a CPU-only cluster has none.
bool NeedsGpu(const std::string& expr) {
  return expr.find("breakeven_node_device_utilization_ratio") != std::string::npos ||
         expr.find("breakeven_node_device_power_watts") != std::string::npos;
}

TEST(PrometheusDashboards, EveryExpressionReturnsDataFromALiveCluster) {
  const std::string prometheus = FindProgram("prometheus");
  if (prometheus.empty() || FindProgram("promtool").empty()) {
    GTEST_SKIP() << "Prometheus is not installed (Debian: apt-get install prometheus)";
  }
  LocalCluster cluster;
  StopRunsAtExit stop_runs(cluster);
  cluster.StartScheduler(LocalCluster::FastLiveness());
  const int node_http = FreePort();
  // Calibrated: an uncalibrated device has no roofline series.
  cluster.StartNode("a", {"--http", "127.0.0.1:" + std::to_string(node_http), "--calibrate", "on"});
  ASSERT_TRUE(cluster.WaitForStates({{"a", "UP"}}, 60s));

  // A frame the scheduler refuses (a length prefix that never ends), so the refusal counter has
  // a series before Prometheus looks.
  {
    int fd = ConnectLoopback(cluster.port());
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, "\xff\xff\xff\xff\xff\xff", 6), 6);
    const timeval wait{5, 0};  // the refusal closes the connection; never wait longer
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait));
    char buf[256];
    while (::read(fd, buf, sizeof(buf)) > 0) {
    }
    ::close(fd);
  }

  // A run that stays in progress while the expressions are checked; cancelled at the end.
  const std::string matrix = cluster.dir() + "/live.yaml";
  WriteFile(matrix, R"(name: live
models: [tiny-15m]
workloads: ["16/8"]
kv_cache_mib: 32
load: {pattern: concurrency, concurrency: [2], warmup_s: 0, duration_s: 240, max_requests: 100000}
)");
  CommandResult submitted = cluster.Cli({"submit", matrix});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.out << submitted.err;

  PrometheusServer prom(prometheus, cluster.dir(),
                        fmt::format(R"(global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: breakeven-scheduler
    static_configs: [{{targets: ["127.0.0.1:{}"]}}]
  - job_name: breakeven-node
    static_configs: [{{targets: ["127.0.0.1:{}"]}}]
  - job_name: breakeven-worker
    honor_labels: true
    http_sd_configs: [{{url: "http://127.0.0.1:{}/sd/workers", refresh_interval: 1s}}]
)",
                                    cluster.http_port(), node_http, cluster.http_port()));
  ASSERT_TRUE(prom.WaitReady(30s)) << prom.Log();

  // Every target up, the worker's for several scrapes (rate() needs two samples in its window).
  const auto up_deadline = std::chrono::steady_clock::now() + 90s;
  std::string last_up;
  for (;;) {
    Result<json> up = prom.Query(
        "min by (job) (min_over_time(up[20s])) == 1 and on (job) "
        "min by (job) (count_over_time(up[20s])) >= 5");
    if (up.ok()) {
      last_up = up->dump();
      std::set<std::string> jobs;
      for (const json& r : (*up)["result"]) jobs.insert(r["metric"].value("job", ""));
      if (jobs.size() == 3) break;
    } else {
      last_up = up.status().message();
    }
    if (std::chrono::steady_clock::now() >= up_deadline) {
      Result<LoopbackReply> sd = LoopbackGet(cluster.http_port(), "/sd/workers", 2s);
      Result<json> targets = prom.Api("/api/v1/targets?state=active");
      FAIL() << "not every target up; last answer: " << last_up
             << "\n/sd/workers: " << (sd.ok() ? sd->body : sd.status().message())
             << "\ntargets: " << (targets.ok() ? targets->dump(1) : targets.status().message());
    }
    std::this_thread::sleep_for(500ms);
  }

  Result<json> gpus = prom.Query("breakeven_node_device_memory_total_bytes{device!=\"cpu\"}");
  ASSERT_TRUE(gpus.ok()) << gpus.status().message();
  const bool have_gpu = HasData(*gpus);

  const auto checks_end = std::chrono::steady_clock::now() + 90s;
  int checked = 0;
  for (const char* file : {"cluster-overview.json", "live-runs.json"}) {
    const json dashboard = LoadDashboard(file).json;
    // Variables as a person would set them: the first value Prometheus knows for each.
    Variables vars = {{"__rate_interval", Single("20s")},
                      {"__interval", Single("5s")},
                      {"__range", Single("5m")}};
    for (const json& v : dashboard["templating"]["list"]) {
      std::optional<LabelValuesQuery> lv = ParseLabelValues(VariableQueryText(v));
      ASSERT_TRUE(lv) << file << " variable " << v["name"];
      Result<std::string> selector = Interpolate(lv->selector, vars, QueryLanguage::kPromQl);
      ASSERT_TRUE(selector.ok()) << selector.status().message();
      Result<json> values =
          prom.Api("/api/v1/label/" + lv->label + "/values?match[]=" + UrlEncode(*selector));
      ASSERT_TRUE(values.ok()) << values.status().message();
      ASSERT_FALSE(values->empty())
          << file << " variable " << v["name"] << ": no values for " << VariableQueryText(v);
      vars[v["name"]] = VariableValue{{(*values)[0].get<std::string>()}, true, {}};
    }

    for (const PanelQuery& q : Queries(dashboard)) {
      SCOPED_TRACE(std::string(file) + " " + q.where());
      Result<std::string> expr = Interpolate(q.text, vars, QueryLanguage::kPromQl);
      ASSERT_TRUE(expr.ok()) << expr.status().message();
      // Histograms need observations inside the rate window: retry for a while, within the
      // time all the checks have together (the test has a time limit).
      const auto deadline = std::min(std::chrono::steady_clock::now() + 30s, checks_end);
      Result<json> data = prom.Query(*expr);
      while (data.ok() && !HasData(*data) && std::chrono::steady_clock::now() < deadline &&
             !(NeedsGpu(*expr) && !have_gpu)) {
        std::this_thread::sleep_for(1s);
        data = prom.Query(*expr);
      }
      ASSERT_TRUE(data.ok()) << data.status().message();
      ++checked;
      if (NeedsGpu(*expr) && !have_gpu) {
        std::printf("[ info     ] %s %s: GPU-only series, no GPU here: not required to have data\n",
                    file, q.where().c_str());
        continue;
      }
      EXPECT_TRUE(HasData(*data)) << "no data for\n  " << *expr;
    }
  }
  EXPECT_GE(checked, 30);
}

}  // namespace
}  // namespace breakeven::testing
