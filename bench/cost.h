// The cost model: from a measured operating point to dollars per million tokens, against API
// prices, and the break-even between the two.
//
// Definitions (docs/cost.md has the worked examples):
//   device-seconds per 1M tokens = devices x duration_s / tokens x 1e6 (price-free, as Modal's
//     Almanac stores "GPU-seconds per 1M tokens"), for input, output and total tokens
//   $/Mtok = device-seconds per Mtok x $/device-hour / 3600 / utilization; utilization in (0, 1]
//     is the share of paid hours that carry this load (a self-hosted device is paid when idle)
//   API $/Mtok for a workload (blended) = (IN x input price + OUT x output price) / (IN + OUT)
//   break-even: a replica costs $/hour whether busy or not and serves at most `capacity` tokens/s
//     utilization u* = self-hosted $/Mtok at full use / API $/Mtok (self-hosting is cheaper above
//       it; above 1 it never is)
//     monthly volume V* = $/hour x 730 / API $ per token (the API bill equals one replica's)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace breakeven::bench {

inline constexpr double kHoursPerMonth = 730;  // 365 x 24 / 12

struct DeviceSeconds {
  double per_mtok_input = 0;
  double per_mtok_output = 0;
  double per_mtok_total = 0;
};

// Zero token counts give 0 for that figure (nothing to divide).
DeviceSeconds DeviceSecondsPerMtok(int devices, double duration_s, int64_t input_tokens,
                                   int64_t output_tokens);

double UsdPerMtok(double device_seconds_per_mtok, double usd_per_device_hour, double utilization);

struct ApiPrice {
  std::string provider;
  std::string model;
  double input_usd_per_mtok = 0;
  double output_usd_per_mtok = 0;
};

double BlendedApiUsdPerMtok(const ApiPrice& price, int64_t input_tokens, int64_t output_tokens);

struct BreakEven {
  double self_usd_per_mtok_full_use = 0;  // at utilization 1
  double api_usd_per_mtok = 0;
  double utilization = 0;              // u*; > 1 means the API is always cheaper
  double monthly_tokens = 0;           // V*, tokens per month for one replica's cost
  double monthly_capacity_tokens = 0;  // what one replica can serve in a month
};

BreakEven ComputeBreakEven(double usd_per_hour, double capacity_tokens_per_s,
                           double api_usd_per_mtok);

// Capacity planning: serve `rate` requests/s of IN:OUT with the cheapest configuration.
struct PlanCandidate {
  std::string device_type;
  int tp = 1;
  double max_rate_per_replica = 0;  // requests/s meeting the SLO (from measured load points)
  double usd_per_device_hour = 0;
  std::string provider;  // where the device price comes from
};

struct PlanOption {
  PlanCandidate candidate;
  int64_t replicas = 0;
  double usd_per_hour = 0;      // replicas x tp x $/device-hour
  double usd_per_mtok = 0;      // at the requested rate, total tokens
  double api_usd_per_hour = 0;  // the API's bill at the same traffic (0 without an API price)
  double headroom = 0;          // replicas x max rate / rate - 1
};

// Feasible options (max rate > 0), cheapest per hour first; ties: fewer devices first.
std::vector<PlanOption> RankPlans(const std::vector<PlanCandidate>& candidates, double rate,
                                  int64_t input_tokens, int64_t output_tokens,
                                  const std::optional<ApiPrice>& api);

}  // namespace breakeven::bench
