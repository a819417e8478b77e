#include "tests/engine/engine_harness.h"

#include <atomic>
#include <mutex>
#include <thread>

#include "engine/sharding.h"
#include "kernels/backend.h"
#include "tests/support/process.h"

namespace breakeven::testing {

Status RunRanks(const engine::ModelConfig& config, int tp, const WeightsFactory& weights,
                const engine::ModelOptions& options, const RankBody& body,
                Millis collective_timeout) {
  static std::atomic<int> group{0};
  std::string dir = MakeTempDir("ranks");
  std::unique_ptr<engine::FileStore> store;
  {
    auto s = engine::FileStore::Open(dir);
    if (!s.ok()) return s.status();
    store = std::move(s).value();
  }
  std::mutex mu;
  Status first;
  auto run = [&](int rank) -> Status {
    BE_ASSIGN_OR_RETURN(engine::ShardPlan shard, engine::ShardPlan::Make(config, tp, rank));
    kernels::BackendOptions bo;
    bo.threads = 1;
    BE_ASSIGN_OR_RETURN(auto backend, kernels::CreateBackend("cpu", bo));
    std::unique_ptr<engine::Communicator> comm;
    if (tp == 1) {
      comm = engine::MakeSingleRankCommunicator();
    } else {
      engine::GroupOptions go;
      go.prefix = "test-" + std::to_string(group.load()) + "/tp";
      go.rank = rank;
      go.world_size = tp;
      go.timeout = collective_timeout;
      BE_ASSIGN_OR_RETURN(comm, engine::CreateGlooCommunicator(*store, go));
    }
    auto source = weights();
    BE_ASSIGN_OR_RETURN(auto model,
                        engine::LlamaModel::Load(config, shard, *source, *backend, *comm, options));
    return body(rank, *model, *comm);
  };
  std::vector<std::thread> threads;
  for (int r = 0; r < tp; ++r) {
    threads.emplace_back([&, r] {
      Status s = run(r);
      std::lock_guard lock(mu);
      if (!s.ok() && first.ok()) first = s.WithContext("rank " + std::to_string(r));
    });
  }
  for (auto& t : threads) t.join();
  ++group;
  RemoveTree(dir);
  return first;
}

engine::StepPlan MakePlan(const std::vector<SeqSpec>& seqs, int64_t block_size,
                          int32_t max_blocks_per_seq, bool all_rows) {
  engine::StepPlan p;
  p.max_blocks_per_seq = max_blocks_per_seq;
  p.query_start.push_back(0);
  for (const SeqSpec& s : seqs) {
    for (size_t i = 0; i < s.tokens.size(); ++i) {
      int64_t pos = s.start + static_cast<int64_t>(i);
      if (all_rows || i + 1 == s.tokens.size()) {
        p.logit_rows.push_back(static_cast<int32_t>(p.token_ids.size()));
      }
      p.token_ids.push_back(s.tokens[i]);
      p.positions.push_back(static_cast<int32_t>(pos));
      p.slots.push_back(
          static_cast<int32_t>(s.blocks[pos / block_size] * block_size + pos % block_size));
    }
    p.query_start.push_back(static_cast<int32_t>(p.token_ids.size()));
    p.context_lens.push_back(static_cast<int32_t>(s.start + static_cast<int64_t>(s.tokens.size())));
    for (int32_t b = 0; b < max_blocks_per_seq; ++b) {
      p.block_tables.push_back(static_cast<size_t>(b) < s.blocks.size() ? s.blocks[b] : 0);
    }
  }
  return p;
}

engine::ModelOptions SmallOptions() {
  engine::ModelOptions o;
  o.num_kv_blocks = 64;
  o.block_size = 16;
  o.max_tokens_per_step = 256;
  o.max_model_len = 512;
  return o;
}

}  // namespace breakeven::testing
