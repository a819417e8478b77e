// breakeven-worker: one tensor-parallel rank of a benchmark run, one process per rank, started
// with an argument vector by `breakeven bench` (standalone: --workload, --concurrency,
// --requests) or by a node agent (cluster: --load-json with the run's whole load plan,
// --scheduler for the rendezvous, and --events to stream each finished load point to stdout as
// one JSON line for the agent to forward). Rank 0 serves live metrics with --metrics-listen and,
// with --events, prints the address it bound as {"metrics_address": "HOST:PORT"}.
#include <google/protobuf/util/json_util.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "common/version.h"
#include "node/worker.h"

using namespace breakeven;

namespace {

Status ParseWorkload(const std::string& text, int64_t* in, int64_t* out) {
  size_t colon = text.find(':');
  try {
    if (colon == std::string::npos) throw std::invalid_argument("no colon");
    size_t used = 0;
    *in = std::stoll(text.substr(0, colon), &used);
    if (used != colon) throw std::invalid_argument("junk");
    *out = std::stoll(text.substr(colon + 1), &used);
    if (used != text.size() - colon - 1) throw std::invalid_argument("junk");
  } catch (const std::exception&) {
    return InvalidArgument(
        "--workload: '{}' is not IN:OUT (prompt and output tokens, e.g. 128:128)", text);
  }
  if (*in < 1 || *out < 1) return InvalidArgument("--workload: both lengths must be at least 1");
  return Status::Ok();
}

void WriteReport(const std::string& path, const nlohmann::ordered_json& report) {
  if (path.empty()) return;
  std::ofstream(path + ".tmp") << report.dump(2) << "\n";
  std::rename((path + ".tmp").c_str(), path.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  // A worker lives only as long as the process that started it (a node agent, `breakeven
  // bench`): if that dies, even by SIGKILL, the worker is told to stop rather than run its load
  // plan on a device nobody supervises. The agent starts workers from its long-lived thread.
  const pid_t parent = getppid();
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) return 1;  // the parent died before prctl took effect
  node::WorkerOptions o;
  std::string workload = "128:128", dtype = "f32", report_path, load_json;
  int64_t concurrency = 1, requests = 8;
  bool events = false;
  int64_t timeout_ms = o.timeout.count();

  CLI::App app{"breakeven-worker: one tensor-parallel rank of a benchmark run"};
  app.set_version_flag("--version", kVersion);
  app.add_option("--model", o.model, "catalog model (required with --weights dummy)");
  app.add_option("--weights", o.weights, "dummy, a Hugging Face directory or a .gguf file")
      ->capture_default_str();
  app.add_option("--seed", o.seed, "seed of dummy weights and prompts")->capture_default_str();
  app.add_option("--dtype", dtype, "weight storage: f32, bf16 or f16")->capture_default_str();
  app.add_option("--tp", o.tp, "tensor-parallel degree")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  app.add_option("--rank", o.rank, "this rank")->capture_default_str();
  app.add_option("--store", o.store_dir, "rendezvous directory shared by the ranks");
  app.add_option("--group", o.group, "rendezvous key prefix (run id / attempt)")
      ->capture_default_str();
  app.add_option("--host", o.host, "address to listen on for peers (gloo)")->capture_default_str();
  app.add_option("--collectives", o.collectives,
                 "shm (one host), gloo (TCP) or nccl (--backend cuda only: tensors through "
                 "NCCL, step plans over shm when every rank has the same --host, else gloo)")
      ->capture_default_str()
      ->check(CLI::IsMember({"shm", "gloo", "nccl"}));
  app.add_option("--timeout-ms", timeout_ms, "deadline of rendezvous and collectives")
      ->capture_default_str();
  app.add_option("--backend", o.backend, "compute backend")->capture_default_str();
  std::string graphs = "on";
  app.add_option("--graphs", graphs, "decode steps as CUDA graphs (cuda backend): on or off")
      ->capture_default_str()
      ->check(CLI::IsMember({"on", "off"}));
  app.add_option("--threads", o.threads, "threads for matrix products (0: cores / tp)")
      ->capture_default_str();
  app.add_option("--kv-cache-mib", o.kv_cache_mib, "KV cache per rank")->capture_default_str();
  app.add_option("--max-model-len", o.max_model_len, "longest sequence (0: from the workload)")
      ->capture_default_str();
  app.add_option("--max-num-seqs", o.engine.max_num_seqs, "sequences per step")
      ->capture_default_str();
  app.add_option("--max-num-batched-tokens", o.engine.max_num_batched_tokens, "tokens per step")
      ->capture_default_str();
  app.add_option("--workload", workload, "IN:OUT tokens per request (standalone)")
      ->capture_default_str();
  app.add_option("--concurrency", concurrency, "requests in flight (standalone)")
      ->capture_default_str();
  app.add_option("--requests", requests, "requests to complete (standalone)")
      ->capture_default_str();
  app.add_option("--n", o.load.workload.samples, "samples per prompt (standalone)")
      ->capture_default_str();
  app.add_option("--load-json", load_json,
                 "workload, load plan, SLO and seed as JSON (cluster; replaces the standalone "
                 "load options)");
  app.add_option("--temperature", o.sampling.temperature, "0: greedy")->capture_default_str();
  app.add_option("--top-k", o.sampling.top_k, "0: off")->capture_default_str();
  app.add_option("--top-p", o.sampling.top_p, "1: off")->capture_default_str();
  app.add_option("--scheduler", o.scheduler,
                 "HOST:PORT: rendezvous through the scheduler (token in $BREAKEVEN_TOKEN)");
  app.add_option("--peak-bandwidth-gb-s", o.peak_bandwidth_gb_s,
                 "measured bandwidth of the run's devices, for MBU");
  app.add_option("--peak-matmul-tflops", o.peak_matmul_tflops,
                 "measured matrix rate of the run's devices, for MFU");
  app.add_flag("--events", events, "rank 0: print each finished load point as a JSON line");
  app.add_option("--metrics-listen", o.metrics_listen,
                 "rank 0: HOST:PORT to serve Prometheus /metrics on (port 0: any free port)");
  app.add_option("--run-id", o.run_id, "run id label of the metrics")->capture_default_str();
  app.add_option("--attempt", o.attempt, "attempt label of the metrics")->capture_default_str();
  app.add_option("--report", report_path, "JSON report file");
  CLI11_PARSE(app, argc, argv);

  auto fail = [&](const Status& s) {
    fmt::print(stderr, "breakeven-worker rank {}: {}\n", o.rank, s.message());
    WriteReport(report_path, {{"ok", false}, {"rank", o.rank}, {"error", s.message()}});
    return 1;
  };
  o.timeout = Millis(timeout_ms);
  if (!load_json.empty()) {
    Result<bench::RunLoad> load = bench::DecodeLoadJson(load_json);
    if (!load.ok()) return fail(load.status().WithContext("--load-json"));
    o.load = *load;
  } else {
    // Standalone: one closed-loop point of exactly `requests` requests, nothing discarded.
    bench::WorkloadSpec& w = o.load.workload;
    if (Status s = ParseWorkload(workload, &w.input_tokens, &w.output_tokens); !s.ok()) {
      return fail(s);
    }
    w.name = fmt::format("{}/{}", w.input_tokens, w.output_tokens);
    o.load.seed = o.seed;
    o.load.plan.pattern = bench::LoadPattern::kConcurrency;
    o.load.plan.concurrency = {concurrency};
    o.load.plan.max_requests = requests;
    o.load.plan.warmup_s = 0;
    o.load.plan.duration_s = 1e9;  // the request count ends the point
    if (Status s = o.load.plan.Validate(); !s.ok()) return fail(s);
    if (Status s = w.Validate(); !s.ok()) return fail(s);
  }
  if (const char* token = std::getenv("BREAKEVEN_TOKEN")) o.token = token;
  if (!o.scheduler.empty() && o.token.empty())
    return fail(InvalidArgument("--scheduler needs the cluster token in $BREAKEVEN_TOKEN"));
  if (events && o.rank == 0) {
    o.on_point = [](const v1::PointResult& point) {
      std::string json;
      google::protobuf::util::JsonPrintOptions jo;
      jo.preserve_proto_field_names = true;
      (void)google::protobuf::util::MessageToJsonString(point, &json, jo);
      std::fputs(fmt::format("{{\"point\":{}}}\n", json).c_str(), stdout);
      std::fflush(stdout);
    };
  }
  if (events && o.rank == 0) {
    o.on_metrics_address = [](const HostPort& bound) {
      std::fputs(fmt::format("{{\"metrics_address\":\"{}\"}}\n", bound.ToString()).c_str(), stdout);
      std::fflush(stdout);
    };
  }
  auto parsed = ParseDType(dtype);
  if (!parsed) return fail(InvalidArgument("--dtype: '{}' is not f32, bf16 or f16", dtype));
  o.weight_dtype = *parsed;
  o.graphs = graphs == "on";
  if (o.rank < 0 || o.rank >= o.tp)
    return fail(InvalidArgument("--rank {} is outside --tp {}", o.rank, o.tp));
  if (o.tp > 1 && o.store_dir.empty() && o.scheduler.empty())
    return fail(InvalidArgument("--store or --scheduler is required when --tp > 1"));
  if (o.threads == 0) {
    o.threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / o.tp);
  }

  Result<nlohmann::ordered_json> report = node::RunWorker(o);
  if (!report.ok()) return fail(report.status());
  WriteReport(report_path, *report);
  return 0;
}
