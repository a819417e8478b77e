// Metrics: the Prometheus text exposition format, exactly, and updates from many threads.
#include "common/metrics.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace breakeven::metrics {
namespace {

// Runs fn and expects std::invalid_argument whose message contains `needle`.
template <typename Fn>
void ExpectInvalid(Fn&& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no std::invalid_argument; expected one mentioning \"" << needle << "\"";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
        << "message \"" << e.what() << "\" does not mention \"" << needle << "\"";
  }
}

// Runs fn(thread index) on `threads` threads released together. The release spins (yielding)
// rather than sleeping so that the threads on a core when the last one arrives start at the same
// instant: a race needs two threads updating at once, which a loaded 2-core machine otherwise
// rarely gives a 1 ms loop.
template <typename Fn>
void RunTogether(int threads, Fn fn) {
  std::atomic<int> ready{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      ready.fetch_add(1);
      while (ready.load() < threads) std::this_thread::yield();
      fn(t);
    });
  }
  for (auto& th : pool) th.join();
}

TEST(Metrics, SmallRegistryWritesExactlyTheTextFormat) {
  Registry r;
  auto& requests =
      r.AddCounter("breakeven_requests_total", "Requests handled.", {"method", "code"});
  auto& queue = r.AddGauge("breakeven_queue_depth", "Requests waiting.");
  auto& step = r.AddHistogram("breakeven_step_seconds", "Step time.", {0.25, 1}, {"phase"});
  r.AddCounter("breakeven_errors_total", "Errors, none yet.", {"kind"});

  // Made out of order: the output sorts children by label values.
  requests.WithLabels({"post", "200"}).Inc();
  requests.WithLabels({"get", "500"}).Inc(2);
  requests.WithLabels({"get", "200"}).Inc(3);
  queue.Get().Set(7);
  queue.Get().Dec(9.5);
  Histogram& decode = step.WithLabels({"decode"});
  for (double v : {0.125, 0.25, 0.5, 4.0}) decode.Observe(v);  // 0.25 is on a bound: le is <=

  EXPECT_EQ(r.Serialize(),
            "# HELP breakeven_requests_total Requests handled.\n"
            "# TYPE breakeven_requests_total counter\n"
            "breakeven_requests_total{method=\"get\",code=\"200\"} 3\n"
            "breakeven_requests_total{method=\"get\",code=\"500\"} 2\n"
            "breakeven_requests_total{method=\"post\",code=\"200\"} 1\n"
            "# HELP breakeven_queue_depth Requests waiting.\n"
            "# TYPE breakeven_queue_depth gauge\n"
            "breakeven_queue_depth -2.5\n"
            "# HELP breakeven_step_seconds Step time.\n"
            "# TYPE breakeven_step_seconds histogram\n"
            "breakeven_step_seconds_bucket{phase=\"decode\",le=\"0.25\"} 2\n"
            "breakeven_step_seconds_bucket{phase=\"decode\",le=\"1\"} 3\n"
            "breakeven_step_seconds_bucket{phase=\"decode\",le=\"+Inf\"} 4\n"
            "breakeven_step_seconds_sum{phase=\"decode\"} 4.875\n"
            "breakeven_step_seconds_count{phase=\"decode\"} 4\n"
            "# HELP breakeven_errors_total Errors, none yet.\n"
            "# TYPE breakeven_errors_total counter\n");
}

TEST(Metrics, HistogramWithoutLabelsHasOnlyLeInBraces) {
  Registry r;
  r.AddHistogram("x_seconds", "X.", {1}).Get().Observe(0.5);
  EXPECT_EQ(r.Serialize(),
            "# HELP x_seconds X.\n"
            "# TYPE x_seconds histogram\n"
            "x_seconds_bucket{le=\"1\"} 1\n"
            "x_seconds_bucket{le=\"+Inf\"} 1\n"
            "x_seconds_sum 0.5\n"
            "x_seconds_count 1\n");
}

TEST(Metrics, LabelValuesAndHelpAreEscaped) {
  EXPECT_EQ(EscapeLabelValue("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(EscapeHelp("a\\b\"c\nd"), "a\\\\b\"c\\nd");  // HELP keeps the quote as it is
  EXPECT_EQ(EscapeLabelValue("plain"), "plain");

  Registry r;
  r.AddGauge("g", "Path C:\\models\nsecond line \"quoted\"", {"path"})
      .WithLabels({"C:\\m\\\"x\".gguf\n"})
      .Set(1);
  EXPECT_EQ(r.Serialize(),
            "# HELP g Path C:\\\\models\\nsecond line \"quoted\"\n"
            "# TYPE g gauge\n"
            "g{path=\"C:\\\\m\\\\\\\"x\\\".gguf\\n\"} 1\n");
}

TEST(Metrics, ValuesAreShortestRoundTripWithPrometheusSpecials) {
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
  EXPECT_EQ(FormatValue(0.1), "0.1");
  EXPECT_EQ(FormatValue(800000), "800000");
  EXPECT_EQ(FormatValue(-2.5), "-2.5");
  for (double v : {0.1 + 0.2, 1e-5, 123456.789, 5e-324, 1.7976931348623157e308}) {
    EXPECT_EQ(std::strtod(FormatValue(v).c_str(), nullptr), v) << FormatValue(v);
  }
}

TEST(Metrics, HistogramBucketsAreCumulativeAndMatchACount) {
  const std::vector<double> bounds = LatencyBuckets();
  Histogram h(bounds);
  std::vector<double> values;
  double sum = 0;
  for (int i = 0; i < 5000; ++i) {
    // Spread over 10 us .. 100 s on a log scale, some exactly on a bound.
    double v = i % 97 == 0 ? bounds[static_cast<size_t>(i) % bounds.size()]
                           : 1e-5 * std::pow(10.0, 7.0 * i / 5000);
    values.push_back(v);
    h.Observe(v);
    sum += v;
  }
  Histogram::Snapshot s = h.Read();
  ASSERT_EQ(s.bounds, bounds);
  ASSERT_EQ(s.cumulative.size(), bounds.size() + 1);
  for (size_t b = 0; b < bounds.size(); ++b) {
    uint64_t at_most = 0;
    for (double v : values) at_most += v <= bounds[b];
    EXPECT_EQ(s.cumulative[b], at_most) << "le=" << bounds[b];
    if (b > 0) {
      EXPECT_GE(s.cumulative[b], s.cumulative[b - 1]);
    }
  }
  EXPECT_EQ(s.cumulative.back(), 5000u);  // +Inf
  EXPECT_EQ(s.count, 5000u);
  EXPECT_DOUBLE_EQ(s.sum, sum);
  EXPECT_LT(s.cumulative[bounds.size() - 1], s.count);  // values above 25 s are only in +Inf
}

TEST(Metrics, BucketHelpersMakeTheDocumentedBounds) {
  EXPECT_EQ(ExponentialBuckets(0.001, 2, 4), (std::vector<double>{0.001, 0.002, 0.004, 0.008}));
  const std::vector<double> l = LatencyBuckets();
  EXPECT_DOUBLE_EQ(l.front(), 1e-4);
  EXPECT_GE(l.back(), 20.0);
  EXPECT_LE(l.back(), 40.0);
  for (size_t i = 1; i < l.size(); ++i) EXPECT_GT(l[i], l[i - 1]);
  ExpectInvalid([] { ExponentialBuckets(0, 2, 3); }, "ExponentialBuckets");
}

TEST(Metrics, CounterIgnoresNegativeIncrements) {
  Counter c;
  c.Inc(2);
  c.Inc(-1);
  c.Inc(std::nan(""));
  EXPECT_EQ(c.value(), 2);
  Gauge g;
  g.Inc(2);
  g.Dec(3);
  EXPECT_EQ(g.value(), -1);
}

TEST(Metrics, ConcurrentIncrementsOnOneCounterAreAllCounted) {
  // Twenty rounds: on a 2-core machine busy with other work, a single round of an Inc that loses
  // updates (a load then a store) was caught only about half of the time; twenty nearly always.
  for (int round = 0; round < 20; ++round) {
    Counter c;
    RunTogether(8, [&](int) {
      for (int i = 0; i < 100'000; ++i) c.Inc();
    });
    ASSERT_EQ(c.value(), 800000.0) << "round " << round;
  }
}

TEST(Metrics, ConcurrentWithLabelsOfTheSameValuesReturnsTheSameChild) {
  Registry r;
  auto& f = r.AddCounter("runs_total", "Runs.", {"run_id"});
  constexpr int kThreads = 8, kKeys = 64;
  std::vector<std::vector<Counter*>> seen(kThreads, std::vector<Counter*>(kKeys));
  RunTogether(kThreads, [&](int t) {
    for (int k = 0; k < kKeys; ++k) {
      Counter& c = f.WithLabels({std::to_string(k)});
      c.Inc();
      seen[t][k] = &c;
    }
  });
  for (int k = 0; k < kKeys; ++k) {
    for (int t = 1; t < kThreads; ++t) EXPECT_EQ(seen[t][k], seen[0][k]) << "run_id " << k;
    EXPECT_EQ(seen[0][k]->value(), kThreads) << "run_id " << k;
  }
  int children = 0;
  f.ForEach([&](const std::vector<std::string>&, const Counter&) { ++children; });
  EXPECT_EQ(children, kKeys);
}

TEST(Metrics, ConcurrentObservationsAreAllCounted) {
  for (int round = 0; round < 10; ++round) {  // rounds: as for the counter above
    Histogram h({1, 2});
    constexpr int kThreads = 8, kPerThread = 60'000;
    // 0.5, 1.5, 2.5 in turn, 20,000 times each per thread: sums of halves are exact in a double.
    RunTogether(kThreads, [&](int) {
      for (int i = 0; i < kPerThread; ++i) h.Observe(0.5 + i % 3);
    });
    Histogram::Snapshot s = h.Read();
    const uint64_t per_value = kThreads * kPerThread / 3;
    EXPECT_EQ(s.cumulative[0], per_value) << "round " << round;
    EXPECT_EQ(s.cumulative[1], 2 * per_value) << "round " << round;
    EXPECT_EQ(s.cumulative[2], 3 * per_value) << "round " << round;
    EXPECT_EQ(s.count, 3 * per_value) << "round " << round;
    EXPECT_EQ(s.sum, per_value * (0.5 + 1.5 + 2.5)) << "round " << round;
  }
}

TEST(Metrics, InvalidNamesAndShapesThrowNamingTheProblem) {
  EXPECT_TRUE(ValidMetricName("breakeven_run:tokens_total"));
  EXPECT_TRUE(ValidMetricName("_x9"));
  EXPECT_FALSE(ValidMetricName(""));
  EXPECT_FALSE(ValidMetricName("9x"));
  EXPECT_FALSE(ValidMetricName("a-b"));
  EXPECT_FALSE(ValidMetricName("a b"));
  EXPECT_TRUE(ValidLabelName("run_id"));
  EXPECT_TRUE(ValidLabelName("_x"));
  EXPECT_FALSE(ValidLabelName("__name__"));
  EXPECT_FALSE(ValidLabelName("a:b"));
  EXPECT_FALSE(ValidLabelName("1a"));
  EXPECT_FALSE(ValidLabelName(""));

  Registry r;
  ExpectInvalid([&] { r.AddCounter("bad-name_total", "x"); }, "bad-name_total");
  ExpectInvalid([&] { r.AddGauge("g", "x", {"__reserved"}); }, "__reserved");
  ExpectInvalid([&] { r.AddGauge("g", "x", {"a", "a"}); }, "appears twice");
  r.AddGauge("g", "x", {"a"});
  ExpectInvalid([&] { r.AddCounter("g", "again"); }, "registered twice");
  ExpectInvalid([&] { r.AddHistogram("h_seconds", "x", {1}, {"le"}); }, "\"le\"");
  ExpectInvalid([&] { r.AddHistogram("h_seconds", "x", {1, 1}); }, "strictly increasing");
  ExpectInvalid([&] { r.AddHistogram("h_seconds", "x", {2, 1}); }, "strictly increasing");
  ExpectInvalid([&] { r.AddHistogram("h_seconds", "x", {1, std::nan("")}); }, "not finite");
  ExpectInvalid([&] { r.AddHistogram("h_seconds", "x", {1, HUGE_VAL}); }, "not finite");
  ExpectInvalid([] { Histogram h({0.5, 0.1}); }, "strictly increasing");
  ExpectInvalid([] { Family<Gauge> f("g", "x", {}, {1.0}); }, "not a histogram");
  // A histogram's sample names are taken, in either order of registration.
  r.AddHistogram("lat_seconds", "x", {1});
  ExpectInvalid([&] { r.AddCounter("lat_seconds_count", "x"); }, "lat_seconds");
  r.AddGauge("q_sum", "x");
  ExpectInvalid([&] { r.AddHistogram("q", "x", {1}); }, "q_sum");

  auto& g = r.AddGauge("two_labels", "x", {"a", "b"});
  ExpectInvalid([&] { g.WithLabels({"only one"}); }, "two_labels");
  ExpectInvalid([&] { g.Get(); }, "0 label values given for 2");
  // Failed registrations left nothing behind.
  EXPECT_EQ(r.Serialize().find("h_seconds"), std::string::npos);
}

TEST(Metrics, RemoveDropsTheSeries) {
  Registry r;
  auto& f = r.AddGauge("run_tokens", "x", {"run_id"});
  f.WithLabels({"1"}).Set(10);
  f.WithLabels({"2"}).Set(20);
  f.Remove({"1"});
  f.Remove({"absent"});  // ignored
  EXPECT_EQ(r.Serialize(),
            "# HELP run_tokens x\n"
            "# TYPE run_tokens gauge\n"
            "run_tokens{run_id=\"2\"} 20\n");
  EXPECT_EQ(f.WithLabels({"1"}).value(), 0);  // made again from scratch
  f.Clear();
  EXPECT_EQ(r.Serialize(), "# HELP run_tokens x\n# TYPE run_tokens gauge\n");
}

TEST(Metrics, OnScrapeCallbacksRunBeforeTheOutput) {
  Registry r;
  auto& scrapes = r.AddGauge("scrapes", "x");
  auto& nodes = r.AddGauge("nodes", "x", {"state"});
  std::vector<std::string> order;
  int calls = 0;
  r.OnScrape([&] {
    order.push_back("first");
    scrapes.Get().Set(++calls);
  });
  r.OnScrape([&] {
    order.push_back("second");
    nodes.Clear();  // re-filled from scratch: a state no longer present disappears
    nodes.WithLabels({calls == 1 ? "up" : "down"}).Set(calls);
  });
  EXPECT_NE(r.Serialize().find("scrapes 1\n"), std::string::npos);
  std::string second = r.Serialize();
  EXPECT_NE(second.find("scrapes 2\n"), std::string::npos) << second;
  EXPECT_NE(second.find("nodes{state=\"down\"} 2\n"), std::string::npos) << second;
  EXPECT_EQ(second.find("state=\"up\""), std::string::npos) << second;
  EXPECT_EQ(order, (std::vector<std::string>{"first", "second", "first", "second"}));
}

TEST(Metrics, ScrapesRaceUpdatesSafely) {
  // Serialize while children are made, updated and removed. A smoke test: its races show under
  // TSan (clean at the time of writing); without it, only a torn scrape that happens to land in
  // the window fails the checks below.
  Registry r;
  auto& f = r.AddCounter("c_total", "x", {"k"});
  auto& h = r.AddHistogram("h_seconds", "x", LatencyBuckets(), {"k"});
  std::atomic<bool> stop{false};
  std::atomic<int> made{0};
  std::thread writer([&] {
    for (int i = 0; !stop.load(); ++i, made.store(i)) {
      const std::string k = std::to_string(i % 50);
      f.WithLabels({k}).Inc();
      h.WithLabels({k}).Observe(0.001 * (i % 1000));
      if (i % 7 == 0) f.Remove({std::to_string((i + 25) % 50)});
    }
  });
  while (made.load() < 1000) std::this_thread::yield();
  for (int i = 0; i < 200; ++i) {
    const std::string text = r.Serialize();
    EXPECT_EQ(text.rfind("# HELP c_total x\n# TYPE c_total counter\n", 0), 0u);
    // Every histogram child, printed while it is observed, still has +Inf == count.
    std::map<std::string, std::string> inf, count;  // by the child's label pairs
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
      const std::string inf_tail = ",le=\"+Inf\"}";
      if (line.rfind("h_seconds_bucket{", 0) == 0 && line.find(inf_tail) != std::string::npos) {
        const size_t end = line.find(inf_tail);
        inf[line.substr(17, end - 17)] = line.substr(end + inf_tail.size() + 1);
      } else if (line.rfind("h_seconds_count{", 0) == 0) {
        const size_t end = line.find('}');
        count[line.substr(16, end - 16)] = line.substr(end + 2);
      }
    }
    EXPECT_FALSE(inf.empty());
    EXPECT_EQ(inf, count);
    if (HasFailure()) break;
  }
  stop = true;
  writer.join();
}

// promtool (Debian package `prometheus`) parses and lints the output as Prometheus would.
TEST(Metrics, PromtoolAcceptsEveryMetricType) {
  if (std::system("command -v promtool > /dev/null 2>&1") != 0) {
    GTEST_SKIP() << "promtool not installed (Debian package prometheus)";
  }
  Registry r;
  auto& req = r.AddCounter("breakeven_requests_total", "Requests handled, by \"run\".\nPer run.",
                           {"run_id", "model"});
  req.WithLabels({"1", "llama \"3\" \\ 8b\nq4"}).Inc(5);
  req.WithLabels({"2", "tiny"}).Inc(0.5);
  r.AddGauge("breakeven_nodes", "Nodes by state.", {"state"}).WithLabels({"up"}).Set(3);
  r.AddGauge("breakeven_queue_depth", "Queued requests.").Get().Set(-1);
  r.AddGauge("breakeven_free_memory_bytes", "Free device memory.")
      .Get()
      .Set(std::numeric_limits<double>::infinity());
  auto& lat =
      r.AddHistogram("breakeven_request_seconds", "Request latency.", LatencyBuckets(), {"run_id"});
  for (int i = 0; i < 100; ++i) lat.WithLabels({std::to_string(i % 3)}).Observe(0.0003 * i * i);
  r.AddHistogram("breakeven_step_seconds", "Step time.", ExponentialBuckets(0.001, 2, 5))
      .Get()
      .Observe(0.004);
  r.AddCounter("breakeven_failures_total", "Failed runs (none yet).", {"reason"});

  const std::string path = testing::TempDir() + "metrics_promtool_test.prom";
  {
    std::ofstream out(path, std::ios::binary);
    out << r.Serialize();
  }
  const std::string cmd = "promtool check metrics < '" + path + "' 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string lint;
  char buf[512];
  while (size_t n = fread(buf, 1, sizeof buf, p)) lint.append(buf, n);
  const int status = pclose(p);
  std::remove(path.c_str());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << lint;
  EXPECT_EQ(lint, "");
}

}  // namespace
}  // namespace breakeven::metrics
