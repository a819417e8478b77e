// breakeven-metrics-bench: what the metrics registry (common/metrics.h) costs on the hot path and
// per scrape.
//
// Hot path: each case runs `ops` updates split over `threads` threads, all on ONE metric (the
// contended case is the worst one: every thread's update fights for the same cache line).
//   cpu ns/update   each thread's CPU time (CLOCK_THREAD_CPUTIME_ID) / its updates, averaged over
//                   the threads: what one update costs its caller, not counting time the thread
//                   spent preempted by other work on the machine
//   wall ns/update  the slowest thread's wall time / its updates
//   parallel        sum of the threads' CPU time / the case's wall time: how many threads really
//                   ran at once. A 2-thread case measures contention only if this is near 2; on a
//                   machine busy with other work the threads take turns and it falls toward 1.
// The bound it is read against is a relaxed
// std::atomic<uint64_t>::fetch_add (one `lock xadd`) measured in the same run: a double has no
// atomic add instruction on x86, so Counter::Inc is a compare-exchange loop and cannot beat it.
//   counter   Counter::Inc(1)
//   histogram Histogram::Observe(v) over LatencyBuckets(), v cycling through 1,024 values spread
//             from 50 us to 50 s (a bucket search, then the bucket's and the sum's atomic adds)
// Each case is repeated `repeats` times and the median is reported. The correctness pass: after
// each repetition the metric holds exactly the updates made.
//
// Scrape: Registry::Serialize on a registry shaped like the scheduler's with `runs` runs in it:
// per run 10 series (requests, prompt and completion tokens, failures, points done/total,
// progress, cost, active nodes, start time), three latency histograms (request, TTFT, TPOT) with
// one child per run over LatencyBuckets(), and node gauges re-filled by an OnScrape callback
// (3 per node, `runs` / 2 nodes). Median and max of `scrapes` scrapes, in ms. The correctness
// pass: the output has one line per expected sample plus two per family.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <ctime>
#include <latch>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/metrics.h"
#include "common/status.h"

namespace breakeven::bench {
namespace {

using Clock = std::chrono::steady_clock;
using metrics::Counter;
using metrics::Family;
using metrics::Gauge;
using metrics::Histogram;
using metrics::Registry;

struct Options {
  int64_t ops = 50'000'000;
  int repeats = 5;
  int runs = 100;
  int scrapes = 50;
  std::vector<int> threads = {1, 2};
  std::string output = "table";
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

struct Timing {
  double wall_s = 0;      // from the release to the last thread's end
  double max_wall_s = 0;  // the slowest thread's own wall time
  double sum_cpu_s = 0;   // the threads' CPU time, summed
};

// Runs body(thread index, updates) on `threads` threads released together.
template <typename Body>
Timing TimeThreads(int threads, int64_t per_thread, Body body) {
  std::latch start(threads + 1);
  std::vector<double> wall(static_cast<size_t>(threads)), cpu(static_cast<size_t>(threads));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      start.arrive_and_wait();
      const double c0 = ThreadCpuSeconds();
      auto t0 = Clock::now();
      body(t, per_thread);
      wall[static_cast<size_t>(t)] = std::chrono::duration<double>(Clock::now() - t0).count();
      cpu[static_cast<size_t>(t)] = ThreadCpuSeconds() - c0;
    });
  }
  start.arrive_and_wait();
  auto t0 = Clock::now();
  for (auto& th : pool) th.join();
  Timing timing;
  timing.wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
  timing.max_wall_s = *std::max_element(wall.begin(), wall.end());
  for (double c : cpu) timing.sum_cpu_s += c;
  return timing;
}

struct HotRow {
  std::string metric;
  int threads = 0;
  int64_t ops = 0;
  // One entry per repetition.
  std::vector<double> cpu_ns, wall_ns, parallel, aggregate_per_s;
};

// One case: `make` builds a fresh metric per repetition, `update` is the timed loop,
// `check` returns the error for a wrong final state, or "".
template <typename Make, typename Update, typename Check>
Result<HotRow> RunHot(const std::string& metric, int threads, const Options& opt, Make make,
                      Update update, Check check) {
  HotRow row{metric, threads, opt.ops, {}, {}, {}, {}};
  const int64_t per_thread = opt.ops / threads;
  const auto n = static_cast<double>(per_thread);
  for (int rep = 0; rep < opt.repeats; ++rep) {
    auto m = make();
    const Timing t =
        TimeThreads(threads, per_thread, [&](int i, int64_t count) { update(*m, i, count); });
    std::string error = check(*m, per_thread * threads);
    if (!error.empty()) {
      return Status(StatusCode::kInternal, fmt::format("{} x{}: {}", metric, threads, error));
    }
    row.cpu_ns.push_back(t.sum_cpu_s / threads * 1e9 / n);
    row.wall_ns.push_back(t.max_wall_s * 1e9 / n);
    row.parallel.push_back(t.sum_cpu_s / t.wall_s);
    row.aggregate_per_s.push_back(n * threads / t.wall_s);
  }
  return row;
}

Result<std::vector<HotRow>> RunHotPath(const Options& opt) {
  std::vector<HotRow> rows;
  std::vector<double> values(1024);
  for (size_t i = 0; i < values.size(); ++i) {
    values[i] = 5e-5 * std::pow(10.0, 6.0 * static_cast<double>(i) / values.size());
  }
  for (int threads : opt.threads) {
    BE_ASSIGN_OR_RETURN(HotRow atomic_row,
                        RunHot(
                            "atomic<uint64_t>::fetch_add", threads, opt,
                            [] { return std::make_unique<std::atomic<uint64_t>>(0); },
                            [](std::atomic<uint64_t>& a, int, int64_t n) {
                              for (int64_t i = 0; i < n; ++i)
                                a.fetch_add(1, std::memory_order_relaxed);
                            },
                            [](std::atomic<uint64_t>& a, int64_t total) {
                              return a.load() == static_cast<uint64_t>(total)
                                         ? std::string()
                                         : fmt::format("{} counted, {} made", a.load(), total);
                            }));
    rows.push_back(atomic_row);
    BE_ASSIGN_OR_RETURN(
        HotRow counter_row,
        RunHot(
            "Counter::Inc", threads, opt, [] { return std::make_unique<Counter>(); },
            [](Counter& c, int, int64_t n) {
              for (int64_t i = 0; i < n; ++i) c.Inc();
            },
            [](Counter& c, int64_t total) {
              return c.value() == static_cast<double>(total)
                         ? std::string()
                         : fmt::format("{} counted, {} made", c.value(), total);
            }));
    rows.push_back(counter_row);
    BE_ASSIGN_OR_RETURN(HotRow histogram_row,
                        RunHot(
                            "Histogram::Observe", threads, opt,
                            [] { return std::make_unique<Histogram>(metrics::LatencyBuckets()); },
                            [&](Histogram& h, int t, int64_t n) {
                              size_t j = static_cast<size_t>(t) * 512;
                              for (int64_t i = 0; i < n; ++i) h.Observe(values[j++ & 1023]);
                            },
                            [](Histogram& h, int64_t total) {
                              Histogram::Snapshot s = h.Read();
                              return s.count == static_cast<uint64_t>(total) &&
                                             s.cumulative.back() == s.count
                                         ? std::string()
                                         : fmt::format("{} counted, {} made", s.count, total);
                            }));
    rows.push_back(histogram_row);
  }
  return rows;
}

struct ScrapeResult {
  int runs = 0;
  int64_t samples = 0;  // sample lines
  size_t bytes = 0;
  std::vector<double> ms, cpu_ms;  // wall and this thread's CPU time, per scrape
};

// The scheduler's shape, with `runs` runs holding series.
Result<ScrapeResult> RunScrape(const Options& opt) {
  Registry r;
  const std::vector<std::string> run = {"run_id"};
  auto& requests = r.AddCounter("breakeven_run_requests_total", "Requests completed.", run);
  auto& tokens =
      r.AddCounter("breakeven_run_tokens_total", "Tokens processed.", {"run_id", "kind"});
  auto& failures = r.AddCounter("breakeven_run_failures_total", "Requests failed.", run);
  auto& done = r.AddGauge("breakeven_run_points_done", "Load points finished.", run);
  auto& total = r.AddGauge("breakeven_run_points", "Load points planned.", run);
  auto& progress = r.AddGauge("breakeven_run_progress_ratio", "Share of the run done.", run);
  auto& cost = r.AddGauge("breakeven_run_cost_dollars", "Accrued device cost.", run);
  auto& active = r.AddGauge("breakeven_run_active_nodes", "Nodes serving the run.", run);
  auto& started = r.AddGauge("breakeven_run_start_time_seconds", "Start, Unix time.", run);
  std::vector<Family<Histogram>*> histograms = {
      &r.AddHistogram("breakeven_run_request_seconds", "Request latency.",
                      metrics::LatencyBuckets(), run),
      &r.AddHistogram("breakeven_run_ttft_seconds", "Time to first token.",
                      metrics::LatencyBuckets(), run),
      &r.AddHistogram("breakeven_run_tpot_seconds", "Time per output token.",
                      metrics::LatencyBuckets(), run)};
  auto& nodes_up = r.AddGauge("breakeven_node_up", "Node is UP.", {"node"});
  auto& node_mem = r.AddGauge("breakeven_node_free_memory_bytes", "Free memory.", {"node"});
  auto& node_util = r.AddGauge("breakeven_node_utilization_ratio", "Device busy share.", {"node"});
  const int nodes = std::max(1, opt.runs / 2);
  r.OnScrape([&] {
    nodes_up.Clear();
    node_mem.Clear();
    node_util.Clear();
    for (int n = 0; n < nodes; ++n) {
      const std::string name = fmt::format("node-{:03}", n);
      nodes_up.WithLabels({name}).Set(1);
      node_mem.WithLabels({name}).Set(141e9 - n * 1e6);
      node_util.WithLabels({name}).Set(0.5 + n * 1e-3);
    }
  });

  for (int i = 0; i < opt.runs; ++i) {
    const std::string id = std::to_string(1000 + i);
    requests.WithLabels({id}).Inc(1000 + i);
    tokens.WithLabels({id, "prompt"}).Inc(512000.0 * i);
    tokens.WithLabels({id, "completion"}).Inc(128000.0 * i + 0.5);
    failures.WithLabels({id}).Inc(i % 3);
    done.WithLabels({id}).Set(i % 17);
    total.WithLabels({id}).Set(17);
    progress.WithLabels({id}).Set((i % 17) / 17.0);
    cost.WithLabels({id}).Set(0.01 * i + 1.0 / 3);
    active.WithLabels({id}).Set(i % 8);
    started.WithLabels({id}).Set(1.7e9 + i * 61.25);
    for (Family<Histogram>* h : histograms) {
      Histogram& child = h->WithLabels({id});
      for (int k = 0; k < 200; ++k) child.Observe(1e-4 * std::pow(1.06, k + i % 7));
    }
  }
  const int64_t scalar_series = 10LL * opt.runs + 3LL * nodes;
  const int64_t histogram_lines =
      3LL * opt.runs * (static_cast<int64_t>(metrics::LatencyBuckets().size()) + 1 + 2);
  const int64_t families = 15;

  ScrapeResult res;
  res.runs = opt.runs;
  res.samples = scalar_series + histogram_lines;
  std::string text = r.Serialize();  // warm-up, and the correctness pass
  const int64_t lines = std::count(text.begin(), text.end(), '\n');
  if (lines != res.samples + 2 * families) {
    return Status(StatusCode::kInternal,
                  fmt::format("scrape wrote {} lines, expected {} samples + {} header lines", lines,
                              res.samples, 2 * families));
  }
  res.bytes = text.size();
  for (int s = 0; s < opt.scrapes; ++s) {
    const double c0 = ThreadCpuSeconds();
    auto t0 = Clock::now();
    std::string out = r.Serialize();
    res.ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    res.cpu_ms.push_back((ThreadCpuSeconds() - c0) * 1e3);
    if (out.size() < res.bytes / 2) return Status(StatusCode::kInternal, "scrape shrank");
  }
  return res;
}

int Main(int argc, char** argv) {
  Options opt;
  CLI::App app{"breakeven-metrics-bench: metric updates and scrapes of the metrics registry"};
  app.add_option("--ops", opt.ops, "updates per hot-path case, split over its threads")
      ->capture_default_str();
  app.add_option("--threads", opt.threads, "thread counts for the hot-path cases")
      ->capture_default_str();
  app.add_option("--repeats", opt.repeats, "repetitions per hot-path case")->capture_default_str();
  app.add_option("--runs", opt.runs, "runs whose series the scraped registry holds")
      ->capture_default_str();
  app.add_option("--scrapes", opt.scrapes, "timed scrapes")->capture_default_str();
  app.add_option("-o,--output", opt.output, "table or json")
      ->check(CLI::IsMember({"table", "json"}));
  CLI11_PARSE(app, argc, argv);

  fmt::print(stderr, "hot path: {} updates per case, {} repetitions...\n", opt.ops, opt.repeats);
  Result<std::vector<HotRow>> hot = RunHotPath(opt);
  if (!hot.ok()) {
    fmt::print(stderr, "breakeven-metrics-bench: {}\n", hot.status().message());
    return 1;
  }
  fmt::print(stderr, "scrape: {} runs, {} scrapes...\n", opt.runs, opt.scrapes);
  Result<ScrapeResult> scrape = RunScrape(opt);
  if (!scrape.ok()) {
    fmt::print(stderr, "breakeven-metrics-bench: {}\n", scrape.status().message());
    return 1;
  }

  if (opt.output == "table") {
    const char* head = "{:<28}  {:>7}  {:>11}  {:>9}  {:>9}  {:>9}  {:>9}  {:>8}  {:>9}\n";
    fmt::print(fmt::runtime(head), "UPDATE (one shared metric)", "THREADS", "UPDATES", "CPU", "CPU",
               "CPU", "WALL", "PARALLEL", "AGGREGATE");
    fmt::print(fmt::runtime(head), "", "", "", "median", "min", "max", "median", "median",
               "median");
    fmt::print(fmt::runtime(head), "", "", "", "ns/update", "ns/update", "ns/update", "ns/update",
               "threads", "M/s");
    for (const HotRow& h : *hot) {
      fmt::print(
          "{:<28}  {:>7}  {:>11}  {:>9.2f}  {:>9.2f}  {:>9.2f}  {:>9.2f}  {:>8.2f}  {:>9.1f}\n",
          h.metric, h.threads, h.ops, Median(h.cpu_ns),
          *std::min_element(h.cpu_ns.begin(), h.cpu_ns.end()),
          *std::max_element(h.cpu_ns.begin(), h.cpu_ns.end()), Median(h.wall_ns),
          Median(h.parallel), Median(h.aggregate_per_s) / 1e6);
    }
    const char* shead = "{:>6}  {:>8}  {:>9}  {:>8}  {:>9}  {:>9}  {:>9}  {:>9}\n";
    fmt::print("\n");
    fmt::print(fmt::runtime(shead), "RUNS", "SAMPLES", "BYTES", "SCRAPES", "WALL", "WALL", "WALL",
               "CPU");
    fmt::print(fmt::runtime(shead), "", "", "", "", "median", "min", "max", "median");
    fmt::print(fmt::runtime(shead), "", "", "", "", "ms", "ms", "ms", "ms");
    fmt::print("{:>6}  {:>8}  {:>9}  {:>8}  {:>9.3f}  {:>9.3f}  {:>9.3f}  {:>9.3f}\n\n",
               scrape->runs, scrape->samples, scrape->bytes, scrape->ms.size(), Median(scrape->ms),
               *std::min_element(scrape->ms.begin(), scrape->ms.end()),
               *std::max_element(scrape->ms.begin(), scrape->ms.end()), Median(scrape->cpu_ms));
  }
  for (const HotRow& h : *hot) {
    nlohmann::ordered_json j = {{"bench", "metrics"},
                                {"case", "update"},
                                {"metric", h.metric},
                                {"threads", h.threads},
                                {"updates", h.ops},
                                {"repeats", h.cpu_ns.size()},
                                {"cpu_ns_per_update_median", Median(h.cpu_ns)},
                                {"wall_ns_per_update_median", Median(h.wall_ns)},
                                {"parallel_median", Median(h.parallel)},
                                {"aggregate_per_s_median", Median(h.aggregate_per_s)},
                                {"cpu_ns_per_update", h.cpu_ns}};
    fmt::print("{}\n", j.dump());
  }
  nlohmann::ordered_json j = {{"bench", "metrics"},
                              {"case", "scrape"},
                              {"runs", scrape->runs},
                              {"samples", scrape->samples},
                              {"bytes", scrape->bytes},
                              {"scrapes", scrape->ms.size()},
                              {"ms_median", Median(scrape->ms)},
                              {"ms_min", *std::min_element(scrape->ms.begin(), scrape->ms.end())},
                              {"ms_max", *std::max_element(scrape->ms.begin(), scrape->ms.end())},
                              {"cpu_ms_median", Median(scrape->cpu_ms)}};
  fmt::print("{}\n", j.dump());
  return 0;
}

}  // namespace
}  // namespace breakeven::bench

int main(int argc, char** argv) { return breakeven::bench::Main(argc, argv); }
