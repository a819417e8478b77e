// Runs a model on tp ranks inside one test process: one thread per rank, each with its own CPU
// backend, its own Gloo communicator (rendezvous through a FileStore in a temporary directory)
// and its own shard, exactly as separate worker processes would.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "engine/communicator.h"
#include "engine/model.h"
#include "engine/step_plan.h"
#include "engine/weights.h"

namespace breakeven::testing {

using RankBody =
    std::function<Status(int rank, engine::LlamaModel& model, engine::Communicator& comm)>;
using WeightsFactory = std::function<std::unique_ptr<engine::WeightSource>()>;

// Runs body on every rank; returns the first error. Collectives time out after
// `collective_timeout`.
Status RunRanks(const engine::ModelConfig& config, int tp, const WeightsFactory& weights,
                const engine::ModelOptions& options, const RankBody& body,
                Millis collective_timeout = std::chrono::seconds(30));

struct SeqSpec {
  std::vector<int32_t> tokens;  // fed this step
  int64_t start = 0;            // position of tokens[0]
  std::vector<int32_t> blocks;  // block table
};

// A plan feeding each spec; `all_rows`: logits for every row, else for each sequence's last row.
engine::StepPlan MakePlan(const std::vector<SeqSpec>& seqs, int64_t block_size,
                          int32_t max_blocks_per_seq, bool all_rows);

engine::ModelOptions SmallOptions();  // 64 blocks of 16, 256 tokens per step, length 512

}  // namespace breakeven::testing
