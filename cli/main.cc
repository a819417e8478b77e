// breakeven: the admin CLI.
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/local_bench.h"
#include "common/version.h"

using namespace breakeven;

int main(int argc, char** argv) {
  cli::Context ctx;
  int64_t timeout_ms = ctx.timeout.count();
  std::string output = "table";

  CLI::App app{"breakeven: self-host or API, measured. Admin CLI for a breakeven cluster."};
  app.set_version_flag("--version", kVersion);
  app.require_subcommand(1);
  app.add_option("--scheduler", ctx.scheduler, "scheduler HOST:PORT")
      ->envname("BREAKEVEN_SCHEDULER")
      ->capture_default_str();
  app.add_option("--token-file", ctx.token_file,
                 "token file: the cluster token reads, the admin token also changes")
      ->envname("BREAKEVEN_TOKEN_FILE");
  app.add_option("--timeout-ms", timeout_ms, "deadline for connecting and for each request")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{3600000}));

  auto add_output = [&](CLI::App* cmd) {
    cmd->add_option("-o,--output", output, "table or json")
        ->capture_default_str()
        ->check(CLI::IsMember({"table", "json"}));
  };

  CLI::App* nodes = app.add_subcommand("nodes", "list nodes: state, devices, memory, heartbeat");
  add_output(nodes);

  CLI::App* status = app.add_subcommand("status", "count nodes by state");
  add_output(status);

  std::string node, reason;
  CLI::App* drain = app.add_subcommand("drain", "stop placing work on a node (admin token)");
  drain->add_option("node", node, "node name")->required();
  drain->add_option("--reason", reason, "why; shown in `breakeven nodes`")->required();
  add_output(drain);

  CLI::App* resume = app.add_subcommand("resume", "return a drained node to service (admin token)");
  resume->add_option("node", node, "node name")->required();
  add_output(resume);

  unsigned limit = 50;
  CLI::App* events =
      app.add_subcommand("events", "cluster history: registrations, state changes, drains");
  events->add_option("--node", node, "only this node's events");
  events->add_option("--limit", limit, "newest N events")->capture_default_str();
  add_output(events);

  bench::LocalRunOptions bench;
  int64_t bench_timeout_s = 600;
  CLI::App* bench_cmd = app.add_subcommand(
      "bench", "run one benchmark on this machine: one worker process per tensor-parallel rank");
  bench_cmd->add_option("--model", bench.model, "catalog model (see `breakeven models`)");
  bench_cmd
      ->add_option("--weights", bench.weights, "dummy, a Hugging Face directory or a .gguf file")
      ->capture_default_str();
  bench_cmd->add_option("--dtype", bench.dtype, "weight storage: f32, bf16, f16")
      ->capture_default_str();
  bench_cmd->add_option("--tp", bench.tp, "tensor-parallel degree")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  bench_cmd->add_option("--collectives", bench.collectives,
                        "how ranks exchange tensors: shm (shared memory, one host) or gloo (TCP)")
      ->capture_default_str()
      ->check(CLI::IsMember({"shm", "gloo"}));
  bench_cmd->add_option("--workload", bench.workload, "IN:OUT prompt and output tokens")
      ->capture_default_str();
  bench_cmd->add_option("--concurrency", bench.concurrency, "requests in flight (closed loop)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  bench_cmd->add_option("--requests", bench.requests, "requests to complete")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  bench_cmd->add_option("--backend", bench.backend, "cpu")->capture_default_str();
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
  add_output(bench_cmd);

  CLI::App* models =
      app.add_subcommand("models", "the model catalog: shapes, sizes, KV bytes per token");
  add_output(models);

  CLI11_PARSE(app, argc, argv);
  ctx.timeout = Millis(timeout_ms);
  ctx.output = output == "json" ? cli::Output::kJson : cli::Output::kTable;

  if (*nodes) return cli::CmdNodes(ctx);
  if (*status) return cli::CmdStatus(ctx);
  if (*drain) return cli::CmdDrain(ctx, node, reason);
  if (*resume) return cli::CmdResume(ctx, node);
  if (*events) return cli::CmdEvents(ctx, node, limit);
  if (*bench_cmd) {
    bench.timeout = Millis(bench_timeout_s * 1000);
    return cli::CmdBench(bench, ctx.output);
  }
  if (*models) return cli::CmdModels(ctx.output);
  return 2;
}
