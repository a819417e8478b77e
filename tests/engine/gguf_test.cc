#include "engine/gguf.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support/process.h"

namespace breakeven::engine {
namespace {

using breakeven::testing::ReadFile;
using breakeven::testing::WriteFile;

// A fresh directory, removed with everything in it.
class TempDir : public breakeven::testing::ScopedTempDir {
 public:
  TempDir() : ScopedTempDir("gguf") {}
};

// Little-endian encoding, independent of the writer under test.
template <typename T>
std::string Le(T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  return std::string(b, sizeof(T));
}
std::string Str(std::string_view s) { return Le<uint64_t>(s.size()) + std::string(s); }

template <typename T>
T Load(const std::string& raw, size_t pos) {
  T v{};
  EXPECT_LE(pos + sizeof(T), raw.size());
  if (pos + sizeof(T) <= raw.size()) std::memcpy(&v, raw.data() + pos, sizeof(T));
  return v;
}

template <typename T>
void Store(std::string* raw, size_t pos, T v) {
  ASSERT_LE(pos + sizeof(T), raw->size());
  std::memcpy(raw->data() + pos, &v, sizeof(T));
}

// Position just after the length-prefixed string `s` in `raw` (a key or a tensor name).
size_t After(const std::string& raw, std::string_view s) {
  size_t pos = raw.find(Str(s));
  EXPECT_NE(pos, std::string::npos) << s;
  return pos == std::string::npos ? 0 : pos + 8 + s.size();
}

template <typename T>
std::string AsBytes(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

std::string F32Data(int n, float start) {
  std::vector<float> v(n);
  for (int i = 0; i < n; ++i) v[i] = start + 0.5f * static_cast<float>(i);
  return AsBytes(v);
}

std::string F16Data(int n) {
  std::vector<uint16_t> v(n);
  for (int i = 0; i < n; ++i) v[i] = F32ToF16(-1.0f + 0.25f * static_cast<float>(i));
  return AsBytes(v);
}

std::string Bf16Data(int n) {
  std::vector<uint16_t> v(n);
  for (int i = 0; i < n; ++i) v[i] = F32ToBf16(3.0f - 0.125f * static_cast<float>(i));
  return AsBytes(v);
}

GgufValue U(uint64_t v) { return GgufValue{v}; }
GgufValue I(int64_t v) { return GgufValue{v}; }
GgufValue F(double v) { return GgufValue{v}; }
GgufValue B(bool v) { return GgufValue{v}; }
GgufValue S(std::string v) { return GgufValue{std::move(v)}; }
GgufValue A(GgufValue::Array v) { return GgufValue{std::move(v)}; }

std::vector<TensorToWrite> SampleTensors() {
  return {
      {"token_embd.weight", DType::kF32, {3, 5}, F32Data(15, 1.0f)},
      {"blk.0.attn_q.weight", DType::kF16, {4, 3}, F16Data(12)},
      {"blk.0.ffn_up.weight", DType::kBF16, {2, 3, 4}, Bf16Data(24)},
      {"output_norm.weight", DType::kF32, {7}, F32Data(7, -2.0f)},
  };
}

std::vector<GgufKeyValue> SampleMetadata() {
  return {
      {"general.architecture", S("llama")},
      {"llama.block_count", U(2)},
      {"llama.rope.freq_base", F(10000.0)},
      {"tokenizer.ggml.tokens", A({S("<s>"), S("</s>"), S("hello")})},
  };
}

template <typename T>
std::string ErrorOf(const Result<T>& r) {
  EXPECT_FALSE(r.ok());
  return r.ok() ? std::string() : r.status().message();
}

bool Contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

class GgufTest : public ::testing::Test {
 protected:
  // Writes the sample model and returns its bytes.
  std::string WriteSample() {
    EXPECT_TRUE(WriteGguf(good_, SampleMetadata(), SampleTensors()).ok());
    return ReadFile(good_);
  }
  // Writes `bytes` to a new file and opens it.
  Result<std::unique_ptr<GgufFile>> OpenBytes(const std::string& bytes) {
    path_ = dir_.path() + "/x" + std::to_string(++files_) + ".gguf";
    WriteFile(path_, bytes);
    return GgufFile::Open(path_);
  }
  // The error opening `bytes`, which must name the file.
  std::string OpenError(const std::string& bytes) {
    std::string error = ErrorOf(OpenBytes(bytes));
    EXPECT_TRUE(Contains(error, path_ + ": ")) << error;
    return error;
  }

  TempDir dir_;
  std::string good_ = dir_.path() + "/good.gguf";
  std::string path_;  // of the file OpenBytes wrote last
  int files_ = 0;
};

TEST_F(GgufTest, RoundTripsF32F16AndBf16) {
  std::vector<TensorToWrite> written = SampleTensors();
  ASSERT_TRUE(WriteGguf(good_, SampleMetadata(), written).ok());
  EXPECT_FALSE(std::filesystem::exists(good_ + ".tmp"));
  Result<std::unique_ptr<GgufFile>> file = GgufFile::Open(good_);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  const GgufFile& gguf = **file;
  EXPECT_EQ(gguf.version(), 3u);
  EXPECT_EQ(gguf.path(), good_);
  const std::string raw = ReadFile(good_);
  ASSERT_EQ(gguf.tensors().size(), written.size());
  for (size_t i = 0; i < written.size(); ++i) {
    const TensorToWrite& w = written[i];
    SCOPED_TRACE(w.name);
    EXPECT_EQ(gguf.tensors()[i].name, w.name);  // in file order
    const TensorInfo* t = gguf.Find(w.name);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->dtype, w.dtype);
    EXPECT_EQ(t->shape, w.shape);
    EXPECT_EQ(t->bytes, w.data.size());
    EXPECT_EQ(t->offset % 32, 0u);  // the data section and every offset in it are aligned
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(gguf.Data(*t)), t->bytes), w.data);
    ASSERT_LE(t->offset + t->bytes, raw.size());
    EXPECT_EQ(raw.substr(t->offset, t->bytes), w.data);  // offset is from the start of the file
  }
  EXPECT_EQ(gguf.Find("blk.1.attn_q.weight"), nullptr);
}

// The writer's bytes, spelled out from the GGUF specification.
TEST_F(GgufTest, WritesTheLayoutTheSpecificationDescribes) {
  std::string w_data = F32Data(6, 0.0f);
  std::string b_data = Bf16Data(1);
  ASSERT_TRUE(WriteGguf(good_, {{"general.name", S("tiny")}, {"tiny.n", U(300)}},
                        {{"w", DType::kF32, {2, 3}, w_data}, {"b", DType::kBF16, {1}, b_data}})
                  .ok());
  std::string expected = "GGUF" + Le<uint32_t>(3) + Le<uint64_t>(2) + Le<uint64_t>(2);
  expected += Str("general.name") + Le<uint32_t>(8) + Str("tiny");
  expected += Str("tiny.n") + Le<uint32_t>(4) + Le<uint32_t>(300);
  expected += Str("w") + Le<uint32_t>(2) + Le<uint64_t>(3) + Le<uint64_t>(2) + Le<uint32_t>(0) +
              Le<uint64_t>(0);
  expected += Str("b") + Le<uint32_t>(1) + Le<uint64_t>(1) + Le<uint32_t>(30) + Le<uint64_t>(32);
  expected.resize((expected.size() + 31) / 32 * 32, '\0');
  expected += w_data + std::string(32 - w_data.size(), '\0');
  expected += b_data + std::string(32 - b_data.size(), '\0');
  EXPECT_EQ(ReadFile(good_), expected);
}

TEST_F(GgufTest, DimsAreStoredReversedAndReadBackRowMajor) {
  ASSERT_TRUE(WriteGguf(good_, {},
                        {{"w", DType::kF32, {3, 5}, F32Data(15, 0.0f)},
                         {"v", DType::kF16, {2, 3, 4}, F16Data(24)}})
                  .ok());
  const std::string raw = ReadFile(good_);
  size_t w = After(raw, "w");
  EXPECT_EQ(Load<uint32_t>(raw, w), 2u);
  EXPECT_EQ(Load<uint64_t>(raw, w + 4), 5u);  // the fastest-varying dim first
  EXPECT_EQ(Load<uint64_t>(raw, w + 12), 3u);
  size_t v = After(raw, "v");
  EXPECT_EQ(Load<uint32_t>(raw, v), 3u);
  EXPECT_EQ(Load<uint64_t>(raw, v + 4), 4u);
  EXPECT_EQ(Load<uint64_t>(raw, v + 12), 3u);
  EXPECT_EQ(Load<uint64_t>(raw, v + 20), 2u);

  Result<std::unique_ptr<GgufFile>> file = GgufFile::Open(good_);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ((*file)->Find("w")->shape, (std::vector<int64_t>{3, 5}));
  EXPECT_EQ((*file)->Find("v")->shape, (std::vector<int64_t>{2, 3, 4}));

  // A file written by hand with dims [5, 3] reads as {3, 5} too.
  std::string raw2 = "GGUF" + Le<uint32_t>(3) + Le<uint64_t>(1) + Le<uint64_t>(0) + Str("m") +
                     Le<uint32_t>(2) + Le<uint64_t>(5) + Le<uint64_t>(3) + Le<uint32_t>(0) +
                     Le<uint64_t>(0);
  ASSERT_EQ(raw2.size(), 65u);
  raw2.resize(96, '\0');  // the data section starts at the next multiple of 32
  raw2 += F32Data(15, 0.0f);
  Result<std::unique_ptr<GgufFile>> file2 = OpenBytes(raw2);
  ASSERT_TRUE(file2.ok()) << file2.status().ToString();
  EXPECT_EQ((*file2)->Find("m")->shape, (std::vector<int64_t>{3, 5}));
  EXPECT_EQ((*file2)->Find("m")->offset, 96u);
}

TEST_F(GgufTest, RoundTripsMetadataOfEachType) {
  std::vector<GgufKeyValue> metadata = {
      {"t.u32", U(4096)},
      {"t.u64", U(uint64_t{1} << 40)},
      {"t.i32", I(-5)},
      {"t.i64", I(-(int64_t{1} << 40))},
      {"t.f32", F(0.25)},
      {"t.f32_inexact", F(1e-5)},
      {"t.bool", B(true)},
      {"t.false", B(false)},
      {"t.str", S("hello, world")},
      {"t.empty_str", S("")},
      {"t.strings", A({S("<s>"), S(""), S("\xe2\x96\x81the")})},
      {"t.ints", A({I(1), I(-2), U(3)})},
      {"t.big_ints", A({I(-1), U(uint64_t{1} << 40)})},
      {"t.floats", A({F(0.5), F(-1.5), I(2)})},
      {"t.bools", A({B(true), B(false)})},
      {"t.empty", A({})},
      {"t.nested", A({A({I(1), I(2)}), A({S("x")})})},
  };
  ASSERT_TRUE(WriteGguf(good_, metadata, {}).ok());
  const std::string raw = ReadFile(good_);
  auto type_of = [&](std::string_view key) { return Load<uint32_t>(raw, After(raw, key)); };
  auto element_type_of = [&](std::string_view key) {
    return Load<uint32_t>(raw, After(raw, key) + 4);
  };
  auto count_of = [&](std::string_view key) { return Load<uint64_t>(raw, After(raw, key) + 8); };
  EXPECT_EQ(type_of("t.u32"), 4u);   // UINT32
  EXPECT_EQ(type_of("t.u64"), 10u);  // UINT64
  EXPECT_EQ(type_of("t.i32"), 5u);   // INT32
  EXPECT_EQ(type_of("t.i64"), 11u);  // INT64
  EXPECT_EQ(type_of("t.f32"), 6u);   // FLOAT32
  EXPECT_EQ(type_of("t.bool"), 7u);  // BOOL
  EXPECT_EQ(type_of("t.str"), 8u);   // STRING
  EXPECT_EQ(type_of("t.strings"), 9u);
  EXPECT_EQ(element_type_of("t.strings"), 8u);
  EXPECT_EQ(count_of("t.strings"), 3u);
  EXPECT_EQ(element_type_of("t.ints"), 5u);
  EXPECT_EQ(element_type_of("t.big_ints"), 11u);
  EXPECT_EQ(element_type_of("t.floats"), 6u);
  EXPECT_EQ(element_type_of("t.bools"), 7u);
  EXPECT_EQ(element_type_of("t.empty"), 5u);
  EXPECT_EQ(count_of("t.empty"), 0u);
  EXPECT_EQ(element_type_of("t.nested"), 9u);
  EXPECT_EQ(Load<uint32_t>(raw, After(raw, "t.u32") + 4), 4096u);
  EXPECT_EQ(Load<float>(raw, After(raw, "t.f32") + 4), 0.25f);

  Result<std::unique_ptr<GgufFile>> file = GgufFile::Open(good_);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  const GgufFile& g = **file;
  EXPECT_TRUE(g.tensors().empty());
  EXPECT_EQ(*g.GetUInt("t.u32"), 4096u);
  EXPECT_EQ(*g.GetUInt("t.u64"), uint64_t{1} << 40);
  EXPECT_EQ(std::get<uint64_t>(g.Get("t.u32")->value), 4096u);
  EXPECT_EQ(std::get<int64_t>(g.Get("t.i32")->value), -5);
  EXPECT_EQ(std::get<int64_t>(g.Get("t.i64")->value), -(int64_t{1} << 40));
  EXPECT_EQ(*g.GetFloat("t.f32"), 0.25);
  EXPECT_EQ(*g.GetFloat("t.f32_inexact"), static_cast<double>(1e-5f));  // stored as FLOAT32
  EXPECT_EQ(*g.GetFloat("t.u32"), 4096.0);                              // integers read as floats
  EXPECT_EQ(*g.GetFloat("t.i32"), -5.0);
  EXPECT_TRUE(std::get<bool>(g.Get("t.bool")->value));
  EXPECT_FALSE(std::get<bool>(g.Get("t.false")->value));
  EXPECT_EQ(*g.GetString("t.str"), "hello, world");
  EXPECT_EQ(*g.GetString("t.empty_str"), "");
  EXPECT_EQ(*g.GetArrayLength("t.strings"), 3u);
  const auto& strings = std::get<GgufValue::Array>(g.Get("t.strings")->value);
  EXPECT_EQ(std::get<std::string>(strings[0].value), "<s>");
  EXPECT_EQ(std::get<std::string>(strings[1].value), "");
  EXPECT_EQ(std::get<std::string>(strings[2].value), "\xe2\x96\x81the");
  const auto& ints = std::get<GgufValue::Array>(g.Get("t.ints")->value);
  ASSERT_EQ(ints.size(), 3u);
  EXPECT_EQ(std::get<int64_t>(ints[1].value), -2);
  EXPECT_EQ(std::get<int64_t>(ints[2].value), 3);
  const auto& big = std::get<GgufValue::Array>(g.Get("t.big_ints")->value);
  EXPECT_EQ(std::get<int64_t>(big[1].value), int64_t{1} << 40);
  const auto& floats = std::get<GgufValue::Array>(g.Get("t.floats")->value);
  EXPECT_EQ(std::get<double>(floats[1].value), -1.5);
  EXPECT_EQ(std::get<double>(floats[2].value), 2.0);
  EXPECT_EQ(*g.GetArrayLength("t.empty"), 0u);
  const auto& nested = std::get<GgufValue::Array>(g.Get("t.nested")->value);
  ASSERT_EQ(nested.size(), 2u);
  EXPECT_EQ(std::get<GgufValue::Array>(nested[0].value).size(), 2u);
  EXPECT_EQ(std::get<std::string>(std::get<GgufValue::Array>(nested[1].value)[0].value), "x");
}

TEST_F(GgufTest, ReadsEveryValueTypeFromAHandWrittenFile) {
  // Widths the writer never produces: UINT8, INT8, UINT16, INT16, FLOAT64.
  std::string raw = "GGUF" + Le<uint32_t>(2) + Le<uint64_t>(0) + Le<uint64_t>(6);
  raw += Str("u8") + Le<uint32_t>(0) + Le<uint8_t>(200);
  raw += Str("i8") + Le<uint32_t>(1) + Le<int8_t>(-100);
  raw += Str("u16") + Le<uint32_t>(2) + Le<uint16_t>(60000);
  raw += Str("i16") + Le<uint32_t>(3) + Le<int16_t>(-30000);
  raw += Str("f64") + Le<uint32_t>(12) + Le<double>(0.1);
  raw += Str("u8s") + Le<uint32_t>(9) + Le<uint32_t>(0) + Le<uint64_t>(3) + "\x01\x02\x03";
  Result<std::unique_ptr<GgufFile>> file = OpenBytes(raw);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  const GgufFile& g = **file;
  EXPECT_EQ(g.version(), 2u);
  EXPECT_EQ(*g.GetUInt("u8"), 200u);
  EXPECT_EQ(std::get<int64_t>(g.Get("i8")->value), -100);
  EXPECT_EQ(*g.GetUInt("u16"), 60000u);
  EXPECT_EQ(std::get<int64_t>(g.Get("i16")->value), -30000);
  EXPECT_EQ(*g.GetFloat("f64"), 0.1);
  EXPECT_EQ(*g.GetArrayLength("u8s"), 3u);
  EXPECT_EQ(std::get<uint64_t>(std::get<GgufValue::Array>(g.Get("u8s")->value)[2].value), 3u);
}

TEST_F(GgufTest, GettersNameTheKeyAndTheProblem) {
  ASSERT_TRUE(WriteGguf(good_,
                        {{"a.str", S("x")},
                         {"a.neg", I(-3)},
                         {"a.float", F(1.5)},
                         {"a.arr", A({I(1)})},
                         {"a.bool", B(true)}},
                        {})
                  .ok());
  Result<std::unique_ptr<GgufFile>> file = GgufFile::Open(good_);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  const GgufFile& g = **file;
  EXPECT_EQ(g.Get("a.missing"), nullptr);
  Result<uint64_t> missing = g.GetUInt("a.missing");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ErrorOf(missing), good_ + ": metadata key 'a.missing' is missing");
  EXPECT_TRUE(Contains(ErrorOf(g.GetString("a.missing")), "'a.missing' is missing"));
  EXPECT_TRUE(Contains(ErrorOf(g.GetFloat("a.missing")), "'a.missing' is missing"));
  EXPECT_TRUE(Contains(ErrorOf(g.GetArrayLength("a.missing")), "'a.missing' is missing"));

  EXPECT_EQ(ErrorOf(g.GetUInt("a.str")),
            good_ + ": metadata key 'a.str' is a string, not an integer");
  EXPECT_TRUE(Contains(ErrorOf(g.GetUInt("a.float")), "'a.float' is a float, not an integer"));
  EXPECT_TRUE(Contains(ErrorOf(g.GetUInt("a.neg")), "'a.neg' is -3"));
  EXPECT_TRUE(Contains(ErrorOf(g.GetFloat("a.str")), "'a.str' is a string, not a number"));
  EXPECT_TRUE(Contains(ErrorOf(g.GetFloat("a.bool")), "'a.bool' is a bool, not a number"));
  EXPECT_TRUE(Contains(ErrorOf(g.GetString("a.neg")), "'a.neg' is a signed integer, not a string"));
  EXPECT_TRUE(Contains(ErrorOf(g.GetString("a.arr")), "'a.arr' is an array, not a string"));
  EXPECT_TRUE(Contains(ErrorOf(g.GetArrayLength("a.str")), "'a.str' is a string, not an array"));
}

TEST_F(GgufTest, TruncatedFilesNameTheFileAndWhatIsCut) {
  const std::string raw = WriteSample();
  Result<std::unique_ptr<GgufFile>> full = GgufFile::Open(good_);
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  const size_t first_key = 24;
  const size_t first_info = raw.find(Str("token_embd.weight"));
  const size_t second_info = raw.find(Str("blk.0.attn_q.weight"));
  ASSERT_NE(first_info, std::string::npos);
  ASSERT_NE(second_info, std::string::npos);
  const size_t infos_end = After(raw, "output_norm.weight") + 4 + 8 + 4 + 8;
  const TensorInfo& first = (*full)->tensors().front();
  const TensorInfo& last = (*full)->tensors().back();

  struct Cut {
    size_t at;
    std::string expected;
  };
  const std::vector<Cut> cuts = {
      {2, "truncated: the 4-byte magic"},
      {6, "truncated: the header"},
      {20, "truncated: the header"},
      {first_key + 4, "truncated: metadata key/value 1 of 4 runs past the end of the file"},
      {first_key + 12, "truncated: metadata key/value 1 of 4 runs past"},
      {After(raw, "general.architecture") + 4 + 3, "metadata key 'general.architecture'"},
      {After(raw, "tokenizer.ggml.tokens") + 4 + 8 + 10, "metadata key 'tokenizer.ggml.tokens'"},
      {first_info + 5, "truncated: tensor info 1 of 4 runs past"},
      {second_info + 8 + 19 + 6, "truncated: tensor info 2 of 4 ('blk.0.attn_q.weight') runs past"},
      {infos_end, "tensor 'token_embd.weight'"},
      {first.offset + 4, "tensor 'token_embd.weight'"},
      {last.offset + last.bytes - 1, "tensor 'output_norm.weight'"},
  };
  for (const Cut& cut : cuts) {
    SCOPED_TRACE(cut.at);
    std::string error = OpenError(raw.substr(0, cut.at));
    EXPECT_TRUE(Contains(error, "truncated")) << error;
    EXPECT_TRUE(Contains(error, cut.expected)) << error;
    EXPECT_TRUE(Contains(error, "(" + std::to_string(cut.at) + " bytes)")) << error;
  }
  // Cutting off only the padding after the last tensor loses nothing.
  EXPECT_TRUE(OpenBytes(raw.substr(0, last.offset + last.bytes)).ok());
  // Every prefix fails cleanly.
  for (size_t cut = 1; cut < last.offset + last.bytes; ++cut) {
    ASSERT_FALSE(OpenBytes(raw.substr(0, cut)).ok()) << cut;
  }
}

TEST_F(GgufTest, BadMagicAndVersion) {
  std::string raw = WriteSample();
  std::string bad = raw;
  bad.replace(0, 4, "GGML");
  EXPECT_TRUE(Contains(OpenError(bad),
                       "not a GGUF file: it starts with bytes 47 47 4d 4c, "
                       "expected \"GGUF\" (47 47 55 46)"));
  EXPECT_TRUE(Contains(OpenError("PK\x03\x04 not a model at all"), "not a GGUF file"));

  for (uint32_t version : {0u, 1u, 4u, 0x03000000u}) {
    SCOPED_TRACE(version);
    bad = raw;
    Store<uint32_t>(&bad, 4, version);
    Result<std::unique_ptr<GgufFile>> file = OpenBytes(bad);
    EXPECT_EQ(file.status().code(), StatusCode::kInvalidArgument);
    std::string error = ErrorOf(file);
    EXPECT_TRUE(Contains(error, path_ + ": GGUF version " + std::to_string(version))) << error;
    EXPECT_TRUE(Contains(error, "breakeven reads versions 2 and 3")) << error;
  }
  bad = raw;
  Store<uint32_t>(&bad, 4, 2);
  Result<std::unique_ptr<GgufFile>> v2 = OpenBytes(bad);
  ASSERT_TRUE(v2.ok()) << v2.status().ToString();
  EXPECT_EQ((*v2)->version(), 2u);
}

TEST_F(GgufTest, QuantizedTypesAreNamedInTheError) {
  const std::string raw = WriteSample();
  // blk.0.attn_q.weight: name, n_dims = 2, two dims, then the type.
  const size_t type_pos = After(raw, "blk.0.attn_q.weight") + 4 + 2 * 8;
  ASSERT_EQ(Load<uint32_t>(raw, type_pos), 1u);  // F16 as written
  const std::vector<std::pair<uint32_t, std::string>> cases = {
      {12, "Q4_K (12)"}, {2, "Q4_0 (2)"}, {8, "Q8_0 (8)"}, {14, "Q6_K (14)"}, {15, "Q8_K (15)"}};
  for (const auto& [type, name] : cases) {
    SCOPED_TRACE(name);
    std::string bad = raw;
    Store<uint32_t>(&bad, type_pos, type);
    Result<std::unique_ptr<GgufFile>> file = OpenBytes(bad);
    EXPECT_EQ(file.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(ErrorOf(file), path_ + ": tensor 'blk.0.attn_q.weight' has type " + name +
                                 "; breakeven reads F32, F16 and BF16 GGUF tensors");
  }
  std::string bad = raw;
  Store<uint32_t>(&bad, type_pos, 99);
  EXPECT_TRUE(Contains(OpenError(bad), "tensor 'blk.0.attn_q.weight' has unknown type 99"));
}

TEST_F(GgufTest, TensorOffsetsAreChecked) {
  const std::string raw = WriteSample();
  auto offset_pos = [&](std::string_view name, int n_dims) {
    return After(raw, name) + 4 + n_dims * 8 + 4;
  };
  const size_t q_offset = offset_pos("blk.0.attn_q.weight", 2);
  ASSERT_EQ(Load<uint64_t>(raw, q_offset), 64u);  // 60 bytes of token_embd, aligned to 32

  std::string bad = raw;
  Store<uint64_t>(&bad, q_offset, 66);
  EXPECT_TRUE(Contains(OpenError(bad),
                       "tensor 'blk.0.attn_q.weight': offset 66 is not a multiple "
                       "of the alignment 32"));

  bad = raw;
  Store<uint64_t>(&bad, q_offset, 32);  // inside token_embd.weight's 60 bytes
  std::string error = OpenError(bad);
  EXPECT_TRUE(Contains(error, "tensors 'token_embd.weight'")) << error;
  EXPECT_TRUE(Contains(error, "'blk.0.attn_q.weight'")) << error;
  EXPECT_TRUE(Contains(error, "overlap")) << error;

  bad = raw;
  Store<uint64_t>(&bad, q_offset, uint64_t{1} << 20);
  EXPECT_TRUE(Contains(OpenError(bad), "truncated: tensor 'blk.0.attn_q.weight'"));

  bad = raw;
  Store<uint64_t>(&bad, q_offset, ~uint64_t{31});  // an aligned offset near 2^64
  EXPECT_TRUE(Contains(OpenError(bad), "runs past the end of the file"));
}

TEST_F(GgufTest, CorruptCountsAndLengthsAreErrorsNotCrashes) {
  const std::string raw = WriteSample();
  std::string bad = raw;
  Store<uint64_t>(&bad, 8, uint64_t{1} << 62);  // tensor count
  EXPECT_TRUE(Contains(OpenError(bad), "the header says 4611686018427387904 tensors"));

  bad = raw;
  Store<uint64_t>(&bad, 16, uint64_t{1} << 62);  // metadata count
  EXPECT_TRUE(Contains(OpenError(bad), "4611686018427387904 metadata key/values"));

  bad = raw;
  Store<uint64_t>(&bad, 8, 1000);  // more tensors than there are infos
  EXPECT_TRUE(Contains(OpenError(bad), "of 1000"));

  bad = raw;
  Store<uint64_t>(&bad, 24, ~uint64_t{0});  // the first key's length
  EXPECT_TRUE(Contains(OpenError(bad), "truncated: metadata key/value 1 of 4"));

  bad = raw;
  Store<uint64_t>(&bad, After(raw, "general.architecture") + 4, uint64_t{1} << 61);
  EXPECT_TRUE(Contains(OpenError(bad), "truncated: metadata key 'general.architecture'"));

  const size_t tokens = After(raw, "tokenizer.ggml.tokens");
  bad = raw;
  Store<uint64_t>(&bad, tokens + 8, uint64_t{1} << 60);  // array count
  EXPECT_TRUE(Contains(OpenError(bad),
                       "truncated: metadata key 'tokenizer.ggml.tokens' (an "
                       "array of 1152921504606846976 STRING)"));

  bad = raw;
  Store<uint32_t>(&bad, tokens + 4, 13);  // array element type
  EXPECT_TRUE(
      Contains(OpenError(bad), "'tokenizer.ggml.tokens' is an array of unknown value type"));

  bad = raw;
  Store<uint32_t>(&bad, tokens, 77);  // value type
  EXPECT_TRUE(Contains(OpenError(bad), "'tokenizer.ggml.tokens' has unknown value type 77"));

  bad = raw;
  Store<uint32_t>(&bad, After(raw, "token_embd.weight"), 5);  // n_dims
  EXPECT_TRUE(Contains(OpenError(bad), "tensor 'token_embd.weight' has 5 dims"));

  bad = raw;
  Store<uint64_t>(&bad, After(raw, "token_embd.weight") + 4, ~uint64_t{0});  // a dim
  EXPECT_TRUE(Contains(OpenError(bad), "tensor 'token_embd.weight': dim 0"));

  bad = raw;
  Store<uint64_t>(&bad, After(raw, "token_embd.weight") + 4, uint64_t{1} << 62);
  EXPECT_TRUE(Contains(OpenError(bad), "more bytes than fit in 64 bits"));

  // Names longer than GGUF allows, with the bytes there to back them.
  std::string long_key = "GGUF" + Le<uint32_t>(3) + Le<uint64_t>(0) + Le<uint64_t>(1) +
                         Str(std::string(70000, 'k')) + Le<uint32_t>(4) + Le<uint32_t>(1);
  EXPECT_TRUE(Contains(OpenError(long_key), "metadata key/value 1 of 1: a key of 70000 bytes"));
  std::string long_name = "GGUF" + Le<uint32_t>(3) + Le<uint64_t>(1) + Le<uint64_t>(0) +
                          Str(std::string(70000, 'n')) + Le<uint32_t>(1) + Le<uint64_t>(1) +
                          Le<uint32_t>(0) + Le<uint64_t>(0) + std::string(64, '\0');
  EXPECT_TRUE(Contains(OpenError(long_name), "tensor info 1 of 1: a name of 70000 bytes"));

  // Arrays nested deeper than anything real.
  std::string deep =
      "GGUF" + Le<uint32_t>(3) + Le<uint64_t>(0) + Le<uint64_t>(1) + Str("deep") + Le<uint32_t>(9);
  for (int i = 0; i < 100; ++i) deep += Le<uint32_t>(9) + Le<uint64_t>(1);
  deep += Le<uint32_t>(0) + Le<uint64_t>(0);
  EXPECT_TRUE(Contains(OpenError(deep), "nested more than"));

  // Every single-byte corruption of the header opens or fails cleanly (run under ASan).
  const size_t header_end = (*GgufFile::Open(good_))->tensors().front().offset;
  for (size_t pos = 0; pos < header_end; ++pos) {
    for (uint8_t value : {uint8_t{0x00}, uint8_t{0xff}, uint8_t{0x7f}}) {
      bad = raw;
      bad[pos] = static_cast<char>(value);
      Result<std::unique_ptr<GgufFile>> file = OpenBytes(bad);
      if (!file.ok()) {
        EXPECT_TRUE(Contains(file.status().message(), path_)) << file.status().message();
      }
    }
  }
}

TEST_F(GgufTest, DuplicatesAreErrors) {
  std::string raw;
  ASSERT_TRUE(
      WriteGguf(good_, {{"a.b", U(1)}, {"a.c", U(2)}},
                {{"t1", DType::kF32, {1}, F32Data(1, 0)}, {"t2", DType::kF32, {1}, F32Data(1, 0)}})
          .ok());
  raw = ReadFile(good_);
  std::string bad = raw;
  bad[After(raw, "a.c") - 1] = 'b';
  EXPECT_TRUE(Contains(OpenError(bad), "metadata key 'a.b' appears more than once"));
  bad = raw;
  bad[After(raw, "t2") - 1] = '1';
  EXPECT_TRUE(Contains(OpenError(bad), "tensor 't1' appears more than once"));
  bad = raw;
  bad[After(raw, "a.b") + 4] = 'x';  // bool-like garbage in a UINT32 is fine ...
  EXPECT_TRUE(OpenBytes(bad).ok());

  ASSERT_TRUE(WriteGguf(good_, {{"a.flag", B(true)}}, {}).ok());
  bad = ReadFile(good_);
  bad[After(bad, "a.flag") + 4] = 2;  // ... but a BOOL is 0 or 1
  EXPECT_TRUE(Contains(OpenError(bad), "metadata key 'a.flag': a BOOL must be 0 or 1, found 2"));
}

TEST_F(GgufTest, HonoursGeneralAlignment) {
  std::vector<TensorToWrite> tensors = SampleTensors();
  ASSERT_TRUE(WriteGguf(good_, {{"general.alignment", I(64)}}, tensors).ok());
  const std::string raw = ReadFile(good_);
  EXPECT_EQ(Load<uint32_t>(raw, After(raw, "general.alignment")), 4u);  // always UINT32
  Result<std::unique_ptr<GgufFile>> file = GgufFile::Open(good_);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(*(*file)->GetUInt("general.alignment"), 64u);
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorInfo& t = (*file)->tensors()[i];
    EXPECT_EQ(t.offset % 64, 0u) << t.name;
    EXPECT_EQ(std::string(reinterpret_cast<const char*>((*file)->Data(t)), t.bytes),
              tensors[i].data);
  }
  // The second tensor follows 60 bytes of the first: at 64, not 96 or 32.
  EXPECT_EQ(Load<uint64_t>(raw, After(raw, "blk.0.attn_q.weight") + 4 + 16 + 4), 64u);

  // Without the key, the writer writes none and aligns to 32.
  ASSERT_TRUE(WriteGguf(good_, {}, tensors).ok());
  EXPECT_EQ(ReadFile(good_).find("general.alignment"), std::string::npos);

  for (uint32_t bad_alignment : {0u, 48u}) {
    SCOPED_TRACE(bad_alignment);
    std::string bad = raw;
    Store<uint32_t>(&bad, After(raw, "general.alignment") + 4, bad_alignment);
    EXPECT_TRUE(Contains(OpenError(bad), "general.alignment is " + std::to_string(bad_alignment) +
                                             "; expected a power of two"));
  }
  std::string bad = raw;
  Store<uint32_t>(&bad, After(raw, "general.alignment"), 6);  // a FLOAT32
  EXPECT_TRUE(Contains(OpenError(bad), "'general.alignment' is a float, not an integer"));

  EXPECT_FALSE(WriteGguf(good_, {{"general.alignment", U(48)}}, {}).ok());
  EXPECT_FALSE(WriteGguf(good_, {{"general.alignment", S("32")}}, {}).ok());
}

TEST_F(GgufTest, WriterValidatesItsInput) {
  std::string path = dir_.path() + "/w.gguf";
  Status s = WriteGguf(path, {}, {{"w", DType::kF32, {1, 1, 1, 1, 2}, F32Data(2, 0)}});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s.message(), "tensor 'w': shape 1x1x1x1x2 has 5 dims")) << s.message();

  s = WriteGguf(path, {}, {{"w", DType::kF16, {2, 2}, F16Data(3)}});
  EXPECT_TRUE(Contains(s.message(), "tensor 'w': data has 6 bytes, but shape 2x2 of F16 needs 8"))
      << s.message();

  s = WriteGguf(path, {},
                {{"w", DType::kF32, {1}, F32Data(1, 0)}, {"w", DType::kF32, {1}, F32Data(1, 0)}});
  EXPECT_TRUE(Contains(s.message(), "tensor 'w' is given more than once")) << s.message();

  s = WriteGguf(path, {{"k", U(1)}, {"k", U(2)}}, {});
  EXPECT_TRUE(Contains(s.message(), "metadata key 'k' is given more than once")) << s.message();

  s = WriteGguf(path, {{"k", A({S("a"), I(1)})}}, {});
  EXPECT_TRUE(Contains(s.message(),
                       "metadata key 'k': array element 1 is a signed integer, but "
                       "element 0 is a string"))
      << s.message();

  s = WriteGguf(path, {{"k", A({I(-1), U(~uint64_t{0})})}}, {});
  EXPECT_FALSE(s.ok());

  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST_F(GgufTest, ScalarAndEmptyTensors) {
  ASSERT_TRUE(WriteGguf(good_, {},
                        {{"s", DType::kF32, {}, F32Data(1, 9.0f)},
                         {"e", DType::kBF16, {0, 4}, ""},
                         {"v", DType::kF16, {3}, F16Data(3)}})
                  .ok());
  Result<std::unique_ptr<GgufFile>> file = GgufFile::Open(good_);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ((*file)->Find("s")->shape, std::vector<int64_t>{});
  EXPECT_EQ((*file)->Find("s")->bytes, 4u);
  EXPECT_EQ((*file)->Find("e")->shape, (std::vector<int64_t>{0, 4}));
  EXPECT_EQ((*file)->Find("e")->bytes, 0u);
  const TensorInfo* v = (*file)->Find("v");
  EXPECT_EQ(std::string(reinterpret_cast<const char*>((*file)->Data(*v)), v->bytes), F16Data(3));
}

}  // namespace
}  // namespace breakeven::engine
