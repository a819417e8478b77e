// The metrics registry and its text exposition (Prometheus text format 0.0.4).
//
// The format, as Prometheus documents it: per family a `# HELP name text` line (backslash and
// newline escaped), a `# TYPE name counter|gauge|histogram` line, then one line per sample,
// `name{label="value",...} value`, with no braces when there are no labels. A histogram's samples
// are `name_bucket{...,le="bound"}` with cumulative counts (le last, "+Inf" for the implicit last
// bucket), then `name_sum` and `name_count`. Values use the shortest decimal that parses back to
// the same double (fmt's "{}"), and "+Inf", "-Inf", "NaN" for the special values.
#include "common/metrics.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <set>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace breakeven::metrics {
namespace {

void AppendValue(double v, std::string* out) {
  if (std::isnan(v)) {
    out->append("NaN");
  } else if (std::isinf(v)) {
    out->append(v > 0 ? "+Inf" : "-Inf");
  } else {
    fmt::format_to(std::back_inserter(*out), "{}", v);
  }
}

// Escapes backslash and newline, and the double quote too when `quote` is set. Most label values
// and help texts need nothing, so they are appended in one piece.
void AppendEscaped(std::string_view s, bool quote, std::string* out) {
  const std::string_view special = quote ? std::string_view("\\\n\"") : std::string_view("\\\n");
  if (s.find_first_of(special) == std::string_view::npos) {
    out->append(s);
    return;
  }
  for (char c : s) {
    switch (c) {
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '"':
        if (quote) {
          out->append("\\\"");
          break;
        }
        [[fallthrough]];
      default:
        out->push_back(c);
    }
  }
}

// `l1="v1",l2="v2"`, without braces: histograms add `le` after it.
std::string LabelPairs(const std::vector<std::string>& names,
                       const std::vector<std::string>& values) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out.push_back(',');
    out.append(names[i]);
    out.append("=\"");
    AppendEscaped(values[i], /*quote=*/true, &out);
    out.push_back('"');
  }
  return out;
}

// `what` names the histogram in the message ("histogram name").
void CheckBounds(std::string_view what, const std::vector<double>& bounds) {
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i])) {
      throw std::invalid_argument(
          fmt::format("{}: bucket bound {} is {}, not finite", what, i, FormatValue(bounds[i])));
    }
    if (i > 0 && !(bounds[i] > bounds[i - 1])) {
      throw std::invalid_argument(
          fmt::format("{}: bucket bounds must be strictly increasing, but bound {} ({}) follows {}",
                      what, i, FormatValue(bounds[i]), FormatValue(bounds[i - 1])));
    }
  }
}

void AppendHeader(std::string_view name, std::string_view help, std::string_view type,
                  std::string* out) {
  out->append("# HELP ");
  out->append(name);
  out->push_back(' ');
  AppendEscaped(help, /*quote=*/false, out);
  out->append("\n# TYPE ");
  out->append(name);
  out->push_back(' ');
  out->append(type);
  out->push_back('\n');
}

// One `name{labels} value` line of a counter or a gauge.
template <typename T>
void AppendScalarFamily(const Family<T>& family, std::string_view type, std::string* out) {
  AppendHeader(family.name(), family.help(), type, out);
  family.ForEach([&](const std::vector<std::string>& values, const T& child) {
    out->append(family.name());
    if (!values.empty()) {
      out->push_back('{');
      out->append(LabelPairs(family.label_names(), values));
      out->push_back('}');
    }
    out->push_back(' ');
    AppendValue(child.value(), out);
    out->push_back('\n');
  });
}

void AppendHistogramFamily(const Family<Histogram>& family, std::string* out) {
  AppendHeader(family.name(), family.help(), "histogram", out);
  const std::string& name = family.name();
  std::vector<std::string> le;  // formatted bounds, the same for every child of the family
  family.ForEach([&](const std::vector<std::string>& values, const Histogram& child) {
    const Histogram::Snapshot snap = child.Read();
    if (le.empty()) {
      for (double b : snap.bounds) le.push_back(FormatValue(b));
      le.push_back("+Inf");
    }
    std::string labels = LabelPairs(family.label_names(), values);
    for (size_t i = 0; i < snap.cumulative.size(); ++i) {
      out->append(name);
      out->append("_bucket{");
      out->append(labels);
      if (!labels.empty()) out->push_back(',');
      out->append("le=\"");
      out->append(le[i]);
      out->append("\"} ");
      fmt::format_to(std::back_inserter(*out), "{}\n", snap.cumulative[i]);
    }
    const std::string braced = labels.empty() ? std::string() : "{" + labels + "}";
    out->append(name);
    out->append("_sum");
    out->append(braced);
    out->push_back(' ');
    AppendValue(snap.sum, out);
    out->push_back('\n');
    out->append(name);
    out->append("_count");
    out->append(braced);
    fmt::format_to(std::back_inserter(*out), " {}\n", snap.count);
  });
}

constexpr std::string_view kHistogramSuffixes[] = {"_bucket", "_sum", "_count"};

}  // namespace

// --- Values and names ---------------------------------------------------------------------------

std::string EscapeHelp(std::string_view s) {
  std::string out;
  AppendEscaped(s, /*quote=*/false, &out);
  return out;
}

std::string EscapeLabelValue(std::string_view s) {
  std::string out;
  AppendEscaped(s, /*quote=*/true, &out);
  return out;
}

std::string FormatValue(double v) {
  std::string out;
  AppendValue(v, &out);
  return out;
}

bool ValidMetricName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                    (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool ValidLabelName(std::string_view name) {
  if (name.empty() || name.substr(0, 2) == "__") return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                    (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

// --- Counter, Gauge, Histogram ------------------------------------------------------------------

void Counter::Inc(double v) {
  if (!(v >= 0.0)) return;  // negative or NaN: a counter never goes down, nor becomes NaN
  value_.fetch_add(v, std::memory_order_relaxed);
}

void Gauge::Inc(double v) { value_.fetch_add(v, std::memory_order_relaxed); }

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      counts_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {
  CheckBounds("histogram", bounds_);
}

void Histogram::Observe(double v) {
  // The first bucket whose bound is >= v (bounds are inclusive upper limits); NaN compares false
  // with every bound and lands in +Inf, as in Prometheus' own clients.
  size_t i = std::isnan(v)
                 ? bounds_.size()
                 : static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) -
                                       bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  s.bounds = bounds_;
  s.cumulative.resize(bounds_.size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = running;
  }
  s.count = running;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  if (!(start > 0) || !(factor > 1) || count < 1) {
    throw std::invalid_argument(
        fmt::format("ExponentialBuckets({}, {}, {}): needs start > 0, factor > 1 and count >= 1",
                    start, factor, count));
  }
  std::vector<double> bounds;
  bounds.reserve(static_cast<size_t>(count));
  double b = start;
  for (int i = 0; i < count; ++i, b *= factor) bounds.push_back(b);
  return bounds;
}

std::vector<double> LatencyBuckets() {
  // 1-2.5-5 steps (as Prometheus' default buckets) from 100 us to 25 s: readable `le` labels,
  // and no step wider than 2.5x for histogram_quantile to interpolate across.
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
          0.1,    0.25,    0.5,    1,     2.5,    5,     10,   25};
}

// --- Family -------------------------------------------------------------------------------------

template <typename T>
Family<T>::Family(std::string name, std::string help, std::vector<std::string> label_names,
                  std::vector<double> bounds)
    : name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)),
      bounds_(std::move(bounds)) {
  if (!ValidMetricName(name_)) {
    throw std::invalid_argument(fmt::format(
        "metric name \"{}\" is invalid: it must match [a-zA-Z_:][a-zA-Z0-9_:]*", name_));
  }
  std::set<std::string_view> seen;
  for (const std::string& label : label_names_) {
    if (!ValidLabelName(label)) {
      throw std::invalid_argument(fmt::format(
          "metric {}: label name \"{}\" is invalid: it must match [a-zA-Z_][a-zA-Z0-9_]* and not "
          "start with \"__\"",
          name_, label));
    }
    if (!seen.insert(label).second) {
      throw std::invalid_argument(
          fmt::format("metric {}: label name {} appears twice", name_, label));
    }
    if (std::is_same_v<T, Histogram> && label == "le") {
      throw std::invalid_argument(
          fmt::format("histogram {}: label name \"le\" is reserved for bucket bounds", name_));
    }
  }
  if constexpr (std::is_same_v<T, Histogram>) {
    CheckBounds("histogram " + name_, bounds_);
  } else if (!bounds_.empty()) {
    throw std::invalid_argument(
        fmt::format("metric {}: bucket bounds given to a family that is not a histogram", name_));
  }
}

template <typename T>
T& Family<T>::WithLabels(const std::vector<std::string>& values) {
  std::lock_guard<std::mutex> lock(mu_);
  if (values.size() != label_names_.size()) {
    throw std::invalid_argument(
        fmt::format("metric {}: {} label values given for {} label names ({})", name_,
                    values.size(), label_names_.size(), fmt::join(label_names_, ", ")));
  }
  auto it = children_.find(values);
  if (it == children_.end()) {
    std::unique_ptr<T> child;
    if constexpr (std::is_same_v<T, Histogram>) {
      child = std::make_unique<Histogram>(bounds_);
    } else {
      child = std::make_unique<T>();
    }
    it = children_.emplace(values, std::move(child)).first;
  }
  return *it->second;
}

template <typename T>
void Family<T>::Remove(const std::vector<std::string>& values) {
  std::lock_guard<std::mutex> lock(mu_);
  children_.erase(values);
}

template <typename T>
void Family<T>::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  children_.clear();
}

template <typename T>
void Family<T>::ForEach(
    const std::function<void(const std::vector<std::string>&, const T&)>& fn) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [values, child] : children_) fn(values, *child);
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

// --- Registry -----------------------------------------------------------------------------------

namespace {

// The family's name, whichever type the registry entry holds.
template <typename Entry>
const std::string& EntryName(const Entry& e) {
  switch (e.type) {
    case Type::kCounter:
      return e.counter->name();
    case Type::kGauge:
      return e.gauge->name();
    case Type::kHistogram:
      break;
  }
  return e.histogram->name();
}

}  // namespace

void Registry::CheckNew(const std::string& name) const {
  for (const Entry& e : families_) {
    const std::string& existing = EntryName(e);
    if (existing == name) {
      throw std::invalid_argument(fmt::format("metric {} is registered twice", name));
    }
    // A histogram's samples are named name_bucket, name_sum and name_count; a family of one of
    // those names would write samples Prometheus cannot tell apart.
    if (e.type == Type::kHistogram) {
      for (std::string_view suffix : kHistogramSuffixes) {
        if (name == existing + std::string(suffix)) {
          throw std::invalid_argument(
              fmt::format("metric {} clashes with the samples of histogram {}", name, existing));
        }
      }
    }
  }
}

Family<Counter>& Registry::AddCounter(const std::string& name, const std::string& help,
                                      std::vector<std::string> label_names) {
  auto family = std::make_unique<Family<Counter>>(name, help, std::move(label_names));
  std::lock_guard<std::mutex> lock(mu_);
  CheckNew(name);
  Family<Counter>& ref = *family;
  Entry e{Type::kCounter, std::move(family), nullptr, nullptr};
  families_.push_back(std::move(e));
  return ref;
}

Family<Gauge>& Registry::AddGauge(const std::string& name, const std::string& help,
                                  std::vector<std::string> label_names) {
  auto family = std::make_unique<Family<Gauge>>(name, help, std::move(label_names));
  std::lock_guard<std::mutex> lock(mu_);
  CheckNew(name);
  Family<Gauge>& ref = *family;
  Entry e{Type::kGauge, nullptr, std::move(family), nullptr};
  families_.push_back(std::move(e));
  return ref;
}

Family<Histogram>& Registry::AddHistogram(const std::string& name, const std::string& help,
                                          std::vector<double> bounds,
                                          std::vector<std::string> label_names) {
  auto family =
      std::make_unique<Family<Histogram>>(name, help, std::move(label_names), std::move(bounds));
  std::lock_guard<std::mutex> lock(mu_);
  CheckNew(name);
  for (const Entry& e : families_) {
    for (std::string_view suffix : kHistogramSuffixes) {
      if (EntryName(e) == name + std::string(suffix)) {
        throw std::invalid_argument(fmt::format(
            "histogram {} clashes with metric {}, one of its sample names", name, EntryName(e)));
      }
    }
  }
  Family<Histogram>& ref = *family;
  Entry e{Type::kHistogram, nullptr, nullptr, std::move(family)};
  families_.push_back(std::move(e));
  return ref;
}

void Registry::OnScrape(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  on_scrape_.push_back(std::move(fn));
}

std::string Registry::Serialize() const {
  std::lock_guard<std::mutex> scrape(scrape_mu_);
  // Callbacks and families are copied out so that neither runs under mu_: a callback may register
  // a family, and printing a family must not hold up registration. Families are never removed,
  // so the pointers stay valid.
  std::vector<std::function<void()>> callbacks;
  struct Ref {  // one of the three is set
    const Family<Counter>* counter;
    const Family<Gauge>* gauge;
    const Family<Histogram>* histogram;
  };
  std::vector<Ref> refs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    callbacks = on_scrape_;
  }
  for (const auto& fn : callbacks) fn();
  {
    std::lock_guard<std::mutex> lock(mu_);
    refs.reserve(families_.size());
    for (const Entry& e : families_) {
      refs.push_back({e.counter.get(), e.gauge.get(), e.histogram.get()});
    }
  }
  std::string out;
  for (const Ref& r : refs) {
    if (r.counter != nullptr) AppendScalarFamily(*r.counter, "counter", &out);
    if (r.gauge != nullptr) AppendScalarFamily(*r.gauge, "gauge", &out);
    if (r.histogram != nullptr) AppendHistogramFamily(*r.histogram, &out);
  }
  return out;
}

}  // namespace breakeven::metrics
