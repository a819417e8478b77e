// The engine on the CUDA backend against the CPU backend: dummy weights made on the device equal
// the host's, logits agree within bf16 tolerance, greedy tokens agree, and decode steps replayed
// from CUDA graphs give the same tokens as the same steps run op by op. Skipped without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "engine/executor.h"
#include "engine/model.h"
#include "kernels/backend.h"
#include "tests/engine/engine_harness.h"
#include "tests/engine/reference_model.h"

namespace breakeven::engine {
namespace {

constexpr uint64_t kSeed = 99;

std::unique_ptr<kernels::Backend> CudaOrSkip() {
  auto cuda = kernels::CreateBackend("cuda");
  if (!cuda.ok()) return nullptr;
  return std::move(cuda).value();
}

TEST(CudaEngine, DummyWeightsMadeOnTheDeviceEqualTheHostsBitForBit) {
  auto cuda = CudaOrSkip();
  if (!cuda) GTEST_SKIP() << "no CUDA device";
  const std::vector<std::pair<std::string, std::vector<int64_t>>> tensors = {
      {"model.layers.0.mlp.up_proj.weight", {96, 80}},
      {"model.layers.1.input_layernorm.weight", {80}},
      {"model.embed_tokens.weight", {50, 80}},
      {"model.layers.0.self_attn.q_proj.bias", {96}}};
  for (const auto& [name, shape] : tensors) {
    for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
      SCOPED_TRACE(name + " " + std::string(DTypeName(dtype)));
      // A block cut out of the tensor, as a tensor-parallel shard would be.
      const int64_t full_rows = shape.size() > 1 ? shape[0] : 1;
      const int64_t full_cols = shape.size() > 1 ? shape[1] : shape[0];
      const int64_t r0 = full_rows > 1 ? 7 : 0, rows = full_rows > 1 ? full_rows - 9 : 1;
      const int64_t c0 = 3, cols = full_cols - 5;
      kernels::UniformFill fill = DummyFill(kSeed, name, shape);
      fill.row_begin = r0;
      fill.col_begin = c0;
      const size_t bytes = static_cast<size_t>(rows * cols) * DTypeSize(dtype);
      auto buf = cuda->Allocate(bytes);
      ASSERT_TRUE(buf.ok());
      ASSERT_TRUE(cuda->FillUniform((*buf)->data(), dtype, rows, cols, fill));
      std::vector<uint8_t> got(bytes), want(bytes);
      cuda->CopyToHost(got.data(), (*buf)->data(), bytes);
      std::vector<float> row(static_cast<size_t>(cols));
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < cols; ++c) {
          row[static_cast<size_t>(c)] = DummyValue(kSeed, name, shape, r0 + r, c0 + c);
        }
        FromF32(row.data(), dtype, row.size(),
                want.data() + static_cast<size_t>(r * cols) * DTypeSize(dtype));
      }
      EXPECT_EQ(got, want);
    }
  }
}

struct Loaded {
  std::unique_ptr<kernels::Backend> backend;
  std::unique_ptr<Communicator> comm;
  std::unique_ptr<LlamaModel> model;
};

Loaded Load(std::unique_ptr<kernels::Backend> backend, const ModelConfig& config, DType dtype,
            bool graphs) {
  Loaded l;
  l.backend = std::move(backend);
  l.comm = MakeSingleRankCommunicator();
  auto weights = MakeDummyWeights(config, kSeed);
  ModelOptions options = testing::SmallOptions();
  options.weight_dtype = dtype;
  options.graphs = graphs;
  auto shard = ShardPlan::Make(config, 1, 0);
  EXPECT_TRUE(shard.ok()) << shard.status().ToString();
  auto model = LlamaModel::Load(config, *shard, *weights, *l.backend, *l.comm, options);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  if (model.ok()) l.model = std::move(model).value();
  return l;
}

std::vector<int32_t> Prompt(int n, int32_t vocab, int salt) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) t[i] = static_cast<int32_t>((i * 37 + 11 + salt * 101) % vocab);
  return t;
}

TEST(CudaEngine, PrefillLogitsMatchTheCpuBackend) {
  auto cuda = CudaOrSkip();
  if (!cuda) GTEST_SKIP() << "no CUDA device";
  const ModelConfig c = testing::SmallLlama();
  Loaded gpu = Load(std::move(cuda), c, DType::kBF16, true);
  auto cpu_backend = kernels::CreateBackend("cpu", {.threads = 1});
  ASSERT_TRUE(cpu_backend.ok());
  Loaded cpu = Load(std::move(cpu_backend).value(), c, DType::kBF16, false);
  ASSERT_TRUE(gpu.model && cpu.model);
  // Two sequences, every row's logits: a 40-token prompt (the tiled attention kernel) and a
  // 5-token one.
  std::vector<int32_t> b0(4), b1(2);
  std::iota(b0.begin(), b0.end(), 0);
  std::iota(b1.begin(), b1.end(), 10);
  StepPlan plan = testing::MakePlan({{Prompt(40, static_cast<int32_t>(c.vocab_size), 0), 0, b0},
                                     {Prompt(5, static_cast<int32_t>(c.vocab_size), 1), 0, b1}},
                                    16, 32, /*all_rows=*/true);
  std::vector<float> got, want;
  ASSERT_TRUE(gpu.model->Forward(plan, &got).ok());
  ASSERT_TRUE(cpu.model->Forward(plan, &want).ok());
  ASSERT_EQ(got.size(), want.size());
  double diff = 0, mag = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_FALSE(std::isnan(got[i])) << "at " << i;
    diff = std::max(diff, std::abs(double(got[i]) - want[i]));
    mag = std::max(mag, std::abs(double(want[i])));
  }
  // The CPU keeps activations fp32 into its products; the GPU narrows them to bf16.
  EXPECT_LT(diff / mag, 2e-2);
}

// Greedy continuations of `prompts` through the executor.
std::vector<std::vector<int32_t>> Generate(Loaded& l,
                                           const std::vector<std::vector<int32_t>>& prompts,
                                           int max_tokens) {
  std::vector<std::vector<int32_t>> out(prompts.size());
  auto ex = Executor::Start(*l.model, *l.comm, {256, 32});
  EXPECT_TRUE(ex.ok());
  if (!ex.ok()) return out;
  std::vector<GenerationRequest> requests;
  for (const auto& p : prompts) {
    GenerationRequest r;
    r.prompt = p;
    r.max_tokens = max_tokens;
    r.sampling.ignore_eos = true;
    requests.push_back(r);
  }
  auto ids = (*ex)->Enqueue(requests);
  EXPECT_TRUE(ids.ok());
  size_t finished = 0;
  while (finished < prompts.size()) {
    auto responses = (*ex)->AwaitResponses(std::chrono::seconds(30));
    if (responses.empty()) break;
    for (const Response& r : responses) {
      const size_t i = static_cast<size_t>(r.request - (*ids)[0]);
      out[i].insert(out[i].end(), r.tokens.begin(), r.tokens.end());
      if (r.finished) ++finished;
    }
  }
  EXPECT_EQ(finished, prompts.size());
  EXPECT_TRUE((*ex)->Shutdown().ok());
  return out;
}

TEST(CudaEngine, GreedyTokensMatchTheCpuBackendAndGraphsMatchEagerSteps) {
  auto cuda = CudaOrSkip();
  if (!cuda) GTEST_SKIP() << "no CUDA device";
  const ModelConfig c = testing::SmallLlama();
  const int32_t vocab = static_cast<int32_t>(c.vocab_size);
  // Three requests: decode batches of 3 run padded to the graph bucket of 4.
  const std::vector<std::vector<int32_t>> prompts = {Prompt(9, vocab, 0), Prompt(23, vocab, 1),
                                                     Prompt(4, vocab, 2)};
  auto cpu_backend = kernels::CreateBackend("cpu", {.threads = 2});
  ASSERT_TRUE(cpu_backend.ok());
  Loaded cpu = Load(std::move(cpu_backend).value(), c, DType::kF32, false);
  Loaded graphs = Load(std::move(cuda), c, DType::kF32, true);
  auto cuda2 = kernels::CreateBackend("cuda");
  ASSERT_TRUE(cuda2.ok());
  Loaded eager = Load(std::move(cuda2).value(), c, DType::kF32, false);
  ASSERT_TRUE(cpu.model && graphs.model && eager.model);
  const auto want = Generate(cpu, prompts, 12);
  const auto with_graphs = Generate(graphs, prompts, 12);
  const auto without = Generate(eager, prompts, 12);
  // fp32 weights: the CUDA products are fp32 too (cuBLAS sgemm), so the tokens agree exactly.
  EXPECT_EQ(with_graphs, want);
  EXPECT_EQ(without, want);
  EXPECT_EQ(with_graphs, without);
}

TEST(CudaEngine, SampledTokensFollowTheSequencesGenerators) {
  auto cuda = CudaOrSkip();
  if (!cuda) GTEST_SKIP() << "no CUDA device";
  const ModelConfig c = testing::SmallLlama();
  auto cpu_backend = kernels::CreateBackend("cpu", {.threads = 2});
  ASSERT_TRUE(cpu_backend.ok());
  Loaded cpu = Load(std::move(cpu_backend).value(), c, DType::kF32, false);
  Loaded gpu = Load(std::move(cuda), c, DType::kF32, true);
  ASSERT_TRUE(cpu.model && gpu.model);
  auto run = [&](Loaded& l) {
    std::vector<std::vector<int32_t>> out;
    auto ex = Executor::Start(*l.model, *l.comm, {256, 32});
    EXPECT_TRUE(ex.ok());
    GenerationRequest r;
    r.prompt = Prompt(11, static_cast<int32_t>(c.vocab_size), 3);
    r.max_tokens = 10;
    r.sampling.temperature = 0.8f;
    r.sampling.top_k = 20;
    r.sampling.top_p = 0.9f;
    r.sampling.seed = 5;
    r.sampling.n = 3;
    r.sampling.ignore_eos = true;
    auto id = (*ex)->Enqueue(r);
    EXPECT_TRUE(id.ok());
    out.resize(3);
    int finished = 0;
    while (finished < 3) {
      auto responses = (*ex)->AwaitResponses(std::chrono::seconds(30));
      if (responses.empty()) break;
      for (const Response& resp : responses) {
        auto& seq = out[static_cast<size_t>(resp.sample)];
        seq.insert(seq.end(), resp.tokens.begin(), resp.tokens.end());
        if (resp.finished) ++finished;
      }
    }
    EXPECT_TRUE((*ex)->Shutdown().ok());
    return out;
  };
  // The same draws from the same generators over (nearly) the same logits: the same tokens.
  EXPECT_EQ(run(gpu), run(cpu));
}

}  // namespace
}  // namespace breakeven::engine
