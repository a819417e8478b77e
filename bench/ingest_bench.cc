// Ingestion of per-request records: how long the scheduler takes to store a million of them.
//
// Builds load points as a node sends them (PointResult protos with every request's timings in
// columns), serializes and parses each one as the wire would, and stores it through
// db::RunStore::InsertPoint, the scheduler's own ingestion path (one transaction per point: the
// point, its requests and the run's progress), into a fresh SQLite file with the real schema.
// Prints one line per repetition and the median, plus a JSON summary.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "db/migrate.h"
#include "db/run_store.h"

using namespace breakeven;
namespace fs = std::filesystem;

namespace {

v1::PointResult MakePoint(uint32_t index, int requests, std::mt19937_64& rng) {
  v1::PointResult p;
  p.set_index(index);
  p.set_planned(0);
  p.set_kind("rate");
  p.set_target(50);
  auto* m = p.mutable_metrics();
  m->set_requests(requests);
  m->set_input_tokens(int64_t{512} * requests);
  m->set_output_tokens(int64_t{128} * requests);
  m->set_duration_s(requests / 50.0);
  for (auto* s :
       {m->mutable_ttft_ms(), m->mutable_tpot_ms(), m->mutable_itl_ms(), m->mutable_e2e_ms()}) {
    s->set_count(static_cast<uint64_t>(requests));
    s->set_p50(10);
    s->set_p95(20);
  }
  std::exponential_distribution<double> gap(50.0 / 1000);
  std::uniform_real_distribution<double> lat(5, 50);
  auto* c = p.mutable_requests();
  double t = 0;
  for (int i = 0; i < requests; ++i) {
    t += gap(rng);
    const double first = t + lat(rng);
    c->add_arrival_ms(t);
    c->add_sent_ms(t + 0.01);
    c->add_first_token_ms(first);
    c->add_last_token_ms(first + 128 * 12.5);
    c->add_input_tokens(512);
    c->add_output_tokens(128);
    c->add_chunks(128);
    c->add_ok(true);
  }
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t records = 1'000'000;
  int per_point = 1000;
  int repeats = 3;
  std::string dir = fs::temp_directory_path().string();
  CLI::App app{"breakeven-ingest-bench: stores per-request records as the scheduler does"};
  app.add_option("--records", records, "request records per repetition")->capture_default_str();
  app.add_option("--per-point", per_point, "requests per load point")->capture_default_str();
  app.add_option("--repeats", repeats, "repetitions (fresh database each)")->capture_default_str();
  app.add_option("--dir", dir, "where the database files go")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const int points = static_cast<int>((records + per_point - 1) / per_point);
  std::mt19937_64 rng(7);
  // The wire form of every point, prepared before the clock starts.
  std::vector<std::string> wire;
  for (int i = 0; i < points; ++i) {
    v1::RunEvent e;
    e.mutable_run()->set_run_id(1);
    e.mutable_run()->set_attempt(1);
    *e.mutable_point() = MakePoint(static_cast<uint32_t>(i), per_point, rng);
    wire.push_back(e.SerializeAsString());
  }

  std::vector<double> seconds;
  for (int r = 0; r < repeats; ++r) {
    const std::string path = fmt::format("{}/breakeven-ingest-{}-{}.db", dir, getpid(), r);
    fs::remove(path);
    auto db = db::Database::Open(path);
    if (!db.ok() || !db::Migrate(**db).ok()) {
      fmt::print(stderr, "cannot create {}\n", path);
      return 1;
    }
    auto store = db::RunStore::Create(**db);
    db::MatrixRow m{0, "ingest", "name: ingest", std::nullopt, std::nullopt, 1, 0};
    db::RunRow run;
    run.model = "tiny-15m";
    run.workload = "512/128";
    run.input_tokens = 512;
    run.output_tokens = 128;
    run.load_json = "{}";
    run.load_summary = "rate";
    run.state = v1::RUN_STATE_RUNNING;
    run.attempt = 1;
    std::vector<db::RunRow> runs = {run};
    if (!(*store)->InsertMatrix(&m, &runs, {0, std::nullopt, std::nullopt, "submitted", ""}).ok()) {
      return 1;
    }
    run = runs[0];
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < points; ++i) {
      v1::RunEvent e;
      if (!e.ParseFromString(wire[static_cast<size_t>(i)])) return 1;
      run.points_done = i + 1;
      auto stored = (*store)->InsertPoint(run, e.point(), 8, 0);
      if (!stored.ok() || !*stored) {
        fmt::print(stderr, "point {}: {}\n", i,
                   stored.ok() ? "not stored" : stored.status().message());
        return 1;
      }
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    seconds.push_back(s);
    const auto bytes = fs::file_size(path);
    fmt::print(
        "repetition {}: {} records in {} points: {:.2f} s ({:.0f} records/s), database "
        "{:.0f} MiB\n",
        r + 1, int64_t{points} * per_point, points, s, points * per_point / s,
        static_cast<double>(bytes) / 1048576.0);
    store->reset();
    db->reset();
    fs::remove(path);
    fs::remove(path + "-wal");
    fs::remove(path + "-shm");
  }
  std::sort(seconds.begin(), seconds.end());
  const double median = seconds[seconds.size() / 2];
  fmt::print("median: {:.2f} s for {} records (goal < 10 s)\n", median,
             int64_t{points} * per_point);
  nlohmann::json j = {{"records", int64_t{points} * per_point},
                      {"per_point", per_point},
                      {"median_s", median},
                      {"min_s", seconds.front()},
                      {"max_s", seconds.back()}};
  fmt::print("{}\n", j.dump());
  return 0;
}
