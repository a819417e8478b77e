// The queries behind `breakeven results`, `compare`, `plan` and `prices`, on a database built by
// hand: every expected figure below is worked out in the comments from the fixture's rows, and
// checked again against bench/cost.h, so the SQL and the C++ cost model cannot drift apart.
#include "scheduler/queries.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cmath>
#include <optional>
#include <set>

#include "bench/cost.h"
#include "db/embedded.h"
#include "db/migrate.h"
#include "db/price_store.h"
#include "tests/support/process.h"

namespace breakeven::scheduler {
namespace {

using Args = std::map<std::string, std::string>;

constexpr const char* kH100 = "NVIDIA H100 80GB HBM3";
constexpr const char* kA100 = "NVIDIA A100 80GB PCIe";
constexpr const char* kL4 = "NVIDIA L4";  // no price in the fixture's catalog

// Whether `text` contains `part`; the failure message shows both.
::testing::AssertionResult Has(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << text << "' does not contain '" << part << "'";
}

// `expected` within a relative 1e-9.
::testing::AssertionResult Near(double actual, double expected) {
  if (std::abs(actual - expected) <= 1e-9 * std::max(1.0, std::abs(expected))) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << actual << " != " << expected;
}

int Col(const v1::Table& t, const std::string& name) {
  for (int i = 0; i < t.columns_size(); ++i) {
    if (t.columns(i) == name) return i;
  }
  ADD_FAILURE() << "no column " << name;
  return 0;
}

bool IsNull(const v1::Table& t, int row, const std::string& column) {
  return t.rows(row).cells(Col(t, column)).value_case() == v1::Cell::VALUE_NOT_SET;
}

// A number cell (integer or real); fails the test on null or text.
double Num(const v1::Table& t, int row, const std::string& column) {
  const v1::Cell& c = t.rows(row).cells(Col(t, column));
  if (c.value_case() == v1::Cell::kNumber) return c.number();
  if (c.value_case() == v1::Cell::kInteger) return static_cast<double>(c.integer());
  ADD_FAILURE() << "row " << row << " column " << column << " is not a number";
  return NAN;
}

std::string Text(const v1::Table& t, int row, const std::string& column) {
  return t.rows(row).cells(Col(t, column)).text();
}

// The row with this device type and tp (and workload, when the table has one); -1 if none.
int RowOf(const v1::Table& t, const std::string& device, int tp,
          const std::string& workload = "512/512") {
  for (int r = 0; r < t.rows_size(); ++r) {
    if (Text(t, r, "device_type") != device || Num(t, r, "tp") != tp) continue;
    bool has_workload = false;
    for (const std::string& c : t.columns()) has_workload |= c == "workload";
    if (has_workload && Text(t, r, "workload") != workload) continue;
    return r;
  }
  return -1;
}

std::string AllNotes(const v1::Table& t) {
  std::string out;
  for (const std::string& n : t.notes()) out += n + "\n";
  return out;
}

// One load point, from which the stored figures are derived as the benchmark derives them.
struct Point {
  std::string kind;
  double target = 0;
  double requests_per_s = 0;
  double ttft_p95_ms = 0;
  double tpot_p95_ms = 0;
  int devices = 0;  // 0: the run's tp (one replica)
};

class QueriesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = db::Database::Open(dir_.path() + "/queries.db");
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(db).value();
    ASSERT_TRUE(db::Migrate(*db_).ok());
    Exec(
        "DELETE FROM gpu_prices; DELETE FROM api_prices;"
        "INSERT OR REPLACE INTO settings (key, value) VALUES ('cpu_usd_per_hour', '0.10');"
        "INSERT INTO matrices (id, name, spec_yaml, submitted_at_unix_ms) "
        "VALUES (1, 'nightly', '', 0)");
  }

  void Exec(const std::string& sql) {
    Status s = db_->ExecScript(sql);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  void AddGpuPrice(const std::string& provider, const std::string& gpu, double usd) {
    Exec(
        fmt::format("INSERT INTO gpu_prices (provider, gpu, usd_per_gpu_hour, source, as_of) "
                    "VALUES ('{}', '{}', {}, 'test', '2026-01')",
                    provider, gpu, usd));
  }
  void AddApiPrice(const std::string& provider, const std::string& model, double in, double out) {
    Exec(
        fmt::format("INSERT INTO api_prices (provider, model, input_usd_per_mtok, "
                    "output_usd_per_mtok, source, as_of) VALUES ('{}', '{}', {}, {}, 'test', "
                    "'2026-01')",
                    provider, model, in, out));
  }

  void AddRun(int id, const std::string& model, const std::string& workload, int in, int out,
              int tp, const std::string& device) {
    Exec(fmt::format(
        "INSERT INTO runs (id, matrix_id, batch, model, weights, dtype, workload, input_tokens, "
        "output_tokens, tp, device_type, kv_cache_mib, load_json, load_summary, state, "
        "created_at_unix_ms) VALUES ({}, 1, 1, '{}', 'dummy', 'f32', '{}', {}, {}, {}, '{}', "
        "256, '{{}}', 'sweep', 'SUCCEEDED', 0)",
        id, model, workload, in, out, tp, device));
    runs_[id] = {in, out, tp};
  }

  void AddAttempt(int run, int attempt, const std::string& state = "SUCCEEDED") {
    Exec(fmt::format(
        "INSERT INTO run_attempts (run_id, attempt, placement_json, state, started_at_unix_ms, "
        "backend, nodes, devices, device_names) VALUES ({}, {}, '[]', '{}', 0, 'cpu', 'node-a', "
        "{}, 'x')",
        run, attempt, state, runs_[run].tp));
  }

  // Stores a point measured for 10 s on tp devices: requests = rate x 10, tokens = requests x
  // IN (or OUT), device-seconds per Mtok = devices x 10 / tokens x 1e6.
  void AddPoint(int run, int attempt, int index, const Point& p) {
    const RunShape& r = runs_[run];
    const double duration_s = 10;
    const int64_t requests = std::llround(p.requests_per_s * duration_s);
    const int64_t in = requests * r.in;
    const int64_t out = requests * r.out;
    const int devices = p.devices > 0 ? p.devices : r.tp;
    bench::DeviceSeconds ds = bench::DeviceSecondsPerMtok(devices, duration_s, in, out);
    const double t = p.ttft_p95_ms;
    const double o = p.tpot_p95_ms;
    Exec(fmt::format(
        "INSERT INTO load_points (run_id, attempt, point_index, kind, target, requests, failed, "
        "input_tokens, output_tokens, duration_s, requests_per_s, output_tokens_per_s, "
        "total_tokens_per_s, ttft_p50_ms, ttft_p90_ms, ttft_p95_ms, ttft_p99_ms, ttft_mean_ms, "
        "ttft_max_ms, tpot_p50_ms, tpot_p90_ms, tpot_p95_ms, tpot_p99_ms, tpot_mean_ms, "
        "tpot_max_ms, mbu, mfu, device_seconds_per_mtok_input, device_seconds_per_mtok_output, "
        "device_seconds_per_mtok_total, devices, created_at_unix_ms) VALUES ({}, {}, {}, '{}', "
        "{}, {}, 0, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, 0.5, "
        "0.1, {}, {}, {}, {}, 0)",
        run, attempt, index, p.kind, p.target, requests, in, out, duration_s, p.requests_per_s,
        out / duration_s, (in + out) / duration_s, t * 0.5, t * 0.9, t, t * 1.2, t * 0.6, t * 1.5,
        o * 0.5, o * 0.9, o, o * 1.2, o * 0.6, o * 1.5, ds.per_mtok_input, ds.per_mtok_output,
        ds.per_mtok_total, devices));
  }

  // The fixture most tests share. Prices: H100 $3.00 (Lambda) or $4.00 (Modal); "H100 SXM" $2.00
  // and "H1000" $0.50 must not match an "NVIDIA H100 80GB HBM3"; A100 80GB $2.50; cpu $0.10
  // (settings); L4 none. API: OpenAI gpt-4o-mini $0.15 in / $0.60 out per Mtok.
  // Model tiny-15m, workload 512/512 (IN 512, OUT 512), every point 10 s:
  //   run 1  H100 tp 1   attempt 1 (retried; must not count): 100 req/s, ttft 1 ms
  //                      attempt 2: 1 req/s (ttft95 50, tpot95 10), 4 (200, 30), 8 (2000, 80)
  //                      attempt 3: failed before any point
  //   run 2  H100 tp 2   2 req/s (30, 8), 10 (300, 40), 16 (1500, 70)
  //   run 3  A100 tp 1   0.5 req/s (100, 20), 3 (450, 45), 5 (3000, 120)
  //   run 4  cpu tp 1    0.1 req/s (5000, 200)
  //   run 7  L4 tp 1     0.5 req/s (100, 20)
  //   run 5  H100 tp 1, workload 128/1024: 2 req/s (100, 20)
  // Model other-7b: run 6, H100 tp 1, 512/512, 0.2 req/s.
  void BuildFixture() {
    AddGpuPrice("Lambda", "H100", 3.00);
    AddGpuPrice("Modal", "H100", 4.00);
    AddGpuPrice("Lambda 1x", "H100 SXM", 2.00);
    AddGpuPrice("Cheapo", "H1000", 0.50);
    AddGpuPrice("Modal", "A100 80GB", 2.50);
    AddApiPrice("OpenAI", "gpt-4o-mini", 0.15, 0.60);
    AddApiPrice("OpenAI", "gpt-4o", 2.50, 10.00);

    AddRun(1, "tiny-15m", "512/512", 512, 512, 1, kH100);
    AddAttempt(1, 1, "FAILED");
    AddPoint(1, 1, 0, {"throughput", 64, 100, 1, 1});
    AddAttempt(1, 2);
    AddPoint(1, 2, 0, {"sync", 1, 1, 50, 10});
    AddPoint(1, 2, 1, {"rate", 4, 4, 200, 30});
    AddPoint(1, 2, 2, {"throughput", 64, 8, 2000, 80});
    AddAttempt(1, 3, "FAILED");

    AddRun(2, "tiny-15m", "512/512", 512, 512, 2, kH100);
    AddAttempt(2, 1);
    AddPoint(2, 1, 0, {"sync", 1, 2, 30, 8});
    AddPoint(2, 1, 1, {"rate", 10, 10, 300, 40});
    AddPoint(2, 1, 2, {"throughput", 64, 16, 1500, 70});

    AddRun(3, "tiny-15m", "512/512", 512, 512, 1, kA100);
    AddAttempt(3, 1);
    AddPoint(3, 1, 0, {"sync", 1, 0.5, 100, 20});
    AddPoint(3, 1, 1, {"rate", 3, 3, 450, 45});
    AddPoint(3, 1, 2, {"throughput", 64, 5, 3000, 120});

    AddRun(4, "tiny-15m", "512/512", 512, 512, 1, "cpu");
    AddAttempt(4, 1);
    AddPoint(4, 1, 0, {"sync", 1, 0.1, 5000, 200});

    AddRun(5, "tiny-15m", "128/1024", 128, 1024, 1, kH100);
    AddAttempt(5, 1);
    AddPoint(5, 1, 0, {"throughput", 64, 2, 100, 20});

    AddRun(6, "other-7b", "512/512", 512, 512, 1, kH100);
    AddAttempt(6, 1);
    AddPoint(6, 1, 0, {"sync", 1, 0.2, 100, 20});

    AddRun(7, "tiny-15m", "512/512", 512, 512, 1, kL4);
    AddAttempt(7, 1);
    AddPoint(7, 1, 0, {"sync", 1, 0.5, 100, 20});
  }

  v1::Table Query(const std::string& kind, const Args& args) {
    Result<v1::Table> t = RunQuery(*db_, kind, args);
    EXPECT_TRUE(t.ok()) << kind << ": " << t.status().ToString();
    return t.ok() ? *t : v1::Table();
  }

  Status QueryError(const std::string& kind, const Args& args) {
    Result<v1::Table> t = RunQuery(*db_, kind, args);
    EXPECT_FALSE(t.ok()) << kind << " succeeded with " << t->rows_size() << " rows";
    return t.status();
  }

  struct RunShape {
    int in = 0, out = 0, tp = 1;
  };
  testing::ScopedTempDir dir_{"queries"};
  std::unique_ptr<db::Database> db_;
  std::map<int, RunShape> runs_;
};

// ---- results ----

TEST_F(QueriesTest, ResultsListEveryPointOfEachRunsLatestAttemptWithPoints) {
  BuildFixture();
  v1::Table t = Query("results", {});
  // 3 + 3 + 3 + 1 + 1 + 1 + 1 points; run 1's attempt 1 point is left out.
  ASSERT_EQ(t.rows_size(), 13);
  for (const char* c : {"run_id",
                        "matrix",
                        "model",
                        "workload",
                        "input_tokens",
                        "output_tokens",
                        "tp",
                        "device_type",
                        "nodes",
                        "point_index",
                        "kind",
                        "target",
                        "requests",
                        "failed",
                        "requests_per_s",
                        "output_tokens_per_s",
                        "total_tokens_per_s",
                        "goodput_requests_per_s",
                        "slo_attainment",
                        "ttft_p95_ms",
                        "tpot_p99_ms",
                        "itl_mean_ms",
                        "e2e_max_ms",
                        "mbu",
                        "mfu",
                        "device_s_per_mtok",
                        "usd_per_device_hour",
                        "usd_per_mtok",
                        "price_provider"}) {
    Col(t, c);
  }
  for (int r = 0; r < t.rows_size(); ++r) {
    if (Num(t, r, "run_id") == 1) {
      EXPECT_EQ(Num(t, r, "attempt"), 2);
    }
    EXPECT_NE(Num(t, r, "requests_per_s"), 100) << "the retried attempt's point counted";
  }
  EXPECT_EQ(Text(t, 0, "matrix"), "nightly");
  EXPECT_EQ(Text(t, 0, "nodes"), "node-a");
}

TEST_F(QueriesTest, ResultsPriceEachPointAtTheChosenProvider) {
  BuildFixture();
  // Run 1, point 0: 10 requests x (512 + 512) tokens in 10 s on 1 device:
  // device-s per Mtok = 1 x 10 / 10,240 x 1e6 = 976.5625.
  v1::Table t = Query("results", {{"run", "1"}});
  ASSERT_EQ(t.rows_size(), 3);
  EXPECT_EQ(Num(t, 0, "point_index"), 0);
  EXPECT_TRUE(Near(Num(t, 0, "device_s_per_mtok"), 976.5625));
  // Cheapest H100 price that matches: Lambda's $3.00 ("H100 SXM" $2.00 and "H1000" $0.50 do not
  // match "NVIDIA H100 80GB HBM3"): 976.5625 x 3.00 / 3600 = $0.8138020833 per Mtok.
  EXPECT_EQ(Text(t, 0, "price_provider"), "Lambda");
  EXPECT_TRUE(Near(Num(t, 0, "usd_per_device_hour"), 3.00));
  EXPECT_TRUE(Near(Num(t, 0, "usd_per_mtok"), 976.5625 * 3.00 / 3600));
  EXPECT_TRUE(Near(Num(t, 0, "usd_per_mtok"), 0.813802083333333));
  // Point 2: 80 requests -> 81,920 tokens: 122.0703125 device-s per Mtok.
  EXPECT_TRUE(Near(Num(t, 2, "device_s_per_mtok"), 122.0703125));

  // At Modal ($4.00): 976.5625 x 4 / 3600 = $1.0850694444.
  v1::Table modal = Query("results", {{"run", "1"}, {"provider", "modal"}});
  EXPECT_EQ(Text(modal, 0, "price_provider"), "Modal");
  EXPECT_TRUE(Near(Num(modal, 0, "usd_per_mtok"), 1.085069444444444));

  // "Lambda 1x" prices only "H100 SXM": no price, and a note says so.
  v1::Table none = Query("results", {{"run", "1"}, {"provider", "Lambda 1x"}});
  EXPECT_TRUE(IsNull(none, 0, "usd_per_device_hour"));
  EXPECT_TRUE(IsNull(none, 0, "usd_per_mtok"));
  EXPECT_TRUE(Has(AllNotes(none), kH100));

  // The cpu is priced by the setting whatever the provider: 1 device x 10 s / 1,024 tokens
  // = 9,765.625 device-s per Mtok x $0.10 / 3600 = $0.2712673611.
  v1::Table cpu = Query("results", {{"run", "4"}, {"provider", "modal"}});
  ASSERT_EQ(cpu.rows_size(), 1);
  EXPECT_EQ(Text(cpu, 0, "price_provider"), "self");
  EXPECT_TRUE(Near(Num(cpu, 0, "usd_per_mtok"), 0.271267361111111));
}

TEST_F(QueriesTest, ResultsFilterByMatrixModelAndRun) {
  BuildFixture();
  EXPECT_EQ(Query("results", {{"matrix", "nightly"}}).rows_size(), 13);
  EXPECT_EQ(Query("results", {{"matrix", "1"}}).rows_size(), 13);
  v1::Table other = Query("results", {{"model", "other-7b"}});
  ASSERT_EQ(other.rows_size(), 1);
  EXPECT_EQ(Num(other, 0, "run_id"), 6);

  Status s = QueryError("results", {{"matrix", "weekly"}});
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_TRUE(Has(s.message(), "--matrix"));
  EXPECT_TRUE(Has(s.message(), "nightly"));
  s = QueryError("results", {{"run", "99"}});
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_TRUE(Has(s.message(), "99"));
  s = QueryError("results", {{"model", "llama-70b"}});
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_TRUE(Has(s.message(), "other-7b, tiny-15m"));
}

// ---- compare ----

TEST_F(QueriesTest, CompareUsesEachConfigurationsFastestPointAgainstTheApi) {
  BuildFixture();
  v1::Table t = Query("compare", {{"model", "tiny-15m"},
                                  {"api", "openai/GPT-4o-mini"},
                                  {"utilization", "0.5"},
                                  {"workload", "512/512"}});
  // One row per (workload, dtype, device type, tp): H100 tp 1 and 2, A100, cpu, L4.
  ASSERT_EQ(t.rows_size(), 5);

  // H100 tp 1: the fastest point is 8 req/s = 80 requests x 1,024 tokens / 10 s = 8,192 tok/s;
  // device-s per Mtok: total 1 x 10 / 81,920 x 1e6 = 122.0703125, input and output each
  // 1 x 10 / 40,960 x 1e6 = 244.140625. Price $3.00 (Lambda), utilization 0.5:
  //   self total  = 122.0703125 x 3 / 3600 / 0.5 = $0.2034505208 per Mtok
  //   self input  = 244.140625 x 3 / 3600 / 0.5 = $0.4069010417
  //   API blended = (512 x 0.15 + 512 x 0.60) / 1,024 = $0.375
  //   ratio       = 0.2034505208 / 0.375 = 0.5425347222
  //   u*          = (122.0703125 x 3 / 3600) / 0.375 = 0.1017252604 / 0.375 = 0.2712673611
  //   V*          = $3/hour x 730 / $0.375 per Mtok = 5,840 Mtok per month
  //   capacity    = 8,192 tok/s x 3600 x 730 / 1e6 = 21,528.576 Mtok per month
  int h1 = RowOf(t, kH100, 1);
  ASSERT_GE(h1, 0);
  EXPECT_EQ(Num(t, h1, "point_index"), 2);
  EXPECT_EQ(Num(t, h1, "run_id"), 1);
  EXPECT_TRUE(Near(Num(t, h1, "total_tokens_per_s"), 8192));
  EXPECT_EQ(Text(t, h1, "price_provider"), "Lambda");
  EXPECT_TRUE(Near(Num(t, h1, "usd_per_hour"), 3.0));
  EXPECT_TRUE(Near(Num(t, h1, "self_usd_per_mtok"), 0.203450520833333));
  EXPECT_TRUE(Near(Num(t, h1, "self_usd_per_mtok_input"), 0.406901041666667));
  EXPECT_TRUE(Near(Num(t, h1, "self_usd_per_mtok_output"), 0.406901041666667));
  EXPECT_EQ(Text(t, h1, "api"), "OpenAI/gpt-4o-mini");
  EXPECT_TRUE(Near(Num(t, h1, "api_usd_per_mtok"), 0.375));
  EXPECT_TRUE(Near(Num(t, h1, "self_over_api"), 0.542534722222222));
  EXPECT_TRUE(Near(Num(t, h1, "breakeven_utilization"), 0.271267361111111));
  EXPECT_TRUE(Near(Num(t, h1, "breakeven_mtok_per_month"), 5840));
  EXPECT_TRUE(Near(Num(t, h1, "capacity_mtok_per_month"), 21528.576));

  // The same figures from bench/cost.h.
  bench::ApiPrice api{"OpenAI", "gpt-4o-mini", 0.15, 0.60};
  double api_mtok = bench::BlendedApiUsdPerMtok(api, 512, 512);
  EXPECT_TRUE(Near(Num(t, h1, "self_usd_per_mtok"), bench::UsdPerMtok(122.0703125, 3.0, 0.5)));
  bench::BreakEven be = bench::ComputeBreakEven(3.0, 8192, api_mtok);
  EXPECT_TRUE(Near(Num(t, h1, "breakeven_utilization"), be.utilization));
  EXPECT_TRUE(Near(Num(t, h1, "breakeven_mtok_per_month"), be.monthly_tokens / 1e6));
  EXPECT_TRUE(Near(Num(t, h1, "capacity_mtok_per_month"), be.monthly_capacity_tokens / 1e6));

  // H100 tp 2: 16 req/s = 16,384 tok/s on 2 devices; a replica costs 2 x $3 = $6/hour;
  // V* = 6 x 730 / 0.375 = 11,680 Mtok; u* = (6 / (16,384 x 3600) x 1e6) / 0.375 = 0.2712673611.
  int h2 = RowOf(t, kH100, 2);
  ASSERT_GE(h2, 0);
  EXPECT_TRUE(Near(Num(t, h2, "usd_per_hour"), 6.0));
  EXPECT_TRUE(Near(Num(t, h2, "breakeven_mtok_per_month"), 11680));
  EXPECT_TRUE(Near(Num(t, h2, "breakeven_utilization"),
                   bench::ComputeBreakEven(6.0, 16384, api_mtok).utilization));

  // A100 tp 1: 5 req/s = 5,120 tok/s: 195.3125 device-s per Mtok x $2.50 / 3600 / 0.5
  // = $0.2712673611 per Mtok.
  int a = RowOf(t, kA100, 1);
  ASSERT_GE(a, 0);
  EXPECT_EQ(Text(t, a, "price_provider"), "Modal");
  EXPECT_TRUE(Near(Num(t, a, "self_usd_per_mtok"), 0.271267361111111));

  // L4 has no price: its $ columns are empty and a note names it.
  int l4 = RowOf(t, kL4, 1);
  ASSERT_GE(l4, 0);
  EXPECT_TRUE(IsNull(t, l4, "self_usd_per_mtok"));
  EXPECT_TRUE(IsNull(t, l4, "breakeven_utilization"));
  EXPECT_TRUE(Has(AllNotes(t), kL4));
  EXPECT_TRUE(Has(AllNotes(t), "OpenAI/gpt-4o-mini"));
  // Cheapest first: the two H100 rows, then A100, cpu, and the unpriced L4 last.
  EXPECT_EQ(Text(t, 4, "device_type"), kL4);
  EXPECT_EQ(Text(t, 0, "device_type"), kH100);
}

TEST_F(QueriesTest, CompareBlendsTheApiPriceForEachWorkloadsMix) {
  BuildFixture();
  v1::Table t = Query("compare", {{"model", "tiny-15m"}, {"api", "OpenAI/gpt-4o-mini"}});
  ASSERT_EQ(t.rows_size(), 6);  // five configurations of 512/512, one of 128/1024
  // 128/1024: (128 x 0.15 + 1,024 x 0.60) / 1,152 = 633.6 / 1,152 = $0.55 per Mtok.
  int r = RowOf(t, kH100, 1, "128/1024");
  ASSERT_GE(r, 0);
  EXPECT_TRUE(Near(Num(t, r, "api_usd_per_mtok"), 0.55));
  // Utilization defaults to 1: 20 requests x 1,152 tokens / 10 s = 2,304 tok/s;
  // 1 x 10 / 23,040 x 1e6 = 434.0277778 device-s per Mtok x $3 / 3600 = $0.3616898148.
  EXPECT_TRUE(Near(Num(t, r, "utilization"), 1.0));
  EXPECT_TRUE(Near(Num(t, r, "self_usd_per_mtok"), 10.0 / 23040 * 1e6 * 3 / 3600));
}

TEST_F(QueriesTest, CompareFiltersByDeviceAndTp) {
  BuildFixture();
  v1::Table h100 =
      Query("compare", {{"model", "tiny-15m"}, {"api", "OpenAI/gpt-4o"}, {"device", "H100"}});
  EXPECT_EQ(h100.rows_size(), 3);  // 512/512 tp 1 and 2, 128/1024 tp 1
  v1::Table tp2 = Query("compare", {{"model", "tiny-15m"}, {"api", "OpenAI/gpt-4o"}, {"tp", "2"}});
  ASSERT_EQ(tp2.rows_size(), 1);
  EXPECT_EQ(Num(tp2, 0, "tp"), 2);

  Status s = QueryError("compare", {{"model", "tiny-15m"}, {"api", "OpenAI/gpt-4o"}, {"tp", "8"}});
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_TRUE(Has(s.message(), "tp 8"));
  EXPECT_TRUE(Has(s.message(), "tp 1, 2"));
}

// ---- plan ----

TEST_F(QueriesTest, PlanPicksTheCheapestConfigurationThatMeetsTheSlo) {
  BuildFixture();
  v1::Table t = Query("plan", {{"model", "tiny-15m"},
                               {"workload", "512/512"},
                               {"rate", "20"},
                               {"slo", "ttft_p95=500ms,tpot_p95=50ms"},
                               {"compare_to", "OpenAI/gpt-4o-mini"}});
  // Points meeting ttft_p95 <= 500 and tpot_p95 <= 50, highest rate per configuration:
  //   H100 tp 2: 10 req/s -> ceil(20 / 10) = 2 replicas x 2 devices x $3 = $12/hour
  //   H100 tp 1:  4 req/s -> ceil(20 / 4)  = 5 replicas x 1 device  x $3 = $15/hour
  //              (the retried attempt's 100 req/s would give 1 replica: it must not count)
  //   A100 tp 1:  3 req/s -> ceil(6.67)    = 7 replicas x $2.50         = $17.50/hour
  //   L4 tp 1:  0.5 req/s -> 40 replicas, no price: unranked, after the priced ones
  //   cpu tp 1: no point meets the SLO (ttft 5,000 ms): infeasible, last
  ASSERT_EQ(t.rows_size(), 5);
  EXPECT_EQ(Text(t, 0, "device_type"), kH100);
  EXPECT_EQ(Num(t, 0, "tp"), 2);
  EXPECT_EQ(Num(t, 0, "rank"), 1);
  EXPECT_TRUE(Near(Num(t, 0, "max_rate_per_replica"), 10));
  EXPECT_EQ(Num(t, 0, "replicas"), 2);
  EXPECT_EQ(Num(t, 0, "devices"), 4);
  EXPECT_TRUE(Near(Num(t, 0, "usd_per_hour"), 12));
  EXPECT_TRUE(Near(Num(t, 0, "usd_per_month"), 12 * 730));
  // 20 req/s x 1,024 tokens x 3600 = 73,728,000 tokens/hour: $12 / 73.728 = $0.1627604167/Mtok.
  EXPECT_TRUE(Near(Num(t, 0, "usd_per_mtok"), 0.162760416666667));
  // API: 20 x 3600 x (512 x 0.15 + 512 x 0.60) / 1e6 = $27.648/hour; 27.648 / 12 = 2.304.
  EXPECT_TRUE(Near(Num(t, 0, "api_usd_per_hour"), 27.648));
  EXPECT_TRUE(Near(Num(t, 0, "api_over_self"), 2.304));
  EXPECT_TRUE(Near(Num(t, 0, "headroom"), 0));  // 2 x 10 / 20 - 1

  EXPECT_EQ(Num(t, 1, "tp"), 1);
  EXPECT_EQ(Text(t, 1, "device_type"), kH100);
  EXPECT_EQ(Num(t, 1, "rank"), 2);
  EXPECT_EQ(Num(t, 1, "replicas"), 5);
  EXPECT_TRUE(Near(Num(t, 1, "usd_per_hour"), 15));

  EXPECT_EQ(Text(t, 2, "device_type"), kA100);
  EXPECT_EQ(Num(t, 2, "rank"), 3);
  EXPECT_EQ(Num(t, 2, "replicas"), 7);
  EXPECT_TRUE(Near(Num(t, 2, "usd_per_hour"), 17.5));
  EXPECT_TRUE(Near(Num(t, 2, "headroom"), 0.05));  // 7 x 3 / 20 - 1

  EXPECT_EQ(Text(t, 3, "device_type"), kL4);
  EXPECT_TRUE(IsNull(t, 3, "rank"));
  EXPECT_EQ(Num(t, 3, "feasible"), 1);
  EXPECT_EQ(Num(t, 3, "replicas"), 40);

  EXPECT_EQ(Text(t, 4, "device_type"), "cpu");
  EXPECT_EQ(Num(t, 4, "feasible"), 0);
  EXPECT_TRUE(IsNull(t, 4, "rank"));
  EXPECT_TRUE(IsNull(t, 4, "replicas"));
  EXPECT_TRUE(Has(Text(t, 4, "note"), "infeasible"));
  EXPECT_TRUE(Has(AllNotes(t), "ttft_p95=500ms"));
  EXPECT_TRUE(Has(AllNotes(t), "cpu tp 1"));

  // bench::RankPlans on the same candidates ranks and sizes them identically.
  std::vector<bench::PlanCandidate> candidates;
  for (int r = 0; r < 3; ++r) {
    candidates.push_back({Text(t, r, "device_type"), static_cast<int>(Num(t, r, "tp")),
                          Num(t, r, "max_rate_per_replica"), Num(t, r, "usd_per_device_hour"),
                          Text(t, r, "price_provider")});
  }
  std::reverse(candidates.begin(), candidates.end());
  std::vector<bench::PlanOption> ranked = bench::RankPlans(
      candidates, 20, 512, 512, bench::ApiPrice{"OpenAI", "gpt-4o-mini", 0.15, 0.60});
  ASSERT_EQ(ranked.size(), 3u);
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(ranked[r].candidate.device_type, Text(t, r, "device_type"));
    EXPECT_EQ(ranked[r].candidate.tp, Num(t, r, "tp"));
    EXPECT_EQ(ranked[r].replicas, Num(t, r, "replicas"));
    EXPECT_TRUE(Near(ranked[r].usd_per_hour, Num(t, r, "usd_per_hour")));
    EXPECT_TRUE(Near(ranked[r].usd_per_mtok, Num(t, r, "usd_per_mtok")));
    EXPECT_TRUE(Near(ranked[r].api_usd_per_hour, Num(t, r, "api_usd_per_hour")));
    EXPECT_TRUE(Near(ranked[r].headroom, Num(t, r, "headroom")));
  }
}

TEST_F(QueriesTest, PlanWithoutSloUsesTheHighestMeasuredRate) {
  BuildFixture();
  v1::Table t = Query("plan", {{"model", "tiny-15m"}, {"workload", "512/512"}, {"rate", "20"}});
  // H100 tp 1: 8 req/s -> 3 replicas x $3 = $9; A100: 5 -> 4 x $2.50 = $10;
  // H100 tp 2: 16 -> 2 x 2 x $3 = $12; cpu: 0.1 -> 200 x $0.10 = $20; L4 unpriced.
  ASSERT_EQ(t.rows_size(), 5);
  std::vector<std::pair<std::string, double>> expected = {
      {kH100, 9}, {kA100, 10}, {kH100, 12}, {"cpu", 20}};
  for (int r = 0; r < 4; ++r) {
    EXPECT_EQ(Text(t, r, "device_type"), expected[r].first) << "rank " << r + 1;
    EXPECT_TRUE(Near(Num(t, r, "usd_per_hour"), expected[r].second)) << "rank " << r + 1;
    EXPECT_EQ(Num(t, r, "rank"), r + 1);
  }
  EXPECT_EQ(Num(t, 3, "replicas"), 200);
  EXPECT_TRUE(IsNull(t, 0, "api"));  // no --compare-to
  EXPECT_EQ(Text(t, 4, "device_type"), kL4);
  EXPECT_TRUE(Has(Text(t, 4, "note"), "no price"));
}

TEST_F(QueriesTest, PlanCountsReplicasWithoutFloatingPointNoise) {
  BuildFixture();
  AddRun(8, "tiny-15m", "512/512", 512, 512, 2, "cpu");
  AddAttempt(8, 1);
  AddPoint(8, 1, 0, {"sync", 1, 0.6, 100, 20});
  // 4.2 / 0.6 is 7.000000000000001 in binary floating point: 7 replicas, not 8.
  v1::Table t = Query("plan", {{"model", "tiny-15m"}, {"workload", "512/512"}, {"rate", "4.2"}});
  int cpu = RowOf(t, "cpu", 2);
  ASSERT_GE(cpu, 0);
  EXPECT_EQ(Num(t, cpu, "replicas"), 7);
  EXPECT_EQ(bench::RankPlans({{"cpu", 2, 0.6, 0.1, "self"}}, 4.2, 512, 512, std::nullopt)
                .front()
                .replicas,
            7);
}

// A point that ran two replicas (2 devices at tp 1) counts as one replica at half its rate.
TEST_F(QueriesTest, APointOnSeveralReplicasIsScaledToOne) {
  BuildFixture();
  AddGpuPrice("Modal", "H200", 5.00);
  AddRun(9, "tiny-15m", "512/512", 512, 512, 1, "NVIDIA H200");
  AddAttempt(9, 1);
  AddPoint(9, 1, 0, {"throughput", 64, 8, 100, 20, /*devices=*/2});
  // Plan: 8 req/s on 2 replicas = 4 per replica; 20 / 4 = 5 replicas x $5 = $25/hour.
  v1::Table plan = Query("plan", {{"model", "tiny-15m"}, {"workload", "512/512"}, {"rate", "20"}});
  int p = RowOf(plan, "NVIDIA H200", 1);
  ASSERT_GE(p, 0);
  EXPECT_TRUE(Near(Num(plan, p, "max_rate_per_replica"), 4));
  EXPECT_EQ(Num(plan, p, "replicas"), 5);
  EXPECT_TRUE(Near(Num(plan, p, "usd_per_hour"), 25));
  // Compare: a replica serves 8,192 / 2 = 4,096 tok/s for $5/hour; 2 x 10 / 81,920 x 1e6 =
  // 244.140625 device-s per Mtok x $5 / 3600 = $0.3390842014 per Mtok at full use, the same as
  // $5 / (4,096 x 3600) x 1e6.
  v1::Table cmp =
      Query("compare", {{"model", "tiny-15m"}, {"api", "OpenAI/gpt-4o-mini"}, {"device", "H200"}});
  ASSERT_EQ(cmp.rows_size(), 1);
  EXPECT_TRUE(Near(Num(cmp, 0, "total_tokens_per_s"), 4096));
  EXPECT_TRUE(Near(Num(cmp, 0, "usd_per_hour"), 5));
  EXPECT_TRUE(Near(Num(cmp, 0, "self_usd_per_mtok"), 0.339084201388889));
  EXPECT_TRUE(Near(Num(cmp, 0, "breakeven_utilization"),
                   bench::ComputeBreakEven(5, 4096, 0.375).utilization));
}

// ---- prices ----

TEST_F(QueriesTest, PricesListTheCatalog) {
  BuildFixture();
  auto count = [&](const std::string& table) {
    auto q = db_->Prepare("SELECT count(*) FROM " + table);
    EXPECT_TRUE(q.ok() && q->Step().ok());
    return q.ok() ? static_cast<int>(q->Int64(0)) : -1;
  };
  v1::Table all = Query("prices", {});
  EXPECT_EQ(all.rows_size(), 5 + 2 + count("settings"));  // gpu, api, settings
  EXPECT_EQ(Text(all, 0, "table"), "gpu");
  EXPECT_EQ(Text(all, 5, "table"), "api");
  v1::Table api = Query("prices", {{"table", "API"}});
  ASSERT_EQ(api.rows_size(), 2);
  EXPECT_EQ(Text(api, 0, "item"), "gpt-4o");
  EXPECT_TRUE(Near(Num(api, 0, "output_usd_per_mtok"), 10.0));
  v1::Table settings = Query("prices", {{"table", "settings"}});
  ASSERT_EQ(settings.rows_size(), count("settings"));
  bool cpu_found = false;
  for (int r = 0; r < settings.rows_size(); ++r) {
    if (Text(settings, r, "item") != "cpu_usd_per_hour") continue;
    cpu_found = true;
    EXPECT_TRUE(Near(Num(settings, r, "usd_per_hour"), 0.10));
  }
  EXPECT_TRUE(cpu_found);
  v1::Table specs = Query("prices", {{"table", "specs"}});
  EXPECT_EQ(specs.columns(0), "gpu");
  EXPECT_TRUE(Has(AllNotes(specs), "empty"));
}

// ---- arguments ----

TEST_F(QueriesTest, BadArgumentsAreNamed) {
  BuildFixture();
  struct Case {
    std::string kind;
    Args args;
    StatusCode code;
    std::vector<std::string> says;
  };
  const Args ok_compare = {{"model", "tiny-15m"}, {"api", "OpenAI/gpt-4o-mini"}};
  auto with = [](Args a, const std::string& k, const std::string& v) {
    a[k] = v;
    return a;
  };
  const Args ok_plan = {{"model", "tiny-15m"}, {"workload", "512/512"}, {"rate", "20"}};
  std::vector<Case> cases = {
      {"bogus", {}, StatusCode::kInvalidArgument, {"bogus", "results, compare, plan, prices"}},
      {"compare", {{"api", "OpenAI/gpt-4o"}}, StatusCode::kInvalidArgument, {"--model"}},
      {"compare", {{"model", "tiny-15m"}}, StatusCode::kInvalidArgument, {"--api"}},
      {"compare",
       with(ok_compare, "api", "OpenAI/gpt-4o-mine"),
       StatusCode::kInvalidArgument,
       {"--api", "gpt-4o"}},
      {"compare",
       with(ok_compare, "api", "gpt-4o"),
       StatusCode::kInvalidArgument,
       {"--api", "PROVIDER/MODEL"}},
      {"compare",
       with(ok_compare, "utilization", "1.5"),
       StatusCode::kInvalidArgument,
       {"--utilization", "(0, 1]"}},
      {"compare",
       with(ok_compare, "utilization", "0"),
       StatusCode::kInvalidArgument,
       {"--utilization"}},
      {"compare",
       with(ok_compare, "utilization", "half"),
       StatusCode::kInvalidArgument,
       {"--utilization", "half"}},
      {"compare", with(ok_compare, "tp", "two"), StatusCode::kInvalidArgument, {"--tp", "two"}},
      {"compare",
       with(ok_compare, "colour", "red"),
       StatusCode::kInvalidArgument,
       {"--colour", "--model"}},
      {"compare",
       with(ok_compare, "model", "llama-70b"),
       StatusCode::kNotFound,
       {"llama-70b", "other-7b, tiny-15m"}},
      {"compare",
       with(ok_compare, "workload", "9/9"),
       StatusCode::kNotFound,
       {"9/9", "128/1024, 512/512"}},
      {"plan", with(ok_plan, "rate", "0"), StatusCode::kInvalidArgument, {"--rate"}},
      {"plan", with(ok_plan, "rate", "fast"), StatusCode::kInvalidArgument, {"--rate", "fast"}},
      {"plan",
       {{"model", "tiny-15m"}, {"workload", "512/512"}},
       StatusCode::kInvalidArgument,
       {"--rate"}},
      {"plan",
       {{"model", "tiny-15m"}, {"rate", "1"}},
       StatusCode::kInvalidArgument,
       {"--workload"}},
      {"plan",
       with(ok_plan, "slo", "ttft_p95=fast"),
       StatusCode::kInvalidArgument,
       {"--slo", "fast"}},
      {"plan",
       with(ok_plan, "compare_to", "Nobody/none"),
       StatusCode::kInvalidArgument,
       {"--compare-to", "Nobody/none"}},
      {"plan",
       with(ok_plan, "workload", "9/9"),
       StatusCode::kNotFound,
       {"--workload", "9/9", "128/1024, 512/512"}},
      {"results", {{"run", "first"}}, StatusCode::kInvalidArgument, {"--run", "first"}},
      {"prices", {{"table", "cheap"}}, StatusCode::kInvalidArgument, {"--table", "cheap"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.kind + " " + [&] {
      std::string s;
      for (const auto& [k, v] : c.args) s += k + "=" + v + " ";
      return s;
    }());
    Status s = QueryError(c.kind, c.args);
    EXPECT_EQ(s.code(), c.code) << s.ToString();
    for (const std::string& part : c.says) EXPECT_TRUE(Has(s.message(), part));
  }
}

TEST_F(QueriesTest, AnEmptyDatabaseSaysNothingIsMeasuredYet) {
  AddApiPrice("OpenAI", "gpt-4o-mini", 0.15, 0.60);
  Status s = QueryError("compare", {{"model", "tiny-15m"}, {"api", "OpenAI/gpt-4o-mini"}});
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_TRUE(Has(s.message(), "none yet"));
  s = QueryError("results", {});
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
}

// ---- the query files themselves ----

// The SQL matches device types to prices as db::FindDevicePrice does, for every provider filter.
TEST_F(QueriesTest, DevicePricesAgreeWithThePriceStore) {
  AddGpuPrice("Lambda", "H100", 3.00);
  AddGpuPrice("Modal", "H100", 4.00);
  AddGpuPrice("Lambda 1x", "H100 SXM", 2.00);
  AddGpuPrice("Cheapo", "H1000", 0.50);
  AddGpuPrice("Modal", "A100 80GB", 2.50);
  AddGpuPrice("RunPod Secure", "A100-80GB", 1.59);
  AddGpuPrice("RunPod Community", "a100_80gb", 1.39);
  AddGpuPrice("Modal", "L40S", 1.95);
  const std::vector<std::string> devices = {kH100,       "H100",
                                            "h100-sxm",  "NVIDIA  H100   SXM5",
                                            kA100,       "A100",
                                            "NVIDIA L4", "NVIDIA L40S",
                                            "cpu",       "CPU",
                                            "H1000",     "B200",
                                            "L4",        "nvidia a100 80gb"};
  int id = 100;
  for (const std::string& d : devices) {
    AddRun(id, "m", "1/1", 1, 1, 1, d);
    AddAttempt(id, 1);
    AddPoint(id, 1, 0, {"sync", 1, 1, 1, 1});
    ++id;
  }
  for (const std::string provider : {"", "lambda", "Modal", "lambda 1x", "RunPod", "runpod c"}) {
    Args args = {{"model", "m"}};
    if (!provider.empty()) args["provider"] = provider;
    v1::Table t = Query("results", args);
    ASSERT_EQ(t.rows_size(), static_cast<int>(devices.size()));
    for (int r = 0; r < t.rows_size(); ++r) {
      const std::string device = Text(t, r, "device_type");
      SCOPED_TRACE("device '" + device + "' provider '" + provider + "'");
      Result<db::GpuPrice> expected = db::FindDevicePrice(*db_, device, provider);
      if (!expected.ok()) {
        EXPECT_TRUE(IsNull(t, r, "usd_per_device_hour")) << expected.status().ToString();
        continue;
      }
      ASSERT_FALSE(IsNull(t, r, "usd_per_device_hour"));
      EXPECT_EQ(Text(t, r, "price_provider"), expected->provider);
      EXPECT_TRUE(Near(Num(t, r, "usd_per_device_hour"), expected->usd_per_gpu_hour));
    }
  }
}

std::string QueryText(const std::string& name) {
  const db::EmbeddedFile* f = db::FindEmbedded(db::QueryFiles(), name);
  EXPECT_NE(f, nullptr) << name;
  return f ? f->text : "";
}

// results.sql, compare.sql and plan.sql each carry the same device-price block (each file must
// run on its own in the sqlite3 shell); a change to one must be made to all three.
TEST(QueryFilesTest, DevicePriceBlockIsTheSameInEveryFile) {
  auto block = [](const std::string& text) {
    size_t begin = text.find("-- ---- device prices: begin");
    size_t end = text.find("-- ---- device prices: end ----");
    EXPECT_NE(begin, std::string::npos);
    EXPECT_NE(end, std::string::npos);
    std::string b = text.substr(begin, end - begin);
    // The last CTE of the block is followed by a comma where more CTEs follow.
    while (!b.empty() && (b.back() == '\n' || b.back() == ',')) b.pop_back();
    return b;
  };
  std::string results = block(QueryText("results.sql"));
  EXPECT_GT(results.size(), 1000u);
  EXPECT_EQ(block(QueryText("compare.sql")), results);
  EXPECT_EQ(block(QueryText("plan.sql")), results);
}

// Each file's header comment documents every parameter the file uses.
TEST(QueryFilesTest, HeadersDocumentEveryParameter) {
  auto db = db::Database::Open(":memory:");
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE(db::Migrate(**db).ok());
  ASSERT_GE(db::QueryFiles().size(), 4u);
  for (const db::EmbeddedFile& f : db::QueryFiles()) {
    SCOPED_TRACE(f.name);
    std::string header = f.text.substr(0, f.text.find("\nWITH"));
    header = header.substr(0, header.find("\nSELECT"));
    EXPECT_TRUE(Has(header, "Columns"));
    sqlite3_stmt* stmt = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2((*db)->raw(), f.text.c_str(), -1, &stmt, nullptr), SQLITE_OK)
        << sqlite3_errmsg((*db)->raw());
    for (int i = 1; i <= sqlite3_bind_parameter_count(stmt); ++i) {
      EXPECT_TRUE(Has(header, sqlite3_bind_parameter_name(stmt, i)));
    }
    sqlite3_finalize(stmt);
  }
}

}  // namespace
}  // namespace breakeven::scheduler
