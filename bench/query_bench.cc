// breakeven-query-bench: how long `breakeven compare`, `plan` and `results` take on a database the
// size of a busy year of benchmarking.
//
// It builds a database file in a temporary directory (the real migrations and seed price
// catalog) holding --runs runs of --points load points each: four models x five workloads x five
// device types x four tp degrees, repeated. One run in ten was retried: its first attempt holds
// two points and its second the rest, so the queries' "latest attempt with points" rule has work
// to do and the point count stays runs x points. Then, for each query, it runs RunQuery (the
// scheduler's code path: argument checks, the embedded SQL, the table) --warmup times untimed,
// checks the answer once, and times --iterations calls.
//
// The bound it is read against: a full scan that steps through every load point
// (`SELECT * FROM load_points`), measured in the same run, which is what any query that reads
// all the points cannot beat; and the goal of 100 ms per query.
#include <fmt/format.h>
#include <time.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>

#include "bench/percentiles.h"
#include "db/migrate.h"
#include "db/price_store.h"
#include "db/sqlite.h"
#include "scheduler/queries.h"

namespace breakeven::bench {
namespace {

using Clock = std::chrono::steady_clock;

// CPU time of the calling thread: unlike wall time, not inflated by other processes sharing the
// cores.
double ThreadCpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

const std::vector<std::string> kModels = {"llama-3.1-8b", "llama-3.1-70b", "mistral-7b",
                                          "qwen2.5-14b"};
struct Workload {
  std::string name;
  int in, out;
};
const std::vector<Workload> kWorkloads = {{"128/1024", 128, 1024},
                                          {"1024/128", 1024, 128},
                                          {"512/512", 512, 512},
                                          {"2048/256", 2048, 256},
                                          {"shared-prefix", 2176, 256}};
const std::vector<std::string> kDevices = {"cpu", "NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB",
                                           "NVIDIA H200", "NVIDIA L40S"};
const std::vector<int> kTps = {1, 2, 4, 8};

// Fills a migrated, seeded database with `runs` runs of `points` points each.
Status Populate(db::Database& db, int runs, int points) {
  db::Transaction tx(db);
  BE_RETURN_IF_ERROR(tx.Begin());
  BE_RETURN_IF_ERROR(
      db.ExecScript("INSERT INTO matrices (id, name, spec_yaml, submitted_at_unix_ms) VALUES (1, "
                    "'bench', '', 0)"));
  BE_ASSIGN_OR_RETURN(db::Statement run, db.Prepare(R"sql(
      INSERT INTO runs (id, matrix_id, batch, model, weights, dtype, workload, input_tokens,
                        output_tokens, tp, device_type, kv_cache_mib, load_json, load_summary,
                        state, attempt, created_at_unix_ms)
      VALUES (?1, 1, 1, ?2, 'dummy', 'bf16', ?3, ?4, ?5, ?6, ?7, 1024, '{}', 'sweep',
              'SUCCEEDED', ?8, 0))sql"));
  BE_ASSIGN_OR_RETURN(db::Statement attempt, db.Prepare(R"sql(
      INSERT INTO run_attempts (run_id, attempt, placement_json, state, started_at_unix_ms,
                                backend, nodes, devices, device_names)
      VALUES (?1, ?2, '[]', ?3, 0, 'cuda', 'node-1', ?4, ?5))sql"));
  BE_ASSIGN_OR_RETURN(db::Statement point, db.Prepare(R"sql(
      INSERT INTO load_points (run_id, attempt, point_index, kind, target, requests, failed,
        input_tokens, output_tokens, duration_s, requests_per_s, output_tokens_per_s,
        total_tokens_per_s, ttft_p50_ms, ttft_p90_ms, ttft_p95_ms, ttft_p99_ms, ttft_mean_ms,
        ttft_max_ms, tpot_p50_ms, tpot_p90_ms, tpot_p95_ms, tpot_p99_ms, tpot_mean_ms, tpot_max_ms,
        itl_p50_ms, itl_p90_ms, itl_p95_ms, itl_p99_ms, itl_mean_ms, itl_max_ms,
        e2e_p50_ms, e2e_p90_ms, e2e_p95_ms, e2e_p99_ms, e2e_mean_ms, e2e_max_ms, mbu, mfu,
        device_seconds_per_mtok_input, device_seconds_per_mtok_output,
        device_seconds_per_mtok_total, devices, created_at_unix_ms)
      VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8, 30, ?9, ?10, ?11,
              ?12 * 0.5, ?12 * 0.9, ?12, ?12 * 1.2, ?12 * 0.6, ?12 * 1.5,
              ?13 * 0.5, ?13 * 0.9, ?13, ?13 * 1.2, ?13 * 0.6, ?13 * 1.5,
              ?13 * 0.5, ?13 * 0.9, ?13, ?13 * 1.2, ?13 * 0.6, ?13 * 1.5,
              ?14 * 0.5, ?14 * 0.9, ?14, ?14 * 1.2, ?14 * 0.6, ?14 * 1.5, 0.4, 0.1,
              ?15, ?16, ?17, ?18, 0))sql"));

  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  const double duration_s = 30;
  for (int id = 1; id <= runs; ++id) {
    const int config = (id - 1) % 400;
    const std::string& model = kModels[config % 4];
    const Workload& w = kWorkloads[config / 4 % 5];
    const std::string& device = kDevices[config / 20 % 5];
    const int tp = kTps[config / 100 % 4];
    const bool retried = id % 10 == 0;
    run.Bind(1, int64_t{id}).Bind(2, model).Bind(3, w.name).Bind(4, int64_t{w.in});
    run.Bind(5, int64_t{w.out}).Bind(6, int64_t{tp}).Bind(7, device);
    run.Bind(8, int64_t{retried ? 2 : 1});
    BE_RETURN_IF_ERROR(run.Run());
    for (int a = 1; a <= (retried ? 2 : 1); ++a) {
      attempt.Bind(1, int64_t{id}).Bind(2, int64_t{a});
      attempt.Bind(3, a == 1 && retried ? "FAILED" : "SUCCEEDED");
      attempt.Bind(4, int64_t{tp}).Bind(5, device);
      BE_RETURN_IF_ERROR(attempt.Run());
    }
    // Device speed: cpu 1, GPUs 20-60; tp scales sub-linearly.
    const double speed =
        (device == "cpu" ? 1.0 : 20.0 + 10.0 * (config / 20 % 5)) * std::pow(tp, 0.8) * jitter(rng);
    for (int p = 0; p < points; ++p) {
      const int a = retried && p < 2 ? 1 : (retried ? 2 : 1);
      const double rate = speed * (p + 1) / points * 4096.0 / (w.in + w.out);
      const int64_t requests = std::max<int64_t>(1, std::llround(rate * duration_s));
      const int64_t in = requests * w.in;
      const int64_t out = requests * w.out;
      const double load = static_cast<double>(p + 1) / points;  // latency grows with load
      const double ttft = 40 * (1 + 10 * load * load) * jitter(rng);
      const double tpot = 8 * (1 + 6 * load * load) * jitter(rng);
      const double device_s = static_cast<double>(tp) * duration_s;
      point.Bind(1, int64_t{id}).Bind(2, int64_t{a}).Bind(3, int64_t{p});
      point.Bind(4, p == 0 ? "sync" : p == points - 1 ? "throughput" : "rate");
      point.Bind(5, rate).Bind(6, requests).Bind(7, in).Bind(8, out);
      point.Bind(9, static_cast<double>(requests) / duration_s);
      point.Bind(10, static_cast<double>(out) / duration_s);
      point.Bind(11, static_cast<double>(in + out) / duration_s);
      point.Bind(12, ttft).Bind(13, tpot).Bind(14, ttft + tpot * w.out);
      point.Bind(15, device_s / static_cast<double>(in) * 1e6);
      point.Bind(16, device_s / static_cast<double>(out) * 1e6);
      point.Bind(17, device_s / static_cast<double>(in + out) * 1e6);
      point.Bind(18, int64_t{tp});
      BE_RETURN_IF_ERROR(point.Run());
    }
  }
  BE_RETURN_IF_ERROR(db.ExecScript("ANALYZE"));
  return tx.Commit();
}

struct Case {
  std::string name;
  std::function<Result<int>()> call;  // returns the rows answered
};

int Main(int argc, char** argv) {
  int runs = 2000;
  int points = 5;
  int iterations = 200;
  int warmup = 5;
  std::string output = "table";
  bool keep_db = false;
  CLI::App app{"Times the compare, plan and results queries on a generated database."};
  app.add_option("--runs", runs, "runs in the database")->capture_default_str();
  app.add_option("--points", points, "load points per run")->capture_default_str();
  app.add_option("--iterations", iterations, "timed calls per query")->capture_default_str();
  app.add_option("--warmup", warmup, "untimed calls per query first")->capture_default_str();
  app.add_option("-o,--output", output, "table or json")->check(CLI::IsMember({"table", "json"}));
  app.add_flag("--keep-db", keep_db,
               "keep the generated database (to try the queries in the sqlite3 shell)");
  CLI11_PARSE(app, argc, argv);
  if (runs < 400 || points < 3 || iterations < 1) {
    fmt::print(stderr, "breakeven-query-bench: needs --runs >= 400, --points >= 3\n");
    return 2;
  }

  std::string dir_template = (std::filesystem::temp_directory_path() / "query-bench-XXXXXX");
  if (mkdtemp(dir_template.data()) == nullptr) {
    fmt::print(stderr, "breakeven-query-bench: cannot create a temporary directory\n");
    return 1;
  }
  const std::filesystem::path dir = dir_template;
  auto fail = [&](const Status& s) {
    fmt::print(stderr, "breakeven-query-bench: {}\n", s.ToString());
    std::filesystem::remove_all(dir);
    return 1;
  };
  auto opened = db::Database::Open((dir / "bench.db").string());
  if (!opened.ok()) return fail(opened.status());
  db::Database& db = **opened;
  if (auto m = db::Migrate(db); !m.ok()) return fail(m.status());
  if (auto s = db::SeedPrices(db); !s.ok()) return fail(s.status());
  const auto build_start = Clock::now();
  if (Status s = Populate(db, runs, points); !s.ok()) return fail(s);
  const double build_s = std::chrono::duration<double>(Clock::now() - build_start).count();
  fmt::print(stderr, "built {} runs x {} points = {} load points in {:.1f} s ({})\n", runs, points,
             runs * points, build_s, (dir / "bench.db").string());

  auto query = [&db](std::string kind, std::map<std::string, std::string> args) {
    return [&db, kind, args]() -> Result<int> {
      BE_ASSIGN_OR_RETURN(v1::Table t, scheduler::RunQuery(db, kind, args));
      return t.rows_size();
    };
  };
  std::vector<Case> cases = {
      {"scan all points (bound)",
       [&db]() -> Result<int> {
         BE_ASSIGN_OR_RETURN(db::Statement q, db.Prepare("SELECT * FROM load_points"));
         int rows = 0;
         for (;;) {
           BE_ASSIGN_OR_RETURN(bool row, q.Step());
           if (!row) break;
           ++rows;
         }
         return rows;
       }},
      {"compare", query("compare", {{"model", "llama-3.1-8b"}, {"api", "OpenAI/gpt-4o-mini"}})},
      {"compare --workload --utilization", query("compare", {{"model", "llama-3.1-70b"},
                                                             {"api", "OpenAI/gpt-4o"},
                                                             {"workload", "512/512"},
                                                             {"utilization", "0.5"}})},
      {"plan --slo --compare-to", query("plan", {{"model", "llama-3.1-8b"},
                                                 {"workload", "512/512"},
                                                 {"rate", "50"},
                                                 {"slo", "ttft_p95=300ms,tpot_p95=40ms"},
                                                 {"compare_to", "OpenAI/gpt-4o-mini"}})},
      {"plan (no SLO)",
       query("plan", {{"model", "qwen2.5-14b"}, {"workload", "shared-prefix"}, {"rate", "5"}})},
      {"results --run", query("results", {{"run", std::to_string(runs / 2)}})},
      {"results (every point)", query("results", {})},
  };

  if (output == "table") {
    fmt::print("{:<34}  {:>6}  {:>11}  {:>9}  {:>9}  {:>15}\n", "query", "rows", "median (ms)",
               "p90 (ms)", "max (ms)", "cpu median (ms)");
  }
  for (const Case& c : cases) {
    for (int i = 0; i < warmup; ++i) {
      if (Result<int> r = c.call(); !r.ok()) return fail(r.status().WithContext(c.name));
    }
    Result<int> rows = c.call();  // the untimed check: every query answers something
    if (!rows.ok()) return fail(rows.status().WithContext(c.name));
    if (*rows == 0) return fail(Internal("{}: no rows", c.name));
    std::vector<double> wall_ms, cpu_ms;
    wall_ms.reserve(iterations);
    cpu_ms.reserve(iterations);
    for (int i = 0; i < iterations; ++i) {
      const auto start = Clock::now();
      const double cpu_start = ThreadCpuMs();
      Result<int> r = c.call();
      cpu_ms.push_back(ThreadCpuMs() - cpu_start);
      wall_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
      if (!r.ok()) return fail(r.status().WithContext(c.name));
    }
    Summary wall = Summarize(wall_ms);
    Summary cpu = Summarize(cpu_ms);
    if (output == "table") {
      fmt::print("{:<34}  {:>6}  {:>11.2f}  {:>9.2f}  {:>9.2f}  {:>15.2f}\n", c.name, *rows,
                 wall.p50, wall.p90, wall.max, cpu.p50);
    } else {
      nlohmann::ordered_json j = {
          {"bench", "query"},   {"query", c.name},          {"load_points", runs * points},
          {"rows", *rows},      {"iterations", iterations}, {"median_ms", wall.p50},
          {"p90_ms", wall.p90}, {"max_ms", wall.max},       {"cpu_median_ms", cpu.p50}};
      fmt::print("{}\n", j.dump());
    }
  }
  if (keep_db) {
    fmt::print(stderr, "kept {}\n", (dir / "bench.db").string());
  } else {
    std::filesystem::remove_all(dir);
  }
  return 0;
}

}  // namespace
}  // namespace breakeven::bench

int main(int argc, char** argv) { return breakeven::bench::Main(argc, argv); }
