#include "node/worker.h"

#include <fstream>

#include "engine/model.h"
#include "engine/sharding.h"
#include "engine/weights.h"
#include "kernels/backend.h"

namespace breakeven::node {

namespace {

nlohmann::ordered_json SummaryJson(const bench::Summary& s) {
  return {{"mean", s.mean}, {"p50", s.p50}, {"p90", s.p90},    {"p95", s.p95},
          {"p99", s.p99},   {"max", s.max}, {"count", s.count}};
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

Result<nlohmann::ordered_json> RunWorker(const WorkerOptions& o) {
  const std::string who = fmt::format("rank {}", o.rank);
  engine::ModelConfig config;
  BE_ASSIGN_OR_RETURN(auto source, engine::OpenWeights(o.weights, o.model, o.seed, &config));
  BE_ASSIGN_OR_RETURN(engine::ShardPlan shard, engine::ShardPlan::Make(config, o.tp, o.rank));

  kernels::BackendOptions bo;
  bo.threads = o.threads;
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
  std::unique_ptr<engine::FileStore> store;
  if (o.tp == 1) {
    comm = engine::MakeSingleRankCommunicator();
  } else {
    BE_ASSIGN_OR_RETURN(store, engine::FileStore::Open(o.store_dir));
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
      return InvalidArgument("--collectives: '{}' is not shm or gloo", o.collectives);
    }
  }

  engine::ModelOptions mo;
  mo.weight_dtype = o.weight_dtype;
  mo.block_size = o.block_size;
  mo.max_tokens_per_step = o.engine.max_num_batched_tokens;
  const int64_t workload_len = o.load.input_tokens + o.load.output_tokens;
  mo.max_model_len = o.max_model_len > 0 ? o.max_model_len
                                         : std::min(config.max_position_embeddings,
                                                    std::max<int64_t>(workload_len, 4096));
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
    BE_ASSIGN_OR_RETURN(auto executor, engine::Executor::Start(*model, *comm, o.engine));
    auto records = bench::RunClosedLoop(*executor, o.load, config.vocab_size);
    Status stopped = executor->Shutdown();
    if (!records.ok()) return records.status();
    BE_RETURN_IF_ERROR(stopped);
    bench::ServingMetrics m = bench::ComputeMetrics(*records);
    engine::EngineStats st = executor->stats();
    report["model"] = config.name;
    report["weights"] = source->Describe();
    report["weight_dtype"] = DTypeName(o.weight_dtype);
    report["backend"] = o.backend;
    report["device"] = backend->device().name;
    report["tp"] = o.tp;
    report["collectives"] = o.tp > 1 ? o.collectives : "none";
    report["workload"] = {{"input_tokens", o.load.input_tokens},
                          {"output_tokens", o.load.output_tokens},
                          {"concurrency", o.load.concurrency},
                          {"requests", o.load.requests},
                          {"n", o.load.sampling.n},
                          {"temperature", o.load.sampling.temperature}};
    report["metrics"] = {{"requests", m.requests},
                         {"failed", m.failed},
                         {"input_tokens", m.input_tokens},
                         {"output_tokens", m.output_tokens},
                         {"duration_s", m.duration_s},
                         {"output_tokens_per_s", m.output_tokens_per_s},
                         {"total_tokens_per_s", m.total_tokens_per_s},
                         {"requests_per_s", m.requests_per_s},
                         {"ttft_ms", SummaryJson(m.ttft_ms)},
                         {"tpot_ms", SummaryJson(m.tpot_ms)},
                         {"itl_ms", SummaryJson(m.itl_ms)},
                         {"e2e_ms", SummaryJson(m.e2e_ms)}};
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
