#include "bench/request_metrics.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <string>

namespace breakeven::bench {

namespace {

double Ms(int64_t ns) { return static_cast<double>(ns) / 1e6; }

const Summary& MetricSummary(const ServingMetrics& m, const std::string& metric) {
  if (metric == "ttft") return m.ttft_ms;
  if (metric == "tpot") return m.tpot_ms;
  if (metric == "itl") return m.itl_ms;
  return m.e2e_ms;
}

double Pick(const Summary& s, int percentile) {
  switch (percentile) {
    case 0:
      return s.mean;
    case 50:
      return s.p50;
    case 90:
      return s.p90;
    case 95:
      return s.p95;
    default:
      return s.p99;
  }
}

// A request's chunk gaps: the time between consecutive distinct token times.
std::vector<double> ChunkGapsMs(const std::vector<int64_t>& t) {
  std::vector<double> gaps;
  for (size_t i = 1; i < t.size(); ++i) {
    if (t[i] != t[i - 1]) gaps.push_back(Ms(t[i] - t[i - 1]));
  }
  return gaps;
}

// One request's value of an SLO term: its TTFT, E2E or TPOT, or for ITL the term's statistic
// over the request's own chunk gaps (itl_p95: the 95th percentile of its gaps). nullopt when it
// has none (TPOT of a one-token request, ITL of a one-chunk request).
std::optional<double> RequestValue(const RequestRecord& r, const SloTerm& term) {
  const auto& t = r.token_times_ns;
  if (term.metric == "ttft") return Ms(t.front() - r.arrival_ns);
  if (term.metric == "e2e") return Ms(t.back() - r.arrival_ns);
  if (term.metric == "tpot") {
    if (t.size() < 2) return std::nullopt;
    return Ms(t.back() - t.front()) / static_cast<double>(t.size() - 1);
  }
  std::vector<double> gaps = ChunkGapsMs(t);
  if (gaps.empty()) return std::nullopt;
  return Pick(Summarize(std::move(gaps)), term.percentile);
}

}  // namespace

int64_t RequestRecord::chunks() const {
  int64_t n = 0;
  for (size_t i = 0; i < token_times_ns.size(); ++i) {
    if (i == 0 || token_times_ns[i] != token_times_ns[i - 1]) ++n;
  }
  return n;
}

double SloValue(const ServingMetrics& m, const SloTerm& term) {
  return Pick(MetricSummary(m, term.metric), term.percentile);
}

ServingMetrics ComputeMetrics(const std::vector<RequestRecord>& records, const Slo& slo) {
  ServingMetrics m;
  std::vector<double> ttft, tpot, itl, e2e;
  int64_t first_arrival = std::numeric_limits<int64_t>::max();
  int64_t last_token = std::numeric_limits<int64_t>::min();
  int64_t good = 0;
  for (const RequestRecord& r : records) {
    ++m.requests;
    // The point's span covers failed requests too: they arrived and took the engine's time.
    first_arrival = std::min(first_arrival, r.arrival_ns);
    if (!r.token_times_ns.empty()) last_token = std::max(last_token, r.token_times_ns.back());
    if (!r.ok || r.token_times_ns.empty()) {
      ++m.failed;
      continue;
    }
    m.input_tokens += r.input_tokens;
    m.output_tokens += r.output_tokens;
    const auto& t = r.token_times_ns;
    ttft.push_back(Ms(t.front() - r.arrival_ns));
    e2e.push_back(Ms(t.back() - r.arrival_ns));
    if (t.size() > 1) tpot.push_back(Ms(t.back() - t.front()) / static_cast<double>(t.size() - 1));
    std::vector<double> gaps = ChunkGapsMs(t);
    itl.insert(itl.end(), gaps.begin(), gaps.end());
    bool meets = true;
    for (const SloTerm& term : slo.terms) {
      std::optional<double> v = RequestValue(r, term);
      if (v && *v > term.limit_ms) meets = false;
    }
    good += meets;
  }
  if (last_token > first_arrival) {
    m.duration_s = static_cast<double>(last_token - first_arrival) / 1e9;
    m.output_tokens_per_s = static_cast<double>(m.output_tokens) / m.duration_s;
    m.total_tokens_per_s = static_cast<double>(m.input_tokens + m.output_tokens) / m.duration_s;
    m.requests_per_s = static_cast<double>(m.requests - m.failed) / m.duration_s;
    m.goodput_requests_per_s = static_cast<double>(good) / m.duration_s;
  }
  m.slo_attainment =
      m.requests > 0 ? static_cast<double>(good) / static_cast<double>(m.requests) : 0;
  m.ttft_ms = Summarize(std::move(ttft));
  m.tpot_ms = Summarize(std::move(tpot));
  m.itl_ms = Summarize(std::move(itl));
  m.e2e_ms = Summarize(std::move(e2e));
  // A point meets the SLO when it completed something and failed nothing.
  m.meets_slo = m.failed == 0 && m.requests > 0;
  for (const SloTerm& term : slo.terms) {
    if (SloValue(m, term) > term.limit_ms) m.meets_slo = false;
  }
  return m;
}

}  // namespace breakeven::bench
