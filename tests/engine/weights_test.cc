// Weight sources: files written by the tests (safetensors directories, sharded or not, and GGUF
// files laid out as llama.cpp writes them) load to exactly the dummy weights they were written
// from, shard by shard; and every kind of bad file is refused with its file and tensor named.
#include "engine/weights.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "engine/export.h"
#include "engine/gguf.h"
#include "engine/safetensors.h"
#include "engine/sharding.h"
#include "tests/engine/reference_model.h"
#include "tests/support/process.h"

namespace breakeven::engine {
namespace {

constexpr uint64_t kSeed = 77;

class WeightsTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::MakeTempDir("weights"); }
  void TearDown() override { testing::RemoveTree(dir_); }
  std::string dir_;
};

// Reads every tensor's rank shard the way the model loader does (rows of column-parallel
// weights, columns of row-parallel ones) from both sources and compares them bit for bit.
void ExpectSameShards(const ModelConfig& c, WeightSource& a, WeightSource& b, int tp, DType dtype) {
  for (int rank = 0; rank < tp; ++rank) {
    ShardPlan shard = *ShardPlan::Make(c, tp, rank);
    for (const auto& [name, shape] : ModelTensors(c)) {
      int64_t rows = shape.size() == 1 ? 1 : shape[0],
              cols = shape.size() == 1 ? shape[0] : shape[1];
      int64_t r0 = 0, nr = rows, c0 = 0, nc = cols;
      if (name.find("o_proj") != std::string::npos || name.find("down_proj") != std::string::npos) {
        c0 = rank * cols / tp;
        nc = cols / tp;
      } else if (shape.size() == 2 && name.find("embed") == std::string::npos && name != kLmHead) {
        r0 = rank * rows / tp;  // an even split is enough to compare the sources
        nr = rows / tp;
      } else if (shape.size() == 2) {
        r0 = shard.vocab_begin;
        nr = shard.vocab;
      }
      std::string x(static_cast<size_t>(nr * nc) * DTypeSize(dtype), '\0'), y = x;
      ASSERT_TRUE(a.Read(name, shape, r0, nr, c0, nc, dtype, x.data()).ok()) << name;
      Status s = b.Read(name, shape, r0, nr, c0, nc, dtype, y.data());
      ASSERT_TRUE(s.ok()) << s.ToString();
      EXPECT_EQ(x, y) << name << " rank " << rank << " of " << tp;
    }
  }
}

TEST_F(WeightsTest, SafetensorsDirectoryLoadsTheDummyWeights) {
  for (const ModelConfig& c : {testing::SmallLlama(), testing::SmallQwen2()}) {
    auto dummy = MakeDummyWeights(c, kSeed);
    for (int shards : {1, 3}) {
      std::string dir = dir_ + "/" + c.name + "-" + std::to_string(shards);
      ASSERT_TRUE(ExportHfDirectory(*dummy, c, dir, DType::kF32, shards).ok());
      EXPECT_EQ(std::filesystem::exists(dir + "/model.safetensors.index.json"), shards > 1);
      ModelConfig loaded;
      auto source = OpenWeights(dir, "", 0, &loaded);
      ASSERT_TRUE(source.ok()) << source.status().ToString();
      EXPECT_EQ(loaded.num_kv_heads, c.num_kv_heads);
      EXPECT_EQ(loaded.qkv_bias, c.qkv_bias);
      EXPECT_EQ(loaded.tie_word_embeddings, c.tie_word_embeddings);
      EXPECT_EQ(loaded.rope_scaling.factor, c.rope_scaling.factor);
      for (int tp : {1, 2, 4}) ExpectSameShards(c, *dummy, **source, tp, DType::kF32);
    }
  }
}

TEST_F(WeightsTest, Bf16FilesLoadAsTheRoundedDummyWeights) {
  const ModelConfig c = testing::SmallMha();
  auto dummy = MakeDummyWeights(c, kSeed);
  ASSERT_TRUE(ExportHfDirectory(*dummy, c, dir_ + "/bf16", DType::kBF16).ok());
  ASSERT_TRUE(ExportGguf(*dummy, c, dir_ + "/m.gguf", DType::kBF16).ok());
  ModelConfig loaded;
  auto st = OpenWeights(dir_ + "/bf16", "", 0, &loaded);
  auto gg = OpenWeights(dir_ + "/m.gguf", "", 0, &loaded);
  ASSERT_TRUE(st.ok() && gg.ok());
  // Reading as bf16 from the dummy source rounds the same way as writing bf16 files did.
  ExpectSameShards(c, *dummy, **st, 2, DType::kBF16);
  ExpectSameShards(c, *dummy, **gg, 2, DType::kBF16);
}

TEST_F(WeightsTest, GgufFileLoadsTheDummyWeightsAndItsConfig) {
  for (const ModelConfig& c : {testing::SmallLlama(), testing::SmallQwen2()}) {
    auto dummy = MakeDummyWeights(c, kSeed);
    std::string path = dir_ + "/" + c.name + ".gguf";
    ASSERT_TRUE(ExportGguf(*dummy, c, path, DType::kF32).ok());
    ModelConfig loaded;
    auto source = OpenWeights(path, "", 0, &loaded);
    ASSERT_TRUE(source.ok()) << source.status().ToString();
    EXPECT_EQ(loaded.hidden_size, c.hidden_size);
    EXPECT_EQ(loaded.num_layers, c.num_layers);
    EXPECT_EQ(loaded.num_kv_heads, c.num_kv_heads);
    EXPECT_EQ(loaded.vocab_size, c.vocab_size);
    EXPECT_EQ(loaded.qkv_bias, c.qkv_bias);
    EXPECT_EQ(loaded.tie_word_embeddings, c.tie_word_embeddings);
    EXPECT_DOUBLE_EQ(loaded.rope_theta, static_cast<float>(c.rope_theta));
    for (int tp : {1, 2, 4}) ExpectSameShards(c, *dummy, **source, tp, DType::kF32);
  }
}

TEST_F(WeightsTest, GgufQAndKRowsAreStoredPermutedAsLlamaCppDoes) {
  // The file must really hold llama.cpp's layout, or the loader's un-permutation is untested.
  const ModelConfig c = testing::SmallLlama();
  auto dummy = MakeDummyWeights(c, kSeed);
  ASSERT_TRUE(ExportGguf(*dummy, c, dir_ + "/p.gguf", DType::kF32).ok());
  auto file = GgufFile::Open(dir_ + "/p.gguf");
  ASSERT_TRUE(file.ok());
  const TensorInfo* q = (*file)->Find("blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  const float* stored = reinterpret_cast<const float*>((*file)->Data(*q));
  const int64_t d = c.hidden_size, hd = c.head_dim;
  // HF row 1 (first half, index 1) of head 0 is stored at row 2; HF row hd/2 at row 1.
  const std::string name = LayerTensor(0, "self_attn.q_proj.weight");
  std::vector<int64_t> shape = {c.num_heads * hd, d};
  EXPECT_EQ(stored[2 * d + 5], DummyValue(kSeed, name, shape, 1, 5));
  EXPECT_EQ(stored[1 * d + 5], DummyValue(kSeed, name, shape, hd / 2, 5));
  // Llama-3 scaling travels as rope_freqs and comes back as the same frequencies.
  ModelConfig loaded;
  ASSERT_TRUE(OpenWeights(dir_ + "/p.gguf", "", 0, &loaded).ok());
  ASSERT_EQ(loaded.rope_freq_factors.size(), static_cast<size_t>(hd / 2));
}

TEST_F(WeightsTest, MissingAndMisshapenTensorsAreNamed) {
  const ModelConfig c = testing::SmallMha();
  auto dummy = MakeDummyWeights(c, kSeed);
  ASSERT_TRUE(ExportHfDirectory(*dummy, c, dir_ + "/m", DType::kF32).ok());
  ModelConfig loaded;
  auto source = OpenWeights(dir_ + "/m", "", 0, &loaded);
  ASSERT_TRUE(source.ok());
  std::vector<float> buf(64 * 64);
  Status wrong = (*source)->Read(LayerTensor(0, "self_attn.q_proj.weight"), {64, 32}, 0, 1, 0, 32,
                                 DType::kF32, buf.data());
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.message().find("expected 64x32, found 64x64"), std::string::npos)
      << wrong.message();
  EXPECT_NE(wrong.message().find("model.safetensors"), std::string::npos);
  Status missing = (*source)->Read("model.layers.9.mlp.up_proj.weight", {96, 64}, 0, 1, 0, 64,
                                   DType::kF32, buf.data());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("model.layers.9.mlp.up_proj.weight"), std::string::npos);
}

TEST_F(WeightsTest, BadFilesAndDirectoriesAreRefused) {
  ModelConfig loaded;
  auto none = OpenWeights(dir_ + "/nope", "", 0, &loaded);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find(dir_ + "/nope"), std::string::npos);

  // A directory with an unsupported architecture.
  std::filesystem::create_directories(dir_ + "/gpt2");
  testing::WriteFile(dir_ + "/gpt2/config.json", R"({"architectures": ["GPT2LMHeadModel"]})");
  auto gpt2 = OpenWeights(dir_ + "/gpt2", "", 0, &loaded);
  ASSERT_FALSE(gpt2.ok());
  EXPECT_NE(gpt2.status().message().find("GPT2LMHeadModel"), std::string::npos);

  // A config.json without its weights.
  const ModelConfig c = testing::SmallMha();
  std::filesystem::create_directories(dir_ + "/empty");
  testing::WriteFile(dir_ + "/empty/config.json", HfConfigJson(c));
  auto empty = OpenWeights(dir_ + "/empty", "", 0, &loaded);
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("model.safetensors"), std::string::npos);

  // A truncated safetensors file names the file.
  auto dummy = MakeDummyWeights(c, kSeed);
  ASSERT_TRUE(ExportHfDirectory(*dummy, c, dir_ + "/cut", DType::kF32).ok());
  std::string file = dir_ + "/cut/model.safetensors";
  std::filesystem::resize_file(file, std::filesystem::file_size(file) / 2);
  auto cut = OpenWeights(dir_ + "/cut", "", 0, &loaded);
  ASSERT_FALSE(cut.ok());
  EXPECT_NE(cut.status().message().find(file), std::string::npos) << cut.status().message();

  // An unknown catalog model with dummy weights.
  auto unknown = OpenWeights("dummy", "llama-9b", 0, &loaded);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("llama-9b"), std::string::npos);
}

TEST(Sharding, TpMustDivideTheHeads) {
  ModelConfig c = testing::SmallLlama();  // 8 heads, 4 KV heads, intermediate 96
  EXPECT_TRUE(ShardPlan::Make(c, 8, 7).ok());
  auto three = ShardPlan::Make(c, 3, 0);
  ASSERT_FALSE(three.ok());
  EXPECT_NE(three.status().message().find("tp 3 does not divide the 8 attention heads"),
            std::string::npos);
  ShardPlan eight = *ShardPlan::Make(c, 8, 5);
  EXPECT_EQ(eight.kv_replicas, 2);
  EXPECT_EQ(eight.kv_head_begin, 2) << "ranks 4 and 5 share KV head 2";
  ShardPlan last = *ShardPlan::Make(c, 8, 7);
  EXPECT_EQ(last.vocab_begin + last.vocab, c.vocab_size) << "the last slice ends at the vocabulary";
}

TEST(ModelConfig, ParsesHuggingFaceConfigsAndNamesBadFields) {
  auto llama = ParseHfConfig(R"({"architectures": ["LlamaForCausalLM"], "vocab_size": 128256,
      "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
      "num_attention_heads": 32, "num_key_value_heads": 8, "max_position_embeddings": 131072,
      "rope_theta": 500000.0, "rms_norm_eps": 1e-05, "tie_word_embeddings": false,
      "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
      "original_max_position_embeddings": 8192, "rope_type": "llama3"},
      "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009]})",
                             "config.json");
  ASSERT_TRUE(llama.ok()) << llama.status().ToString();
  EXPECT_EQ(llama->head_dim, 128);
  EXPECT_EQ(llama->eos_token_ids.size(), 3u);
  EXPECT_EQ(llama->ParameterCount(), 8030261248);  // Llama-3.1-8B's published count

  auto bad = ParseHfConfig(R"({"architectures": ["LlamaForCausalLM"], "vocab_size": "many"})",
                           "x/config.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("x/config.json: field 'vocab_size'"), std::string::npos)
      << bad.status().message();

  auto window = ParseHfConfig(R"({"architectures": ["MistralForCausalLM"], "vocab_size": 32000,
      "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
      "num_attention_heads": 32, "num_key_value_heads": 8, "max_position_embeddings": 32768,
      "sliding_window": 4096})",
                              "mistral/config.json");
  ASSERT_FALSE(window.ok());
  EXPECT_NE(window.status().message().find("sliding"), std::string::npos);
}

}  // namespace
}  // namespace breakeven::engine
