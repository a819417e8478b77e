// breakeven: the admin CLI. This file is the command line (CLI11); the commands are in
// commands.h and local_bench.h.
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/local_bench.h"
#include "cli/query_views.h"
#include "common/version.h"

using namespace breakeven;

namespace {

constexpr const char* kCluster = "Cluster";
constexpr const char* kBenchmarks = "Benchmark matrices";
constexpr const char* kEconomics = "Results and economics";
constexpr const char* kLocal = "This machine (no cluster)";
constexpr const char* kSubcommands = "Subcommands";

constexpr const char* kFooter = R"(Examples:
  export BREAKEVEN_SCHEDULER=sched:7070 BREAKEVEN_TOKEN_FILE=admin.token
  breakeven submit matrix.yaml --dry-run     # expand and place, queue nothing
  breakeven submit matrix.yaml && breakeven watch --matrix 1
  breakeven results --matrix 1 -o csv > results.csv
  breakeven compare --model llama-3.1-8b --api OpenAI/gpt-4o-mini --utilization 0.5
  breakeven plan --model llama-3.1-8b --workload 512/128 --rate 20 --slo ttft_p95=500ms

Run `breakeven COMMAND --help` for a command's flags.)";

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// `text` broken at spaces into lines of at most `width` characters.
std::string Wrap(const std::string& text, size_t width) {
  std::string out, line;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    std::string word = text.substr(start, end - start);
    if (!line.empty() && line.size() + 1 + word.size() > width) {
      out += line + "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
    start = end + 1;
  }
  return out + line;
}

}  // namespace

int main(int argc, char** argv) {
  cli::Context ctx;
  int64_t timeout_ms = ctx.timeout.count();
  std::string output = "table";

  CLI::App app{
      "breakeven: self-host an LLM or pay a per-token API, measured.\n"
      "Admin CLI for a breakeven cluster: nodes, benchmark matrices, results, prices."};
  app.set_version_flag("--version", kVersion);
  app.require_subcommand(1);
  app.fallthrough();  // global flags may follow the command too
  app.add_option("--scheduler", ctx.scheduler, "scheduler HOST:PORT")
      ->envname("BREAKEVEN_SCHEDULER")
      ->capture_default_str();
  app.add_option("--token-file", ctx.token_file,
                 "token file: the cluster token reads, the admin token also changes")
      ->envname("BREAKEVEN_TOKEN_FILE");
  app.add_option("--timeout-ms", timeout_ms, "deadline for connecting and for each request")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{3600000}));

  // -o for a command; `label` names it in the error for a format it lacks.
  auto add_output = [&](CLI::App* cmd, const std::string& label, bool csv) {
    std::string formats = csv ? "table, json or csv" : "table or json";
    cmd->add_option("-o,--output", output, "output format: " + formats)
        ->capture_default_str()
        ->check(CLI::Validator(
            [csv, label, formats](std::string& v) -> std::string {
              if (v == "table" || v == "json" || (csv && v == "csv")) return "";
              if (v == "csv") return "`breakeven " + label + "` has no CSV form; use table or json";
              return "'" + v + "' is not an output format; use " + formats;
            },
            csv ? "table|json|csv" : "table|json"));
  };

  // ---- Cluster
  CLI::App* nodes = app.add_subcommand("nodes", "list nodes: state, devices, memory, heartbeat");
  nodes->group(kCluster);
  add_output(nodes, "nodes", false);

  CLI::App* status = app.add_subcommand("status", "count nodes by state");
  status->group(kCluster);
  add_output(status, "status", false);

  std::string node, reason;
  CLI::App* drain = app.add_subcommand("drain", "stop placing work on a node (admin token)");
  drain->group(kCluster);
  drain->add_option("node", node, "node name")->required();
  drain->add_option("--reason", reason, "why; shown in `breakeven nodes`")->required();
  add_output(drain, "drain", false);

  CLI::App* resume = app.add_subcommand("resume", "return a drained node to service (admin token)");
  resume->group(kCluster);
  resume->add_option("node", node, "node name")->required();
  add_output(resume, "resume", false);

  unsigned limit = 50;
  CLI::App* events =
      app.add_subcommand("events", "cluster history: registrations, state changes, drains");
  events->group(kCluster);
  events->add_option("--node", node, "only this node's events");
  events->add_option("--limit", limit, "newest N events")->capture_default_str();
  add_output(events, "events", false);

  // ---- Benchmark matrices
  std::string file;
  bool dry_run = false;
  CLI::App* submit = app.add_subcommand(
      "submit", "expand a benchmark matrix (YAML) into runs and queue them (admin token)");
  submit->group(kBenchmarks);
  submit->add_option("file", file, "matrix YAML file")->required();
  submit->add_flag("--dry-run", dry_run,
                   "validate, expand and show where each run would go; queue nothing");
  add_output(submit, "submit", false);

  uint64_t matrix_id = 0;
  bool active_only = false;
  unsigned runs_limit = 0;
  CLI::App* runs = app.add_subcommand(
      "runs", "list benchmark runs: state, progress, nodes, why pending or failed");
  runs->group(kBenchmarks);
  runs->add_option("--matrix", matrix_id, "only this matrix's runs (id from `submit`)");
  runs->add_flag("--active", active_only,
                 "only runs not finished: PENDING, PLACED, STARTING, "
                 "RUNNING");
  runs->add_option("--limit", runs_limit, "newest N runs (0: the scheduler's default)")
      ->capture_default_str();
  add_output(runs, "runs", false);

  uint64_t run_id = 0;
  bool wide = false;
  CLI::App* run = app.add_subcommand("run", "one benchmark run");
  run->group(kBenchmarks);
  run->require_subcommand(1);
  CLI::App* run_show =
      run->add_subcommand("show", "a run's fields, its events and its load points' results");
  run_show->group(kSubcommands);
  run_show->add_option("id", run_id, "run id (see `breakeven runs`)")->required();
  run_show->add_flag("--wide", wide, "every column of the points table");
  add_output(run_show, "run show", false);

  CLI::App* cancel =
      app.add_subcommand("cancel", "cancel a run; its workers are stopped (admin token)");
  cancel->group(kBenchmarks);
  cancel->add_option("id", run_id, "run id")->required();
  add_output(cancel, "cancel", false);

  cli::WatchOptions watch_options;
  int64_t interval_ms = watch_options.interval.count();
  CLI::App* watch = app.add_subcommand(
      "watch", "follow runs' progress until they finish; exit status 1 if any failed");
  watch->footer(
      "On a terminal each run's line is redrawn in place with a progress bar; otherwise one line\n"
      "is printed whenever a run's state or points done change. Exits when no followed run is\n"
      "active any more, with a summary of how they ended.");
  watch->group(kBenchmarks);
  watch->add_option("--matrix", watch_options.matrix_id,
                    "this matrix's newest runs (default: every active run)");
  watch->add_option("--interval-ms", interval_ms, "time between polls")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{100}, int64_t{3600000}));
  watch->add_flag("--once", watch_options.once, "poll once, print, exit");

  // ---- Results and economics
  cli::QueryOptions query;
  std::string columns;
  auto add_columns = [&](CLI::App* cmd, bool wide) {
    CLI::Option* c = cmd->add_option("--columns", columns,
                                     "only these columns, in this order (names as in -o json)");
    if (wide) cmd->add_flag("--wide", query.wide, "every column in the text table")->excludes(c);
  };

  std::string q_matrix, q_run, q_model, q_provider;
  CLI::App* results = app.add_subcommand(
      "results", "measured load points: throughput, latency, goodput, MBU, $/Mtok");
  results->group(kEconomics);
  CLI::Option* r_matrix = results->add_option("--matrix", q_matrix, "matrix id");
  CLI::Option* r_run = results->add_option("--run", q_run, "run id");
  CLI::Option* r_model = results->add_option("--model", q_model, "model name");
  CLI::Option* r_provider =
      results->add_option("--provider", q_provider, "price $/Mtok with this GPU provider's prices");
  add_columns(results, true);
  results->footer(Wrap("Without --columns the text table shows " +
                           JoinNames(cli::DefaultResultColumns()) +
                           " (those the scheduler sends); --wide shows every column, and -o json "
                           "and -o csv carry every column.",
                       96));
  add_output(results, "results", true);

  std::string price_table;
  CLI::App* prices = app.add_subcommand(
      "prices", "the price catalog: GPU $/hour, API $/Mtok, GPU specs, settings");
  prices->group(kEconomics);
  prices->require_subcommand(0, 1);
  CLI::Option* p_table = prices->add_option("--table", price_table, "which table to list")
                             ->check(CLI::IsMember({"gpu", "api", "specs", "settings"}));
  add_output(prices, "prices", true);
  std::string price_csv;
  CLI::App* prices_import =
      prices->add_subcommand("import", "add or replace prices from a CSV file (admin token)");
  prices_import->footer(
      "The file is one table with a header row, as db/seed/gpu_prices.csv, api_prices.csv or\n"
      "gpu_specs.csv; the header says which.");
  prices_import->group(kSubcommands);
  prices_import->add_option("file", price_csv, "CSV file")->required();
  std::string setting_key, setting_value;
  CLI::App* prices_set = prices->add_subcommand(
      "set", "set a cost setting, e.g. `cpu_usd_per_hour 0.12` (admin token)");
  prices_set->group(kSubcommands);
  prices_set->add_option("key", setting_key, "setting name (see `prices --table settings`)")
      ->required();
  prices_set->add_option("value", setting_value, "new value")->required();

  const CLI::Validator provider_model(
      [](std::string& v) -> std::string {
        return v.find('/') == std::string::npos ? "expected PROVIDER/MODEL, e.g. OpenAI/gpt-4o"
                                                : "";
      },
      "PROVIDER/MODEL");
  const CLI::Validator positive(
      [](std::string& v) -> std::string {
        double x = 0;
        return CLI::detail::lexical_cast(v, x) && x > 0 ? ""
                                                        : "'" + v + "' is not a number above 0";
      },
      "> 0");
  std::string c_api, c_utilization, c_workload, c_device, c_tp;
  CLI::App* compare = app.add_subcommand(
      "compare", "self-hosted $/Mtok against an API's, and where they break even");
  compare->group(kEconomics);
  compare->add_option("--model", q_model, "model benchmarked on the cluster")->required();
  compare->add_option("--api", c_api, "API price to compare with: PROVIDER/MODEL")
      ->required()
      ->check(provider_model);
  CLI::Option* c_provider_opt =
      compare->add_option("--provider", q_provider, "GPU provider whose $/hour to use");
  CLI::Option* c_utilization_opt =
      compare
          ->add_option("--utilization", c_utilization,
                       "share of paid device hours that carry load, in (0, 1]")
          ->check(CLI::Validator(
              [](std::string& v) -> std::string {
                double u = 0;
                return CLI::detail::lexical_cast(v, u) && u > 0 && u <= 1
                           ? ""
                           : "utilization must be a number in (0, 1]";
              },
              "(0,1]"));
  CLI::Option* c_workload_opt = compare->add_option("--workload", c_workload, "only this workload");
  CLI::Option* c_device_opt = compare->add_option("--device", c_device, "only this device type");
  CLI::Option* c_tp_opt =
      compare->add_option("--tp", c_tp, "only this tensor-parallel degree")->check(positive);
  add_columns(compare, true);
  add_output(compare, "compare", true);

  std::string p_workload, p_rate, p_slo, p_compare_to;
  CLI::App* plan = app.add_subcommand(
      "plan", "cheapest measured configurations that serve a request rate within an SLO");
  plan->group(kEconomics);
  plan->add_option("--model", q_model, "model")->required();
  plan->add_option("--workload", p_workload, "workload the rate is of (name or IN/OUT)")
      ->required();
  plan->add_option("--rate", p_rate, "requests per second to serve")->required()->check(positive);
  CLI::Option* p_slo_opt =
      plan->add_option("--slo", p_slo, "latency objectives, e.g. ttft_p95=500ms,tpot_p95=50ms");
  CLI::Option* p_provider_opt =
      plan->add_option("--provider", q_provider, "GPU provider whose $/hour to use");
  CLI::Option* p_compare_opt = plan->add_option("--compare-to", p_compare_to,
                                                "API to price the same traffic at: PROVIDER/MODEL")
                                   ->check(provider_model);
  add_columns(plan, true);
  add_output(plan, "plan", true);

  // ---- This machine
  bench::LocalRunOptions bench;
  int64_t bench_timeout_s = 600;
  CLI::App* bench_cmd = app.add_subcommand(
      "bench", "one benchmark on this machine: a worker process per tensor-parallel rank");
  bench_cmd->group(kLocal);
  bench_cmd->add_option("--model", bench.model, "catalog model (see `breakeven models`)");
  bench_cmd
      ->add_option("--weights", bench.weights, "dummy, a Hugging Face directory or a .gguf file")
      ->capture_default_str();
  bench_cmd->add_option("--dtype", bench.dtype, "weight storage: f32, bf16, f16")
      ->capture_default_str();
  bench_cmd->add_option("--tp", bench.tp, "tensor-parallel degree")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  bench_cmd
      ->add_option("--collectives", bench.collectives,
                   "how ranks exchange tensors: shm (shared memory, one host), gloo (TCP) or "
                   "nccl (GPU memory, --backend cuda)")
      ->capture_default_str()
      ->check(CLI::IsMember({"shm", "gloo", "nccl"}));
  bench_cmd->add_option("--workload", bench.workload, "IN:OUT prompt and output tokens")
      ->capture_default_str();
  bench_cmd->add_option("--concurrency", bench.concurrency, "requests in flight (closed loop)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  bench_cmd->add_option("--requests", bench.requests, "requests to complete")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  bench_cmd->add_option("--backend", bench.backend, "cpu or cuda")->capture_default_str();
  bench_cmd->add_option("--seed", bench.seed, "seed of dummy weights and prompts")
      ->capture_default_str();
  bench_cmd->add_option("--threads", bench.threads, "threads per rank (0: cores / tp)")
      ->capture_default_str();
  bench_cmd->add_option("--kv-cache-mib", bench.kv_cache_mib, "KV cache per rank")
      ->capture_default_str();
  bench_cmd->add_option("--max-num-seqs", bench.max_num_seqs, "sequences per step")
      ->capture_default_str();
  bench_cmd
      ->add_option("--max-num-batched-tokens", bench.max_num_batched_tokens,
                   "token budget per step")
      ->capture_default_str();
  bench_cmd->add_option("--temperature", bench.temperature, "0: greedy")->capture_default_str();
  bench_cmd->add_option("--n", bench.n, "samples per prompt")->capture_default_str();
  bench_cmd->add_option("--keep", bench.keep_dir, "keep worker logs and reports in this directory");
  bench_cmd->add_option("--timeout-s", bench_timeout_s, "give up after this long")
      ->capture_default_str();
  add_output(bench_cmd, "bench", false);

  cli::DemoOptions demo;
  CLI::App* demo_cmd = app.add_subcommand(
      "demo",
      "start a scheduler and two CPU nodes on loopback, run examples/demo.yaml, show results and "
      "economics");
  demo_cmd->group(kLocal);
  demo_cmd->add_option("--dir", demo.dir, "token, database and logs go here")
      ->capture_default_str();
  demo_cmd->add_option("--matrix", demo.matrix, "matrix file (default: examples/demo.yaml)");
  demo_cmd->add_option("--port", demo.port, "scheduler port (default: any free one)");
  demo_cmd->add_option("--api", demo.api, "API to compare against (PROVIDER/MODEL)")
      ->capture_default_str();
  demo_cmd->add_option("--rate", demo.rate, "requests/s for the capacity plan")
      ->capture_default_str();
  demo_cmd->add_option("--slo", demo.slo, "SLO for the capacity plan")->capture_default_str();
  demo_cmd->add_flag("--keep", demo.keep, "leave the cluster running afterwards");

  cli::GemmSweepOptions sweep;
  CLI::App* sweep_cmd = app.add_subcommand(
      "gemm-sweep",
      "time a weight matrix times N columns for each N: where a product stops being memory-bound");
  sweep_cmd->group(kLocal);
  sweep_cmd->add_option("--backend", sweep.backend, "cpu (OpenBLAS fp32) or cuda (cuBLAS bf16)")
      ->capture_default_str();
  sweep_cmd->add_option("--device", sweep.device, "CUDA device ordinal")->capture_default_str();
  sweep_cmd->add_option("--m", sweep.m, "rows of W (output features)")->capture_default_str();
  sweep_cmd->add_option("--k", sweep.k, "columns of W (input features)")->capture_default_str();
  sweep_cmd->add_option("--n", sweep.n, "columns of X to time, comma-separated")
      ->capture_default_str();
  sweep_cmd->add_option("--repeats", sweep.repeats, "timed runs per N; the median is shown")
      ->capture_default_str();
  add_output(sweep_cmd, "gemm-sweep", false);

  CLI::App* models =
      app.add_subcommand("models", "the model catalog: shapes, sizes, KV bytes per token");
  models->group(kLocal);
  add_output(models, "models", false);

  app.footer(kFooter);  // after the subcommands, which would inherit it
  CLI11_PARSE(app, argc, argv);
  ctx.timeout = Millis(timeout_ms);
  ctx.output = output == "json"  ? cli::Output::kJson
               : output == "csv" ? cli::Output::kCsv
                                 : cli::Output::kTable;

  if (*nodes) return cli::CmdNodes(ctx);
  if (*status) return cli::CmdStatus(ctx);
  if (*drain) return cli::CmdDrain(ctx, node, reason);
  if (*resume) return cli::CmdResume(ctx, node);
  if (*events) return cli::CmdEvents(ctx, node, limit);

  if (*submit) return cli::CmdSubmit(ctx, file, dry_run);
  if (*runs) return cli::CmdRuns(ctx, matrix_id, active_only, runs_limit);
  if (*run_show) return cli::CmdRunShow(ctx, run_id, wide);
  if (*cancel) return cli::CmdCancel(ctx, run_id);
  if (*watch) {
    watch_options.interval = Millis(interval_ms);
    return cli::CmdWatch(ctx, watch_options);
  }

  query.columns = cli::ParseColumnList(columns);
  if (!columns.empty() && query.columns.empty()) {
    fmt::print(stderr, "breakeven: --columns: no column names in '{}'\n", columns);
    return 1;
  }
  // Only the flags given become query arguments; the scheduler applies its own defaults.
  auto put = [&](CLI::Option* option, const char* key, const std::string& value) {
    if (option->count() > 0) query.args[key] = value;
  };
  if (*results) {
    query.kind = "results";
    put(r_matrix, "matrix", q_matrix);
    put(r_run, "run", q_run);
    put(r_model, "model", q_model);
    put(r_provider, "provider", q_provider);
    query.default_columns = cli::DefaultResultColumns();
    return cli::CmdQuery(ctx, query);
  }
  if (*prices_import) return cli::CmdPricesImport(ctx, price_csv);
  if (*prices_set) return cli::CmdSetSetting(ctx, setting_key, setting_value);
  if (*prices) {
    query.kind = "prices";
    put(p_table, "table", price_table);
    return cli::CmdQuery(ctx, query);
  }
  if (*compare) {
    query.kind = "compare";
    query.args["model"] = q_model;
    query.args["api"] = c_api;
    put(c_provider_opt, "provider", q_provider);
    put(c_utilization_opt, "utilization", c_utilization);
    put(c_workload_opt, "workload", c_workload);
    put(c_device_opt, "device", c_device);
    put(c_tp_opt, "tp", c_tp);
    query.default_columns = cli::DefaultCompareColumns();
    return cli::CmdQuery(ctx, query);
  }
  if (*plan) {
    query.kind = "plan";
    query.args["model"] = q_model;
    query.args["workload"] = p_workload;
    query.args["rate"] = p_rate;
    put(p_slo_opt, "slo", p_slo);
    put(p_provider_opt, "provider", q_provider);
    put(p_compare_opt, "compare_to", p_compare_to);
    query.default_columns = cli::DefaultPlanColumns();
    return cli::CmdQuery(ctx, query);
  }

  if (*bench_cmd) {
    bench.timeout = Millis(bench_timeout_s * 1000);
    return cli::CmdBench(bench, ctx.output);
  }
  if (*models) return cli::CmdModels(ctx.output);
  if (*sweep_cmd) return cli::CmdGemmSweep(sweep, ctx.output);
  if (*demo_cmd) return cli::CmdDemo(demo);
  return 2;
}
