#include "bench/request_metrics.h"

#include <algorithm>
#include <limits>

namespace breakeven::bench {

ServingMetrics ComputeMetrics(const std::vector<RequestRecord>& records) {
  ServingMetrics m;
  std::vector<double> ttft, tpot, itl, e2e;
  int64_t first_start = std::numeric_limits<int64_t>::max(), last_end = 0;
  for (const RequestRecord& r : records) {
    ++m.requests;
    if (!r.ok || r.token_times_ns.empty()) {
      ++m.failed;
      continue;
    }
    m.input_tokens += r.input_tokens;
    m.output_tokens += r.output_tokens;
    const auto& t = r.token_times_ns;
    first_start = std::min(first_start, r.start_ns);
    last_end = std::max(last_end, t.back());
    ttft.push_back(static_cast<double>(t.front() - r.start_ns) / 1e6);
    e2e.push_back(static_cast<double>(t.back() - r.start_ns) / 1e6);
    if (t.size() > 1) {
      tpot.push_back(static_cast<double>(t.back() - t.front()) / 1e6 /
                     static_cast<double>(t.size() - 1));
      for (size_t i = 1; i < t.size(); ++i)
        itl.push_back(static_cast<double>(t[i] - t[i - 1]) / 1e6);
    }
  }
  if (last_end > first_start) {
    m.duration_s = static_cast<double>(last_end - first_start) / 1e9;
    m.output_tokens_per_s = static_cast<double>(m.output_tokens) / m.duration_s;
    m.total_tokens_per_s = static_cast<double>(m.input_tokens + m.output_tokens) / m.duration_s;
    m.requests_per_s = static_cast<double>(m.requests - m.failed) / m.duration_s;
  }
  m.ttft_ms = Summarize(std::move(ttft));
  m.tpot_ms = Summarize(std::move(tpot));
  m.itl_ms = Summarize(std::move(itl));
  m.e2e_ms = Summarize(std::move(e2e));
  return m;
}

}  // namespace breakeven::bench
