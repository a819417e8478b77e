#include "node/worker.h"

#include <fstream>

#include "engine/communicator.h"
#include "engine/model.h"
#include "engine/sharding.h"
#include "engine/weights.h"
#include "kernels/backend.h"
#include "kernels/device.h"
#include "node/metrics_endpoint.h"
#include "node/scheduler_store.h"
#include "node/worker_metrics.h"

namespace breakeven::node {

namespace {

nlohmann::ordered_json SummaryJson(const bench::Summary& s) {
  return {{"mean", s.mean}, {"p50", s.p50}, {"p90", s.p90},    {"p95", s.p95},
          {"p99", s.p99},   {"max", s.max}, {"count", s.count}};
}

nlohmann::ordered_json MetricsJson(const bench::ServingMetrics& m) {
  return {{"requests", m.requests},
          {"failed", m.failed},
          {"input_tokens", m.input_tokens},
          {"output_tokens", m.output_tokens},
          {"duration_s", m.duration_s},
          {"output_tokens_per_s", m.output_tokens_per_s},
          {"total_tokens_per_s", m.total_tokens_per_s},
          {"requests_per_s", m.requests_per_s},
          {"goodput_requests_per_s", m.goodput_requests_per_s},
          {"slo_attainment", m.slo_attainment},
          {"meets_slo", m.meets_slo},
          {"ttft_ms", SummaryJson(m.ttft_ms)},
          {"tpot_ms", SummaryJson(m.tpot_ms)},
          {"itl_ms", SummaryJson(m.itl_ms)},
          {"e2e_ms", SummaryJson(m.e2e_ms)}};
}

// NCCL for the tensors, with a host group for the step plans: shared memory when every rank
// listens on the same address (one host), Gloo otherwise. Each rank publishes its --host under
// "<group>/hosts/<rank>" and reads everyone's, so all ranks make the same choice.
Result<std::unique_ptr<engine::Communicator>> CreateNcclGroup(engine::Store& store,
                                                              const engine::GroupOptions& go,
                                                              const kernels::Backend& backend) {
  BE_RETURN_IF_ERROR(store.Set(fmt::format("{}/hosts/{}", go.prefix, go.rank), go.host));
  bool one_host = true;
  for (int r = 0; r < go.world_size; ++r) {
    BE_ASSIGN_OR_RETURN(std::string host,
                        store.Get(fmt::format("{}/hosts/{}", go.prefix, r), go.timeout));
    one_host = one_host && host == go.host;
  }
  std::unique_ptr<engine::Communicator> host_group;
  if (one_host) {
    BE_ASSIGN_OR_RETURN(host_group, engine::CreateSharedMemoryCommunicator(store, go));
  } else {
    BE_ASSIGN_OR_RETURN(host_group, engine::CreateGlooCommunicator(store, go));
  }
  engine::GroupOptions nccl = go;
  nccl.prefix = go.prefix + "/nccl";
  return engine::CreateNcclCommunicator(store, nccl, backend.native_stream(),
                                        static_cast<int>(backend.device().index),
                                        std::move(host_group));
}

void FillLatency(const bench::Summary& s, v1::LatencySummary* out) {
  out->set_mean(s.mean);
  out->set_p50(s.p50);
  out->set_p90(s.p90);
  out->set_p95(s.p95);
  out->set_p99(s.p99);
  out->set_max(s.max);
  out->set_count(s.count);
}

}  // namespace

int64_t PeakRssBytes() {
  std::ifstream in("/proc/self/status");
  std::string key;
  while (in >> key) {
    if (key == "VmHWM:") {
      int64_t kib = 0;
      in >> kib;
      return kib * 1024;
    }
    std::string rest;
    std::getline(in, rest);
  }
  return 0;
}

double ModelBandwidthUtilization(const UtilizationInputs& in, double peak_bandwidth_gb_s) {
  if (peak_bandwidth_gb_s <= 0 || in.wall_seconds <= 0) return 0;
  const double bytes =
      in.weight_bytes_per_step * static_cast<double>(in.steps) +
      in.kv_bytes_per_context_token * in.average_context * static_cast<double>(in.decode_tokens);
  return bytes / in.wall_seconds / (peak_bandwidth_gb_s * 1e9);
}

double ModelFlopsUtilization(const UtilizationInputs& in, double peak_matmul_tflops) {
  if (peak_matmul_tflops <= 0 || in.wall_seconds <= 0) return 0;
  const double flops =
      in.matmul_flops_per_token * static_cast<double>(in.prefill_tokens + in.decode_tokens);
  return flops / in.wall_seconds / (peak_matmul_tflops * 1e12);
}

v1::PointResult ToPointResult(const bench::PointRun& run, int index, int planned, double mbu,
                              double mfu) {
  v1::PointResult p;
  p.set_index(static_cast<uint32_t>(index));
  p.set_planned(static_cast<uint32_t>(std::max(planned, 0)));
  p.set_kind(std::string(bench::PointKindName(run.spec.kind)));
  p.set_target(run.spec.target);
  const bench::ServingMetrics& m = run.metrics;
  v1::PointMetrics* pm = p.mutable_metrics();
  pm->set_requests(m.requests);
  pm->set_failed(m.failed);
  pm->set_input_tokens(m.input_tokens);
  pm->set_output_tokens(m.output_tokens);
  pm->set_duration_s(m.duration_s);
  pm->set_requests_per_s(m.requests_per_s);
  pm->set_output_tokens_per_s(m.output_tokens_per_s);
  pm->set_total_tokens_per_s(m.total_tokens_per_s);
  pm->set_goodput_requests_per_s(m.goodput_requests_per_s);
  pm->set_slo_attainment(m.slo_attainment);
  pm->set_meets_slo(m.meets_slo);
  FillLatency(m.ttft_ms, pm->mutable_ttft_ms());
  FillLatency(m.tpot_ms, pm->mutable_tpot_ms());
  FillLatency(m.itl_ms, pm->mutable_itl_ms());
  FillLatency(m.e2e_ms, pm->mutable_e2e_ms());
  pm->set_mbu(mbu);
  pm->set_mfu(mfu);
  pm->set_send_error_p99_ms(run.send_error_ms.p99);

  // Request times relative to the point's first arrival.
  int64_t origin = run.records.empty() ? 0 : run.records.front().arrival_ns;
  for (const bench::RequestRecord& r : run.records) origin = std::min(origin, r.arrival_ns);
  auto ms = [&](int64_t ns) { return static_cast<double>(ns - origin) / 1e6; };
  v1::RequestColumns* c = p.mutable_requests();
  for (const bench::RequestRecord& r : run.records) {
    c->add_arrival_ms(ms(r.arrival_ns));
    c->add_sent_ms(ms(r.sent_ns));
    c->add_first_token_ms(r.token_times_ns.empty() ? -1 : ms(r.token_times_ns.front()));
    c->add_last_token_ms(r.token_times_ns.empty() ? -1 : ms(r.token_times_ns.back()));
    c->add_input_tokens(static_cast<uint32_t>(r.input_tokens));
    c->add_output_tokens(static_cast<uint32_t>(r.output_tokens));
    c->add_chunks(static_cast<uint32_t>(r.chunks()));
    c->add_ok(r.ok);
  }
  return p;
}

Result<nlohmann::ordered_json> RunWorker(const WorkerOptions& o) {
  if (o.collectives != "shm" && o.collectives != "gloo" && o.collectives != "nccl") {
    return InvalidArgument("--collectives: '{}' is not shm, gloo or nccl", o.collectives);
  }
  if (o.collectives == "nccl" && o.backend != "cuda") {
    return InvalidArgument(
        "--collectives nccl needs --backend cuda (NCCL moves GPU memory), not --backend {}",
        o.backend);
  }
  engine::ModelConfig config;
  BE_ASSIGN_OR_RETURN(auto source, engine::OpenWeights(o.weights, o.model, o.seed, &config));
  // Live metrics come up before the (possibly long) model load, so a dashboard sees the run
  // from its start. Declared before the executor: they outlive its step thread.
  std::unique_ptr<WorkerMetrics> live;
  std::unique_ptr<MetricsEndpoint> endpoint;
  if (o.rank == 0 && !o.metrics_listen.empty()) {
    BE_ASSIGN_OR_RETURN(
        HostPort at, ParseHostPort(o.metrics_listen, "--metrics-listen", /*allow_port_zero=*/true));
    live = std::make_unique<WorkerMetrics>(o.run_id, o.attempt,
                                           o.model.empty() ? config.name : o.model);
    BE_ASSIGN_OR_RETURN(endpoint, MetricsEndpoint::Start(at, live->registry(), "--metrics-listen"));
    if (o.on_metrics_address) o.on_metrics_address(endpoint->bound());
  }
  BE_ASSIGN_OR_RETURN(engine::ShardPlan shard, engine::ShardPlan::Make(config, o.tp, o.rank));
  const bench::WorkloadSpec& workload = o.load.workload;
  BE_RETURN_IF_ERROR(workload.Validate());

  kernels::BackendOptions bo;
  bo.threads = o.threads;
  if (o.backend == "cuda") {
    // A node agent gives each rank one device (CUDA_VISIBLE_DEVICES); a standalone run on a
    // machine with several spreads the ranks over the ones it sees.
    int cuda_devices = 0;
    for (const kernels::DeviceInfo& d : kernels::DiscoverDevices().devices) {
      if (d.kind == kernels::DeviceKind::kCuda) ++cuda_devices;
    }
    if (cuda_devices > 0) bo.device = o.rank % cuda_devices;
  }
  BE_ASSIGN_OR_RETURN(auto backend, kernels::CreateBackend(o.backend, bo));

  // Fail early, with numbers, when the shard cannot fit.
  const int64_t shard_bytes =
      config.WeightBytes(o.weight_dtype) / o.tp + o.kv_cache_mib * (int64_t{1} << 20);
  const int64_t device_bytes = static_cast<int64_t>(backend->device().memory_bytes);
  if (device_bytes > 0 && shard_bytes > device_bytes) {
    return ResourceExhausted(
        "{} at tp {} needs about {:.1f} GiB per rank ({} weights + {} MiB KV cache); the {} "
        "device has {:.1f} GiB",
        config.name, o.tp, shard_bytes / double(1 << 30), DTypeName(o.weight_dtype), o.kv_cache_mib,
        o.backend, device_bytes / double(1 << 30));
  }

  std::unique_ptr<engine::Communicator> comm;
  std::unique_ptr<engine::Store> store;
  if (o.tp == 1) {
    comm = engine::MakeSingleRankCommunicator();
  } else {
    if (!o.scheduler.empty()) {
      BE_ASSIGN_OR_RETURN(HostPort at, ParseHostPort(o.scheduler, "--scheduler"));
      BE_ASSIGN_OR_RETURN(store, SchedulerStore::Connect(at, o.token, Millis(10000)));
    } else {
      BE_ASSIGN_OR_RETURN(store, engine::FileStore::Open(o.store_dir));
    }
    engine::GroupOptions go;
    go.prefix = o.group;
    go.rank = o.rank;
    go.world_size = o.tp;
    go.host = o.host;
    go.timeout = o.timeout;
    if (o.collectives == "gloo") {
      BE_ASSIGN_OR_RETURN(comm, engine::CreateGlooCommunicator(*store, go));
    } else if (o.collectives == "shm") {
      BE_ASSIGN_OR_RETURN(comm, engine::CreateSharedMemoryCommunicator(*store, go));
    } else {
      BE_ASSIGN_OR_RETURN(comm, CreateNcclGroup(*store, go, *backend));
    }
  }

  engine::ModelOptions mo;
  mo.weight_dtype = o.weight_dtype;
  mo.graphs = o.graphs;
  mo.block_size = o.block_size;
  mo.max_tokens_per_step = o.engine.max_num_batched_tokens;
  const int64_t workload_len = workload.input_tokens + workload.output_tokens;
  mo.max_model_len = o.max_model_len > 0 ? o.max_model_len
                                         : std::min(config.max_position_embeddings,
                                                    std::max<int64_t>(workload_len, 4096));
  if (workload_len > mo.max_model_len) {
    return InvalidArgument(
        "workload {}: {} prompt + {} output tokens exceed {}'s context limit of {} tokens",
        workload.name, workload.input_tokens, workload.output_tokens, config.name,
        mo.max_model_len);
  }
  const int64_t block_bytes = engine::KvCacheStorage::BlockBytes(
      config.num_layers, o.block_size, shard.num_kv_heads, config.head_dim);
  mo.num_kv_blocks = o.kv_cache_mib * (int64_t{1} << 20) / block_bytes;
  if (mo.num_kv_blocks < 1)
    return InvalidArgument("--kv-cache-mib {} holds no block", o.kv_cache_mib);

  auto t0 = std::chrono::steady_clock::now();
  BE_ASSIGN_OR_RETURN(auto model,
                      engine::LlamaModel::Load(config, shard, *source, *backend, *comm, mo));
  const double load_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  nlohmann::ordered_json report = {{"ok", true}, {"rank", o.rank}};
  if (o.rank != 0) {
    BE_RETURN_IF_ERROR(engine::RunFollower(*model, *comm));
  } else {
    engine::EngineConfig engine_config = o.engine;
    if (live) {
      engine_config.on_step = [m = live.get()](const engine::StepStats& s) { m->OnStep(s); };
    }
    BE_ASSIGN_OR_RETURN(auto executor, engine::Executor::Start(*model, *comm, engine_config));
    auto target = bench::MakeExecutorTarget(*executor);
    if (live) target = live->Instrument(std::move(target));
    bench::LoadGenerator generator(*target, workload, config.vocab_size, o.sampling, o.load.seed);

    // MBU and MFU of each point from what the engine did while it ran.
    UtilizationInputs util;
    util.weight_bytes_per_step = static_cast<double>(model->decode_weight_bytes()) * o.tp;
    util.kv_bytes_per_context_token =
        2.0 * config.num_layers * config.num_kv_heads * config.head_dim * 4;
    util.average_context =
        static_cast<double>(workload.input_tokens) + workload.output_tokens / 2.0;
    util.matmul_flops_per_token = static_cast<double>(config.MatmulFlopsPerToken());
    engine::EngineStats before = executor->stats();
    auto before_time = std::chrono::steady_clock::now();
    const int planned = bench::PlannedPoints(o.load.plan);
    nlohmann::ordered_json points = nlohmann::ordered_json::array();

    auto on_point = [&](const bench::PointRun& run, int index) {
      engine::EngineStats now = executor->stats();
      auto now_time = std::chrono::steady_clock::now();
      UtilizationInputs in = util;
      in.wall_seconds = std::chrono::duration<double>(now_time - before_time).count();
      in.steps = now.steps - before.steps;
      in.prefill_tokens = now.prefill_tokens - before.prefill_tokens;
      in.decode_tokens = now.decode_tokens - before.decode_tokens;
      before = now;
      before_time = now_time;
      const double mbu = ModelBandwidthUtilization(in, o.peak_bandwidth_gb_s);
      const double mfu = ModelFlopsUtilization(in, o.peak_matmul_tflops);
      points.push_back({{"index", index},
                        {"kind", bench::PointKindName(run.spec.kind)},
                        {"target", run.spec.target},
                        {"mbu", mbu},
                        {"mfu", mfu},
                        {"send_error_p99_ms", run.send_error_ms.p99},
                        {"metrics", MetricsJson(run.metrics)}});
      if (o.on_point) o.on_point(ToPointResult(run, index, planned, mbu, mfu));
    };
    auto runs = bench::RunPlan(generator, o.load.plan, o.load.slo, on_point);
    Status stopped = executor->Shutdown();
    if (!runs.ok()) return runs.status();
    BE_RETURN_IF_ERROR(stopped);
    engine::EngineStats st = executor->stats();
    report["model"] = config.name;
    report["weights"] = source->Describe();
    report["weight_dtype"] = DTypeName(o.weight_dtype);
    report["backend"] = o.backend;
    report["device"] = backend->device().name;
    report["tp"] = o.tp;
    report["collectives"] = o.tp > 1 ? o.collectives : "none";
    const bench::LoadPlan& plan = o.load.plan;
    report["workload"] = {
        {"name", workload.name},
        {"input_tokens", workload.input_tokens},
        {"output_tokens", workload.output_tokens},
        {"prefix_tokens", workload.prefix_tokens},
        {"n", workload.samples},
        {"pattern", bench::LoadPatternName(plan.pattern)},
        {"concurrency", plan.concurrency.empty() ? int64_t{1} : plan.concurrency.front()},
        {"requests", plan.max_requests},
        {"temperature", o.sampling.temperature},
        {"slo", o.load.slo.ToString()}};
    // The first point's metrics at the top level: a single-point run reads them there.
    report["metrics"] = points.empty() ? nlohmann::ordered_json::object() : points[0]["metrics"];
    report["points"] = points;
    report["engine"] = {{"steps", st.steps},
                        {"prefill_tokens", st.prefill_tokens},
                        {"decode_tokens", st.decode_tokens},
                        {"preemptions", st.preemptions},
                        {"step_seconds", st.step_seconds},
                        {"peak_running", st.peak_running},
                        {"peak_kv_blocks", st.peak_kv_blocks},
                        {"kv_blocks", mo.num_kv_blocks},
                        {"max_num_seqs", o.engine.max_num_seqs},
                        {"max_num_batched_tokens", o.engine.max_num_batched_tokens}};
    report["roofline_inputs"] = {{"decode_weight_bytes_per_rank", model->decode_weight_bytes()},
                                 {"kv_bytes_per_token_per_rank",
                                  2 * config.num_layers * shard.num_kv_heads * config.head_dim * 4},
                                 {"matmul_flops_per_token", config.MatmulFlopsPerToken()},
                                 {"parameters", config.ParameterCount()}};
  }
  report["memory"] = {{"weight_bytes", model->weight_bytes()},
                      {"kv_cache_bytes", model->kv_cache_bytes()},
                      {"peak_rss_bytes", PeakRssBytes()}};
  report["load_seconds"] = load_s;
  return report;
}

}  // namespace breakeven::node
