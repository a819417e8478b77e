// Metrics in the Prometheus text exposition format (version 0.0.4), for every daemon's /metrics.
//
// prometheus-cpp is not packaged for Debian 12, so this is a small registry of our own, in the
// same shape: a Registry owns metric families; a family (one name, one type, one help text, a
// fixed list of label names) owns one child per distinct set of label values. Children are made
// once (Family::WithLabels) and then updated on the hot path without locks: counters and gauges
// are one atomic each, a histogram observation is a bucket search and two atomic adds (its bucket
// and its sum; the count is the sum of the buckets, so the +Inf bucket always equals it).
// Serialize() writes every family, children sorted by label values, in the text format
// Prometheus scrapes; OnScrape callbacks run first, for values that are cheaper to read at scrape
// time than to keep current (nodes by state, queue depth, device memory).
//
// Names follow Prometheus conventions: a `breakeven_` prefix, base units in the name (`_seconds`,
// `_bytes`), counters ending in `_total`. An invalid metric or label name, a family registered
// twice, or a wrong number of label values is a programming error and throws
// std::invalid_argument with the name.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace breakeven::metrics {

// Only ever increases. Inc with a negative value (or NaN) is ignored.
class Counter {
 public:
  void Inc(double v = 1.0);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Inc(double v = 1.0);
  void Dec(double v = 1.0) { Inc(-v); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Observations counted into buckets with upper bounds `bounds` (strictly increasing, finite);
// +Inf is implicit. Buckets are exposed cumulatively, as Prometheus expects.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;  // bounds.size() + 1 entries; the last is the +Inf bucket
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot Read() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket, not cumulative
  std::atomic<double> sum_{0.0};
};

// Bucket bounds: `count` bounds start, start * factor, ... (Prometheus' ExponentialBuckets).
std::vector<double> ExponentialBuckets(double start, double factor, int count);
// Latency buckets from 100 us to about 30 s, for request and step times.
std::vector<double> LatencyBuckets();

enum class Type { kCounter, kGauge, kHistogram };

template <typename T>
class Family {
 public:
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::vector<double> bounds = {});

  // The child with these label values (in label_names order), made on first use. The reference
  // stays valid until Remove of the same values, Clear, or the family's destruction.
  T& WithLabels(const std::vector<std::string>& values);
  // The child of a family without labels.
  T& Get() { return WithLabels({}); }
  // Drops a child (a finished run's series); absent values are ignored.
  void Remove(const std::vector<std::string>& values);
  // Drops every child (before re-filling a gauge family at scrape time).
  void Clear();

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  // Calls fn(label values, child) for each child, sorted by label values, under the family's lock.
  void ForEach(const std::function<void(const std::vector<std::string>&, const T&)>& fn) const;

 private:
  std::string name_, help_;
  std::vector<std::string> label_names_;
  std::vector<double> bounds_;  // histograms only
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<T>> children_;
};

class Registry {
 public:
  Family<Counter>& AddCounter(const std::string& name, const std::string& help,
                              std::vector<std::string> label_names = {});
  Family<Gauge>& AddGauge(const std::string& name, const std::string& help,
                          std::vector<std::string> label_names = {});
  Family<Histogram>& AddHistogram(const std::string& name, const std::string& help,
                                  std::vector<double> bounds,
                                  std::vector<std::string> label_names = {});

  // Runs before every Serialize, in registration order, on the serializing thread. Callbacks may
  // add families and update or Clear children; they must not call Serialize.
  void OnScrape(std::function<void()> fn);

  // Every family in registration order, in the text exposition format 0.0.4. Scrapes are
  // serialized with each other, so an OnScrape callback that clears and re-fills a family is never
  // seen half done by a concurrent scrape. Updates of existing children never wait for a scrape;
  // WithLabels waits at most while its family's children are printed.
  std::string Serialize() const;

 private:
  struct Entry {
    Type type;
    std::unique_ptr<Family<Counter>> counter;
    std::unique_ptr<Family<Gauge>> gauge;
    std::unique_ptr<Family<Histogram>> histogram;
  };
  void CheckNew(const std::string& name) const;

  mutable std::mutex scrape_mu_;  // held for a whole Serialize, callbacks included
  mutable std::mutex mu_;         // guards families_ and on_scrape_
  std::vector<Entry> families_;
  std::vector<std::function<void()>> on_scrape_;
};

// The Content-Type of Serialize's output.
inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

// Text-format escaping: HELP text escapes backslash and newline; label values also the double
// quote. Exposed for tests.
std::string EscapeHelp(std::string_view s);
std::string EscapeLabelValue(std::string_view s);
// A sample value as Prometheus writes it: shortest round-trip decimal, "+Inf", "-Inf", "NaN".
std::string FormatValue(double v);
// [a-zA-Z_:][a-zA-Z0-9_:]* for metric names; [a-zA-Z_][a-zA-Z0-9_]* not starting with "__" for
// label names.
bool ValidMetricName(std::string_view name);
bool ValidLabelName(std::string_view name);

}  // namespace breakeven::metrics
