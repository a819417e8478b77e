#include "bench/load_plan.h"

#include <fmt/ranges.h>

#include <charconv>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

namespace breakeven::bench {

namespace {

constexpr LoadPattern kPatterns[] = {LoadPattern::kSync, LoadPattern::kConcurrency,
                                     LoadPattern::kRate, LoadPattern::kSweep,
                                     LoadPattern::kSloSearch};
constexpr std::string_view kMetrics[] = {"ttft", "tpot", "itl", "e2e"};
constexpr int kPercentiles[] = {50, 90, 95, 99};

std::string_view Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// Milliseconds with at most three decimals, trailing zeros dropped: 500, 0.5, 12.345.
std::string FormatMs(double ms) {
  std::string s = fmt::format("{:.3f}", ms);
  size_t dot = s.find('.');
  if (dot != std::string::npos) {
    size_t last = s.find_last_not_of('0');
    s.erase(last == dot ? dot : last + 1);
  }
  if (s == "-0") s = "0";
  return s;
}

// "500ms", "0.5s", "2s" in milliseconds, rounded to the microsecond so that ToString (three
// decimals of ms) and ParseSlo are inverse.
std::optional<double> ParseDurationMs(std::string_view text) {
  double scale;
  if (text.size() > 2 && text.substr(text.size() - 2) == "ms") {
    scale = 1;
    text.remove_suffix(2);
  } else if (text.size() > 1 && text.back() == 's') {
    scale = 1000;
    text.remove_suffix(1);
  } else {
    return std::nullopt;
  }
  if (text.empty() ||
      !(std::isdigit(static_cast<unsigned char>(text.front())) || text.front() == '.')) {
    return std::nullopt;  // no sign, no "inf"
  }
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v)) {
    return std::nullopt;
  }
  return std::round(v * scale * 1000) / 1000;
}

// One "metric_pNN=DURATION" term. Errors are the problem only; ParseSlo adds the context.
Result<SloTerm> ParseSloTerm(std::string_view term) {
  size_t eq = term.find('=');
  if (eq == std::string_view::npos) {
    return InvalidArgument("'{}' is not metric_pNN=DURATION or metric_mean=DURATION", term);
  }
  std::string_view key = Trim(term.substr(0, eq));
  std::string_view value = Trim(term.substr(eq + 1));
  size_t us = key.rfind('_');
  if (us == std::string_view::npos) {
    return InvalidArgument("'{}' is not metric_pNN or metric_mean (as ttft_p95)", key);
  }
  SloTerm t;
  t.metric = std::string(key.substr(0, us));
  if (std::find(std::begin(kMetrics), std::end(kMetrics), t.metric) == std::end(kMetrics)) {
    return InvalidArgument("'{}' is not a metric ({})", t.metric, fmt::join(kMetrics, ", "));
  }
  std::string_view stat = key.substr(us + 1);
  if (stat == "mean") {
    t.percentile = 0;
  } else {
    t.percentile = -1;
    for (int p : kPercentiles) {
      if (stat == fmt::format("p{}", p)) t.percentile = p;
    }
    if (t.percentile < 0) {
      return InvalidArgument("'{}' is not a statistic (p50, p90, p95, p99, mean)", stat);
    }
  }
  std::optional<double> ms = ParseDurationMs(value);
  if (!ms) return InvalidArgument("'{}' is not a duration like 500ms", value);
  if (*ms <= 0) return InvalidArgument("'{}': the limit must be positive", value);
  t.limit_ms = *ms;
  return t;
}

Status PositiveInt(std::string_view field, int64_t v) {
  if (v < 1) return InvalidArgument("{}: must be at least 1 (got {})", field, v);
  return Status::Ok();
}

// Reading the JSON: each getter names the field (as "plan.duration_s") on a wrong or absent value.
using Json = nlohmann::json;

Result<const Json*> Member(const Json& obj, std::string_view parent, std::string_view key) {
  auto it = obj.find(key);
  if (it == obj.end()) {
    return InvalidArgument("{}{}{}: missing", parent, parent.empty() ? "" : ".", key);
  }
  return &*it;
}

std::string Path(std::string_view parent, std::string_view key) {
  return parent.empty() ? std::string(key) : fmt::format("{}.{}", parent, key);
}

Result<int64_t> AsInt(const Json& j, const std::string& path) {
  if (j.is_number_unsigned()) {
    if (j.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return InvalidArgument("{}: {} is out of range", path, j.dump());
    }
    return static_cast<int64_t>(j.get<uint64_t>());
  }
  if (j.is_number_integer()) return j.get<int64_t>();
  return InvalidArgument("{}: must be an integer (got {})", path, j.dump());
}

Result<int> AsInt32(const Json& j, const std::string& path) {
  BE_ASSIGN_OR_RETURN(int64_t v, AsInt(j, path));
  if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max()) {
    return InvalidArgument("{}: {} is out of range", path, v);
  }
  return static_cast<int>(v);
}

Result<double> AsDouble(const Json& j, const std::string& path) {
  if (!j.is_number()) return InvalidArgument("{}: must be a number (got {})", path, j.dump());
  return j.get<double>();
}

Result<std::string> AsString(const Json& j, const std::string& path) {
  if (!j.is_string()) return InvalidArgument("{}: must be a string (got {})", path, j.dump());
  return j.get<std::string>();
}

template <typename T, typename F>
Status ReadField(const Json& obj, std::string_view parent, std::string_view key, F convert,
                 T& out) {
  BE_ASSIGN_OR_RETURN(const Json* j, Member(obj, parent, key));
  BE_ASSIGN_OR_RETURN(out, convert(*j, Path(parent, key)));
  return Status::Ok();
}

template <typename T, typename F>
Status ReadList(const Json& obj, std::string_view parent, std::string_view key, F convert,
                std::vector<T>& out) {
  BE_ASSIGN_OR_RETURN(const Json* j, Member(obj, parent, key));
  std::string path = Path(parent, key);
  if (!j->is_array()) return InvalidArgument("{}: must be a list (got {})", path, j->dump());
  out.clear();
  for (size_t i = 0; i < j->size(); ++i) {
    BE_ASSIGN_OR_RETURN(T v, convert((*j)[i], fmt::format("{}[{}]", path, i)));
    out.push_back(v);
  }
  return Status::Ok();
}

// Validate's errors begin with the field ("duration_s: ..."); this makes it "plan.duration_s: ...".
Status Prefixed(std::string_view parent, const Status& s) {
  if (s.ok()) return s;
  return Status(s.code(), fmt::format("{}{}", parent, s.message()));
}

Status DecodeWorkload(const Json& j, WorkloadSpec& w) {
  if (!j.is_object()) return InvalidArgument("workload: must be an object (got {})", j.dump());
  BE_RETURN_IF_ERROR(ReadField(j, "workload", "name", AsString, w.name));
  BE_RETURN_IF_ERROR(ReadField(j, "workload", "input_tokens", AsInt, w.input_tokens));
  BE_RETURN_IF_ERROR(ReadField(j, "workload", "output_tokens", AsInt, w.output_tokens));
  BE_RETURN_IF_ERROR(ReadField(j, "workload", "prefix_tokens", AsInt, w.prefix_tokens));
  BE_RETURN_IF_ERROR(ReadField(j, "workload", "samples", AsInt32, w.samples));
  return Prefixed("workload.", w.Validate());
}

Status DecodePlan(const Json& j, LoadPlan& p) {
  if (!j.is_object()) return InvalidArgument("plan: must be an object (got {})", j.dump());
  std::string pattern;
  BE_RETURN_IF_ERROR(ReadField(j, "plan", "pattern", AsString, pattern));
  std::optional<LoadPattern> parsed = ParseLoadPattern(pattern);
  if (!parsed) {
    return InvalidArgument(
        "plan.pattern: '{}' is not one of sync, concurrency, rate, sweep, "
        "slo-search",
        pattern);
  }
  p.pattern = *parsed;
  BE_RETURN_IF_ERROR(ReadList(j, "plan", "concurrency", AsInt, p.concurrency));
  BE_RETURN_IF_ERROR(ReadList(j, "plan", "rates", AsDouble, p.rates));
  BE_RETURN_IF_ERROR(ReadField(j, "plan", "sweep_points", AsInt32, p.sweep_points));
  BE_RETURN_IF_ERROR(ReadField(j, "plan", "search_steps", AsInt32, p.search_steps));
  BE_RETURN_IF_ERROR(ReadField(j, "plan", "warmup_s", AsDouble, p.warmup_s));
  BE_RETURN_IF_ERROR(ReadField(j, "plan", "duration_s", AsDouble, p.duration_s));
  BE_RETURN_IF_ERROR(ReadField(j, "plan", "max_requests", AsInt, p.max_requests));
  BE_RETURN_IF_ERROR(ReadField(j, "plan", "max_concurrency", AsInt, p.max_concurrency));
  return Prefixed("plan.", p.Validate());
}

}  // namespace

std::string_view LoadPatternName(LoadPattern p) {
  switch (p) {
    case LoadPattern::kSync:
      return "sync";
    case LoadPattern::kConcurrency:
      return "concurrency";
    case LoadPattern::kRate:
      return "rate";
    case LoadPattern::kSweep:
      return "sweep";
    case LoadPattern::kSloSearch:
      return "slo-search";
  }
  return "unknown";
}

std::optional<LoadPattern> ParseLoadPattern(std::string_view name) {
  for (LoadPattern p : kPatterns) {
    if (LoadPatternName(p) == name) return p;
  }
  return std::nullopt;
}

Status LoadPlan::Validate() const {
  if (ParseLoadPattern(LoadPatternName(pattern)) != pattern) {
    return InvalidArgument("pattern: {} is not a load pattern", static_cast<int>(pattern));
  }
  if (pattern == LoadPattern::kConcurrency && concurrency.empty()) {
    return InvalidArgument("concurrency: the concurrency pattern needs at least one level");
  }
  for (size_t i = 0; i < concurrency.size(); ++i) {
    if (concurrency[i] < 1) {
      return InvalidArgument("concurrency[{}]: must be at least 1 (got {})", i, concurrency[i]);
    }
  }
  if (pattern == LoadPattern::kRate && rates.empty()) {
    return InvalidArgument("rates: the rate pattern needs at least one rate");
  }
  for (size_t i = 0; i < rates.size(); ++i) {
    if (!(rates[i] > 0) || !std::isfinite(rates[i])) {
      return InvalidArgument("rates[{}]: must be a positive number of requests/s (got {})", i,
                             rates[i]);
    }
  }
  BE_RETURN_IF_ERROR(PositiveInt("sweep_points", sweep_points));
  BE_RETURN_IF_ERROR(PositiveInt("search_steps", search_steps));
  if (!(warmup_s >= 0) || !std::isfinite(warmup_s)) {
    return InvalidArgument("warmup_s: must be at least 0 (got {})", warmup_s);
  }
  if (!(duration_s > 0) || !std::isfinite(duration_s)) {
    return InvalidArgument("duration_s: must be positive (got {})", duration_s);
  }
  BE_RETURN_IF_ERROR(PositiveInt("max_requests", max_requests));
  if (max_requests > kMaxRequestsPerPoint) {
    // A point's per-request records travel to the scheduler in one frame.
    return InvalidArgument("max_requests: at most {} per load point (got {})", kMaxRequestsPerPoint,
                           max_requests);
  }
  BE_RETURN_IF_ERROR(PositiveInt("max_concurrency", max_concurrency));
  return Status::Ok();
}

std::string SloTerm::Name() const {
  if (percentile == 0) return metric + "_mean";
  return fmt::format("{}_p{}", metric, percentile);
}

std::string Slo::ToString() const {
  std::string out;
  for (const SloTerm& t : terms) {
    if (!out.empty()) out += ',';
    out += fmt::format("{}={}ms", t.Name(), FormatMs(t.limit_ms));
  }
  return out;
}

Result<Slo> ParseSlo(std::string_view text) {
  Slo slo;
  if (Trim(text).empty()) return slo;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view term = Trim(text.substr(start, comma - start));
    // Name the term too when the text has several.
    std::string in = term == Trim(text) ? "" : fmt::format(" (in '{}')", term);
    if (term.empty()) return InvalidArgument("slo '{}': empty term between commas", text);
    Result<SloTerm> t = ParseSloTerm(term);
    if (!t.ok()) return InvalidArgument("slo '{}': {}{}", text, t.status().message(), in);
    for (const SloTerm& seen : slo.terms) {
      if (seen.Name() == t->Name()) {
        return InvalidArgument("slo '{}': {} is given twice", text, t->Name());
      }
    }
    slo.terms.push_back(*std::move(t));
    start = comma + 1;
  }
  return slo;
}

std::string EncodeLoadJson(const RunLoad& load) {
  nlohmann::ordered_json j;
  const WorkloadSpec& w = load.workload;
  j["workload"] = {{"name", w.name},
                   {"input_tokens", w.input_tokens},
                   {"output_tokens", w.output_tokens},
                   {"prefix_tokens", w.prefix_tokens},
                   {"samples", w.samples}};
  const LoadPlan& p = load.plan;
  j["plan"] = {{"pattern", LoadPatternName(p.pattern)},
               {"concurrency", p.concurrency},
               {"rates", p.rates},
               {"sweep_points", p.sweep_points},
               {"search_steps", p.search_steps},
               {"warmup_s", p.warmup_s},
               {"duration_s", p.duration_s},
               {"max_requests", p.max_requests},
               {"max_concurrency", p.max_concurrency}};
  j["slo"] = load.slo.ToString();
  j["seed"] = load.seed;
  return j.dump();
}

Result<RunLoad> DecodeLoadJson(std::string_view json) {
  Json j;
  try {
    j = Json::parse(json);
  } catch (const Json::exception& e) {
    return InvalidArgument("load json: {}", e.what());
  }
  if (!j.is_object()) return InvalidArgument("load json: must be an object (got {})", j.dump());
  RunLoad load;
  Status s = [&]() -> Status {
    BE_ASSIGN_OR_RETURN(const Json* workload, Member(j, "", "workload"));
    BE_RETURN_IF_ERROR(DecodeWorkload(*workload, load.workload));
    BE_ASSIGN_OR_RETURN(const Json* plan, Member(j, "", "plan"));
    BE_RETURN_IF_ERROR(DecodePlan(*plan, load.plan));
    std::string slo;
    BE_RETURN_IF_ERROR(ReadField(j, "", "slo", AsString, slo));
    BE_ASSIGN_OR_RETURN(load.slo, ParseSlo(slo));  // its errors begin "slo '...'"
    BE_ASSIGN_OR_RETURN(const Json* seed, Member(j, "", "seed"));
    if (!seed->is_number_unsigned()) {
      return InvalidArgument("seed: must be a non-negative integer (got {})", seed->dump());
    }
    load.seed = seed->get<uint64_t>();
    return Status::Ok();
  }();
  if (!s.ok()) return s.WithContext("load json");
  return load;
}

}  // namespace breakeven::bench
