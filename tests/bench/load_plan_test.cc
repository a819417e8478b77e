// Load patterns, plan validation, SLO text and the run's load JSON.
#include "bench/load_plan.h"

#include <gtest/gtest.h>

#include <limits>
#include <nlohmann/json.hpp>

namespace breakeven::bench {
namespace {

TEST(LoadPattern, NamesRoundTrip) {
  struct Row {
    LoadPattern p;
    const char* name;
  } table[] = {{LoadPattern::kSync, "sync"},
               {LoadPattern::kConcurrency, "concurrency"},
               {LoadPattern::kRate, "rate"},
               {LoadPattern::kSweep, "sweep"},
               {LoadPattern::kSloSearch, "slo-search"}};
  for (const Row& row : table) {
    EXPECT_EQ(LoadPatternName(row.p), row.name);
    EXPECT_EQ(ParseLoadPattern(row.name), row.p) << row.name;
  }
  for (const char* bad : {"", "swep", "Sweep", "slo_search", "sync "}) {
    EXPECT_EQ(ParseLoadPattern(bad), std::nullopt) << bad;
  }
}

TEST(LoadPlan, DefaultsAreValid) {
  LoadPlan plan;
  EXPECT_EQ(plan.pattern, LoadPattern::kSweep);
  EXPECT_TRUE(plan.Validate().ok()) << plan.Validate().message();
}

TEST(LoadPlan, ValidateNamesTheField) {
  struct Row {
    void (*mutate)(LoadPlan&);
    const char* message;  // empty: valid
  } table[] = {
      {[](LoadPlan& p) { p.pattern = LoadPattern::kConcurrency; },
       "concurrency: the concurrency pattern needs at least one level"},
      {[](LoadPlan& p) {
         p.pattern = LoadPattern::kConcurrency;
         p.concurrency = {1, 4};
       },
       ""},
      {[](LoadPlan& p) {
         p.pattern = LoadPattern::kConcurrency;
         p.concurrency = {1, 0};
       },
       "concurrency[1]: must be at least 1 (got 0)"},
      {[](LoadPlan& p) { p.pattern = LoadPattern::kRate; },
       "rates: the rate pattern needs at least one rate"},
      {[](LoadPlan& p) {
         p.pattern = LoadPattern::kRate;
         p.rates = {0.5, 2};
       },
       ""},
      {[](LoadPlan& p) {
         p.pattern = LoadPattern::kRate;
         p.rates = {0};
       },
       "rates[0]: must be a positive number of requests/s (got 0)"},
      {[](LoadPlan& p) {
         p.rates = {1, std::numeric_limits<double>::infinity()};
       },
       "rates[1]: must be a positive number of requests/s (got inf)"},
      {[](LoadPlan& p) { p.sweep_points = 0; }, "sweep_points: must be at least 1 (got 0)"},
      {[](LoadPlan& p) { p.search_steps = 0; }, "search_steps: must be at least 1 (got 0)"},
      {[](LoadPlan& p) { p.warmup_s = 0; }, ""},
      {[](LoadPlan& p) { p.warmup_s = -1; }, "warmup_s: must be at least 0 (got -1)"},
      {[](LoadPlan& p) { p.duration_s = 0; }, "duration_s: must be positive (got 0)"},
      {[](LoadPlan& p) { p.duration_s = std::nan(""); }, "duration_s: must be positive (got nan)"},
      {[](LoadPlan& p) { p.max_requests = 0; }, "max_requests: must be at least 1 (got 0)"},
      {[](LoadPlan& p) { p.max_concurrency = -2; }, "max_concurrency: must be at least 1 (got -2)"},
  };
  for (size_t i = 0; i < std::size(table); ++i) {
    LoadPlan plan;
    table[i].mutate(plan);
    Status s = plan.Validate();
    if (std::string_view(table[i].message).empty()) {
      EXPECT_TRUE(s.ok()) << "row " << i << ": " << s.message();
    } else {
      EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << "row " << i;
      EXPECT_EQ(s.message(), table[i].message) << "row " << i;
    }
  }
}

TEST(SloTerm, Name) {
  EXPECT_EQ((SloTerm{"ttft", 95, 500}).Name(), "ttft_p95");
  EXPECT_EQ((SloTerm{"itl", 50, 1}).Name(), "itl_p50");
  EXPECT_EQ((SloTerm{"e2e", 0, 1}).Name(), "e2e_mean");
}

TEST(Slo, ToStringTrimsToThreeDecimals) {
  Slo slo;
  slo.terms = {{"ttft", 95, 500},   {"tpot", 95, 50},   {"itl", 99, 0.5},
               {"e2e", 0, 12.3456}, {"ttft", 50, 1000}, {"tpot", 90, 0.25}};
  EXPECT_EQ(slo.ToString(),
            "ttft_p95=500ms,tpot_p95=50ms,itl_p99=0.5ms,e2e_mean=12.346ms,ttft_p50=1000ms,"
            "tpot_p90=0.25ms");
  EXPECT_EQ(Slo{}.ToString(), "");
}

TEST(ParseSlo, GoodTexts) {
  struct Row {
    const char* text;
    std::vector<SloTerm> want;
  } table[] = {
      {"", {}},
      {"   ", {}},
      {"ttft_p95=500ms", {{"ttft", 95, 500}}},
      {"ttft_p95=500ms,tpot_p95=50ms", {{"ttft", 95, 500}, {"tpot", 95, 50}}},
      {" ttft_p99 = 0.5s ,  e2e_mean=2s ", {{"ttft", 99, 500}, {"e2e", 0, 2000}}},
      {"itl_p50=0.25ms,tpot_p90=1.5s", {{"itl", 50, 0.25}, {"tpot", 90, 1500}}},
      {"e2e_p95=2s", {{"e2e", 95, 2000}}},
      {"ttft_mean=200ms", {{"ttft", 0, 200}}},
      {"ttft_p95=0.1s", {{"ttft", 95, 100}}},  // exactly 100, not 100.00000000000001
  };
  for (const Row& row : table) {
    SCOPED_TRACE(row.text);
    Result<Slo> r = ParseSlo(row.text);
    ASSERT_TRUE(r.ok()) << r.status().message();
    ASSERT_EQ(r->terms.size(), row.want.size());
    EXPECT_EQ(r->empty(), row.want.empty());
    for (size_t i = 0; i < row.want.size(); ++i) {
      EXPECT_EQ(r->terms[i].metric, row.want[i].metric);
      EXPECT_EQ(r->terms[i].percentile, row.want[i].percentile);
      EXPECT_EQ(r->terms[i].limit_ms, row.want[i].limit_ms);
    }
  }
}

TEST(ParseSlo, BadTextsQuoteTheTextAndTheTerm) {
  struct Row {
    const char* text;
    const char* message;
  } table[] = {
      {"ttft_p95=fast", "slo 'ttft_p95=fast': 'fast' is not a duration like 500ms"},
      {"ttft_p95=500", "slo 'ttft_p95=500': '500' is not a duration like 500ms"},
      {"ttft_p95=500us", "slo 'ttft_p95=500us': '500us' is not a duration like 500ms"},
      {"ttft_p95=-5ms", "slo 'ttft_p95=-5ms': '-5ms' is not a duration like 500ms"},
      {"ttft_p95=infms", "slo 'ttft_p95=infms': 'infms' is not a duration like 500ms"},
      {"ttft_p95=ms", "slo 'ttft_p95=ms': 'ms' is not a duration like 500ms"},
      {"ttft_p95=", "slo 'ttft_p95=': '' is not a duration like 500ms"},
      {"ttft_p95=0ms", "slo 'ttft_p95=0ms': '0ms': the limit must be positive"},
      {"ttfb_p95=5ms", "slo 'ttfb_p95=5ms': 'ttfb' is not a metric (ttft, tpot, itl, e2e)"},
      {"ttft_p96=5ms", "slo 'ttft_p96=5ms': 'p96' is not a statistic (p50, p90, p95, p99, mean)"},
      {"ttft=5ms", "slo 'ttft=5ms': 'ttft' is not metric_pNN or metric_mean (as ttft_p95)"},
      {"ttft_p95", "slo 'ttft_p95': 'ttft_p95' is not metric_pNN=DURATION or metric_mean=DURATION"},
      {"ttft_p95=500ms,tpot_p95=fast",
       "slo 'ttft_p95=500ms,tpot_p95=fast': 'fast' is not a duration like 500ms (in "
       "'tpot_p95=fast')"},
      {"ttft_p95=500ms,,tpot_p95=5ms",
       "slo 'ttft_p95=500ms,,tpot_p95=5ms': empty term between commas"},
      {"ttft_p95=500ms,", "slo 'ttft_p95=500ms,': empty term between commas"},
      {"ttft_p95=500ms,ttft_p95=1s", "slo 'ttft_p95=500ms,ttft_p95=1s': ttft_p95 is given twice"},
  };
  for (const Row& row : table) {
    Result<Slo> r = ParseSlo(row.text);
    ASSERT_FALSE(r.ok()) << row.text;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(r.status().message(), row.message);
  }
}

TEST(ParseSlo, ToStringRoundTrips) {
  for (const char* text : {"ttft_p95=500ms,tpot_p95=50ms", "itl_p99=0.5ms,e2e_mean=2000ms",
                           "ttft_p50=0.001ms", "tpot_p90=12.345ms"}) {
    Result<Slo> r = ParseSlo(text);
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->ToString(), text);
  }
  // A text in seconds comes back in milliseconds, and parses to the same terms.
  Result<Slo> a = ParseSlo("ttft_p95=0.5s, e2e_mean = 2s");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->ToString(), "ttft_p95=500ms,e2e_mean=2000ms");
  Result<Slo> b = ParseSlo(a->ToString());
  ASSERT_TRUE(b.ok());
  ASSERT_EQ(b->terms.size(), 2u);
  EXPECT_EQ(b->terms[0].limit_ms, a->terms[0].limit_ms);
  EXPECT_EQ(b->terms[1].limit_ms, a->terms[1].limit_ms);
}

RunLoad FullLoad() {
  RunLoad load;
  load.workload.name = "samples";
  load.workload.input_tokens = 2176;
  load.workload.output_tokens = 256;
  load.workload.prefix_tokens = 2048;
  load.workload.samples = 8;
  load.plan.pattern = LoadPattern::kRate;
  load.plan.concurrency = {1, 4, 16};
  load.plan.rates = {0.1, 2.5, 1e-3};
  load.plan.sweep_points = 7;
  load.plan.search_steps = 9;
  load.plan.warmup_s = 0.3;
  load.plan.duration_s = 12.75;
  load.plan.max_requests = 5000;
  load.plan.max_concurrency = 128;
  load.slo = *ParseSlo("ttft_p95=0.5s,tpot_p99=33.333ms,e2e_mean=2s");
  load.seed = std::numeric_limits<uint64_t>::max() - 1;
  return load;
}

TEST(LoadJson, RoundTripsEveryField) {
  const RunLoad in = FullLoad();
  std::string json = EncodeLoadJson(in);
  Result<RunLoad> r = DecodeLoadJson(json);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const RunLoad& out = *r;
  EXPECT_EQ(out.workload.name, in.workload.name);
  EXPECT_EQ(out.workload.input_tokens, in.workload.input_tokens);
  EXPECT_EQ(out.workload.output_tokens, in.workload.output_tokens);
  EXPECT_EQ(out.workload.prefix_tokens, in.workload.prefix_tokens);
  EXPECT_EQ(out.workload.samples, in.workload.samples);
  EXPECT_EQ(out.plan.pattern, in.plan.pattern);
  EXPECT_EQ(out.plan.concurrency, in.plan.concurrency);
  EXPECT_EQ(out.plan.rates, in.plan.rates);  // bit for bit
  EXPECT_EQ(out.plan.sweep_points, in.plan.sweep_points);
  EXPECT_EQ(out.plan.search_steps, in.plan.search_steps);
  EXPECT_EQ(out.plan.warmup_s, in.plan.warmup_s);
  EXPECT_EQ(out.plan.duration_s, in.plan.duration_s);
  EXPECT_EQ(out.plan.max_requests, in.plan.max_requests);
  EXPECT_EQ(out.plan.max_concurrency, in.plan.max_concurrency);
  ASSERT_EQ(out.slo.terms.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(out.slo.terms[i].metric, in.slo.terms[i].metric);
    EXPECT_EQ(out.slo.terms[i].percentile, in.slo.terms[i].percentile);
    EXPECT_EQ(out.slo.terms[i].limit_ms, in.slo.terms[i].limit_ms);
  }
  EXPECT_EQ(out.seed, in.seed);
  EXPECT_EQ(EncodeLoadJson(out), json);
}

TEST(LoadJson, HasTheDocumentedShape) {
  nlohmann::json j = nlohmann::json::parse(EncodeLoadJson(FullLoad()));
  EXPECT_EQ(j["workload"]["name"], "samples");
  EXPECT_EQ(j["workload"]["samples"], 8);
  EXPECT_EQ(j["workload"]["prefix_tokens"], 2048);
  EXPECT_EQ(j["plan"]["pattern"], "rate");
  EXPECT_EQ(j["plan"]["concurrency"], nlohmann::json::array({1, 4, 16}));
  EXPECT_EQ(j["plan"]["duration_s"], 12.75);
  EXPECT_EQ(j["plan"]["max_concurrency"], 128);
  EXPECT_EQ(j["slo"], "ttft_p95=500ms,tpot_p99=33.333ms,e2e_mean=2000ms");
  EXPECT_EQ(j["seed"], std::numeric_limits<uint64_t>::max() - 1);
  EXPECT_EQ(j.size(), 4u);
  EXPECT_EQ(j["workload"].size(), 5u);
  EXPECT_EQ(j["plan"].size(), 9u);
}

TEST(LoadJson, EmptySloAndDefaultPlanRoundTrip) {
  RunLoad in;
  in.workload = FullLoad().workload;
  Result<RunLoad> r = DecodeLoadJson(EncodeLoadJson(in));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->slo.empty());
  EXPECT_EQ(r->plan.pattern, LoadPattern::kSweep);
  EXPECT_EQ(r->seed, 0u);
}

TEST(LoadJson, BadJsonNamesTheField) {
  using Json = nlohmann::json;
  struct Row {
    void (*mutate)(Json&);
    const char* message;
  } table[] = {
      {[](Json& j) { j["plan"].erase("duration_s"); }, "load json: plan.duration_s: missing"},
      {[](Json& j) { j["plan"]["duration_s"] = 0; },
       "load json: plan.duration_s: must be positive (got 0)"},
      {[](Json& j) { j["plan"]["duration_s"] = "10"; },
       "load json: plan.duration_s: must be a number (got \"10\")"},
      {[](Json& j) { j["plan"]["pattern"] = "swep"; },
       "load json: plan.pattern: 'swep' is not one of sync, concurrency, rate, sweep, slo-search"},
      {[](Json& j) { j["plan"]["rates"] = Json::array(); },
       "load json: plan.rates: the rate pattern needs at least one rate"},
      {[](Json& j) {
         j["plan"]["concurrency"] = {1, 2.5};
       },
       "load json: plan.concurrency[1]: must be an integer (got 2.5)"},
      {[](Json& j) { j["plan"]["sweep_points"] = 1e12; },
       "load json: plan.sweep_points: must be an integer (got 1000000000000.0)"},
      {[](Json& j) { j["plan"]["search_steps"] = 10000000000; },
       "load json: plan.search_steps: 10000000000 is out of range"},
      {[](Json& j) { j["workload"]["input_tokens"] = "abc"; },
       "load json: workload.input_tokens: must be an integer (got \"abc\")"},
      {[](Json& j) { j["workload"]["prefix_tokens"] = 4096; },
       "load json: workload.prefix_tokens: must be less than input_tokens 2176 (got 4096)"},
      {[](Json& j) { j["workload"]["samples"] = 0; },
       "load json: workload.samples: must be at least 1 (got 0)"},
      {[](Json& j) { j.erase("workload"); }, "load json: workload: missing"},
      {[](Json& j) { j["workload"] = 3; }, "load json: workload: must be an object (got 3)"},
      {[](Json& j) { j["slo"] = "ttft_p95=fast"; },
       "load json: slo 'ttft_p95=fast': 'fast' is not a duration like 500ms"},
      {[](Json& j) { j["seed"] = -1; }, "load json: seed: must be a non-negative integer (got -1)"},
      {[](Json& j) { j = Json::array(); }, "load json: must be an object (got [])"},
  };
  for (size_t i = 0; i < std::size(table); ++i) {
    Json j = Json::parse(EncodeLoadJson(FullLoad()));
    table[i].mutate(j);
    Result<RunLoad> r = DecodeLoadJson(j.dump());
    ASSERT_FALSE(r.ok()) << "row " << i;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(r.status().message(), table[i].message) << "row " << i;
  }
}

TEST(LoadJson, NotJsonAtAll) {
  Result<RunLoad> r = DecodeLoadJson("{\"workload\": ");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().rfind("load json: ", 0), 0u) << r.status().message();
  EXPECT_NE(r.status().message().find("parse error"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace breakeven::bench
