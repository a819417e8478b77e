#include "bench/cost.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace breakeven::bench {

namespace {

constexpr double kInfinity = std::numeric_limits<double>::infinity();

// device-seconds per 1M tokens; 0 when there are no tokens to divide by.
double PerMtok(double device_seconds, int64_t tokens) {
  if (tokens <= 0) return 0;
  return device_seconds / static_cast<double>(tokens) * 1e6;
}

// More replicas than this is treated as infeasible (and keeps the arithmetic in int64_t).
constexpr double kMaxReplicas = 1e12;

// ceil(rate / max_rate), at least 1. A quotient within 1e-9 (relative) above an integer counts as
// that integer, so 1.1 / 0.1 (11.000000000000002 in binary floating point) is 11 replicas, not 12.
// nullopt when the count is absurd (over kMaxReplicas, or not a number).
std::optional<int64_t> ReplicasFor(double rate, double max_rate_per_replica) {
  double q = rate / max_rate_per_replica;
  double replicas = std::ceil(q - q * 1e-9);
  if (!(replicas <= kMaxReplicas)) return std::nullopt;
  return std::max<int64_t>(1, static_cast<int64_t>(replicas));
}

}  // namespace

DeviceSeconds DeviceSecondsPerMtok(int devices, double duration_s, int64_t input_tokens,
                                   int64_t output_tokens) {
  double device_seconds = static_cast<double>(devices) * duration_s;
  DeviceSeconds out;
  out.per_mtok_input = PerMtok(device_seconds, input_tokens);
  out.per_mtok_output = PerMtok(device_seconds, output_tokens);
  out.per_mtok_total = PerMtok(device_seconds, input_tokens + output_tokens);
  return out;
}

// Utilization outside (0, 1]: at or below 0 (or NaN) no paid hour carries any tokens, so a
// million tokens costs +infinity; above 1 is treated as 1, since a device cannot be busier than
// all of the hours it is paid for.
double UsdPerMtok(double device_seconds_per_mtok, double usd_per_device_hour, double utilization) {
  if (!(utilization > 0)) return kInfinity;
  utilization = std::min(utilization, 1.0);
  return device_seconds_per_mtok * usd_per_device_hour / 3600 / utilization;
}

// No tokens at all gives 0 (nothing to divide), as DeviceSecondsPerMtok does.
double BlendedApiUsdPerMtok(const ApiPrice& price, int64_t input_tokens, int64_t output_tokens) {
  int64_t total = input_tokens + output_tokens;
  if (total <= 0) return 0;
  return (static_cast<double>(input_tokens) * price.input_usd_per_mtok +
          static_cast<double>(output_tokens) * price.output_usd_per_mtok) /
         static_cast<double>(total);
}

// A replica that serves nothing (capacity <= 0) costs +infinity per token; a free API
// (api_usd_per_mtok <= 0) is never undercut, so u* and V* are +infinity.
BreakEven ComputeBreakEven(double usd_per_hour, double capacity_tokens_per_s,
                           double api_usd_per_mtok) {
  BreakEven b;
  b.api_usd_per_mtok = api_usd_per_mtok;
  b.self_usd_per_mtok_full_use =
      capacity_tokens_per_s > 0 ? usd_per_hour / (capacity_tokens_per_s * 3600) * 1e6 : kInfinity;
  if (api_usd_per_mtok > 0) {
    b.utilization = b.self_usd_per_mtok_full_use / api_usd_per_mtok;
    b.monthly_tokens = usd_per_hour * kHoursPerMonth / (api_usd_per_mtok / 1e6);
  } else {
    b.utilization = kInfinity;
    b.monthly_tokens = kInfinity;
  }
  b.monthly_capacity_tokens = std::max(0.0, capacity_tokens_per_s) * 3600 * kHoursPerMonth;
  return b;
}

// Candidates that cannot serve at all are left out: max_rate_per_replica <= 0 (or NaN), tp < 1,
// and those that would need more than kMaxReplicas replicas. A rate <= 0 still yields one replica
// per candidate (what the smallest deployment costs), with usd_per_mtok and headroom +infinity and
// no API bill.
std::vector<PlanOption> RankPlans(const std::vector<PlanCandidate>& candidates, double rate,
                                  int64_t input_tokens, int64_t output_tokens,
                                  const std::optional<ApiPrice>& api) {
  std::vector<PlanOption> options;
  const double tokens_per_request = static_cast<double>(input_tokens + output_tokens);
  const bool has_traffic = rate > 0;
  for (const PlanCandidate& c : candidates) {
    if (!(c.max_rate_per_replica > 0) || c.tp < 1) continue;
    std::optional<int64_t> replicas = 1;
    if (has_traffic) replicas = ReplicasFor(rate, c.max_rate_per_replica);
    if (!replicas) continue;
    PlanOption o;
    o.candidate = c;
    o.replicas = *replicas;
    o.usd_per_hour = static_cast<double>(o.replicas) * c.tp * c.usd_per_device_hour;
    const double tokens_per_hour = has_traffic ? rate * tokens_per_request * 3600 : 0;
    o.usd_per_mtok = tokens_per_hour > 0 ? o.usd_per_hour / tokens_per_hour * 1e6 : kInfinity;
    if (api && has_traffic) {
      o.api_usd_per_hour = rate * 3600 *
                           (static_cast<double>(input_tokens) * api->input_usd_per_mtok +
                            static_cast<double>(output_tokens) * api->output_usd_per_mtok) /
                           1e6;
    }
    o.headroom = has_traffic ? static_cast<double>(o.replicas) * c.max_rate_per_replica / rate - 1
                             : kInfinity;
    options.push_back(std::move(o));
  }
  std::stable_sort(options.begin(), options.end(), [](const PlanOption& a, const PlanOption& b) {
    if (a.usd_per_hour != b.usd_per_hour) return a.usd_per_hour < b.usd_per_hour;
    return a.replicas * a.candidate.tp < b.replicas * b.candidate.tp;
  });
  return options;
}

}  // namespace breakeven::bench
