#include "engine/safetensors.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/support/process.h"

namespace breakeven::engine {
namespace {

using breakeven::testing::ReadFile;
using breakeven::testing::WriteFile;

// A fresh directory, removed with everything in it.
class TempDir : public breakeven::testing::ScopedTempDir {
 public:
  TempDir() : ScopedTempDir("safetensors") {}
};

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

std::string Le64(uint64_t v) {
  char b[8];
  std::memcpy(b, &v, 8);
  return std::string(b, 8);
}

// A file with the given header text (not padded) and data section.
std::string RawFile(const std::string& header, const std::string& data) {
  return Le64(header.size()) + header + data;
}

std::vector<TensorToWrite> SampleTensors() {
  return {
      {"model.embed_tokens.weight", DType::kF32, {2, 3}, F32Data(6, 1.0f)},
      {"model.norm.weight", DType::kF16, {5}, F16Data(5)},
      {"lm_head.weight", DType::kBF16, {2, 2, 3}, Bf16Data(12)},
      {"scale", DType::kF32, {}, F32Data(1, 7.0f)},
  };
}

// The message of a failed Result; fails the test if it succeeded.
template <typename T>
std::string ErrorOf(const Result<T>& r) {
  EXPECT_FALSE(r.ok());
  return r.ok() ? std::string() : r.status().message();
}

bool Contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST(ShapeString, JoinsDimsWithX) {
  EXPECT_EQ(ShapeString({4096, 1024}), "4096x1024");
  EXPECT_EQ(ShapeString({7}), "7");
  EXPECT_EQ(ShapeString({2, 0, 3}), "2x0x3");
  EXPECT_EQ(ShapeString({}), "scalar");
}

TEST(Safetensors, RoundTripsF32F16AndBf16) {
  TempDir dir;
  std::string path = dir.path() + "/model.safetensors";
  std::vector<TensorToWrite> written = SampleTensors();
  ASSERT_TRUE(WriteSafetensors(path, written).ok());
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));

  Result<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  const SafetensorsFile& st = **file;
  EXPECT_EQ(st.path(), path);
  EXPECT_TRUE(st.metadata().empty());
  ASSERT_EQ(st.tensors().size(), written.size());
  const std::string raw = ReadFile(path);
  for (size_t i = 0; i < written.size(); ++i) {
    const TensorToWrite& w = written[i];
    SCOPED_TRACE(w.name);
    EXPECT_EQ(st.tensors()[i].name, w.name);  // in file order, which is the order written
    const TensorInfo* t = st.Find(w.name);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->dtype, w.dtype);
    EXPECT_EQ(t->shape, w.shape);
    EXPECT_EQ(t->bytes, w.data.size());
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(st.Data(*t)), t->bytes), w.data);
    // The offset counts from the start of the file.
    ASSERT_LE(t->offset + t->bytes, raw.size());
    EXPECT_EQ(raw.substr(t->offset, t->bytes), w.data);
  }
  EXPECT_EQ(st.Find("model.missing"), nullptr);
}

TEST(Safetensors, WritesThePaddedHeaderTheReferenceImplementationReads) {
  TempDir dir;
  std::string path = dir.path() + "/model.safetensors";
  std::vector<TensorToWrite> written = SampleTensors();
  ASSERT_TRUE(WriteSafetensors(path, written).ok());
  const std::string raw = ReadFile(path);
  ASSERT_GE(raw.size(), 8u);
  uint64_t header_len;
  std::memcpy(&header_len, raw.data(), 8);
  EXPECT_EQ(header_len % 8, 0u);
  uint64_t data_bytes = 0;
  for (const auto& t : written) data_bytes += t.data.size();
  EXPECT_EQ(raw.size(), 8 + header_len + data_bytes);

  std::string header = raw.substr(8, header_len);
  size_t close = header.rfind('}');
  ASSERT_NE(close, std::string::npos);
  EXPECT_EQ(header.substr(close + 1), std::string(header_len - close - 1, ' '));
  nlohmann::json j = nlohmann::json::parse(header);
  EXPECT_FALSE(j.contains("__metadata__"));
  EXPECT_EQ(j["model.embed_tokens.weight"]["dtype"], "F32");
  EXPECT_EQ(j["model.embed_tokens.weight"]["shape"], nlohmann::json({2, 3}));
  EXPECT_EQ(j["model.embed_tokens.weight"]["data_offsets"], nlohmann::json({0, 24}));
  EXPECT_EQ(j["model.norm.weight"]["dtype"], "F16");
  EXPECT_EQ(j["model.norm.weight"]["data_offsets"], nlohmann::json({24, 34}));
  EXPECT_EQ(j["lm_head.weight"]["dtype"], "BF16");
  EXPECT_EQ(j["lm_head.weight"]["data_offsets"], nlohmann::json({34, 58}));
  EXPECT_EQ(j["scale"]["shape"], nlohmann::json::array());
  EXPECT_EQ(j["scale"]["data_offsets"], nlohmann::json({58, 62}));
}

TEST(Safetensors, RoundTripsMetadata) {
  TempDir dir;
  std::string path = dir.path() + "/model.safetensors";
  std::map<std::string, std::string> metadata = {
      {"format", "pt"}, {"note", "a \"quoted\" value, \xc3\xbcnicode"}, {"empty", ""}};
  ASSERT_TRUE(WriteSafetensors(path, SampleTensors(), metadata).ok());
  Result<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ((*file)->metadata(), metadata);
  EXPECT_EQ((*file)->tensors().size(), 4u);  // __metadata__ is not a tensor
  EXPECT_EQ((*file)->Find("__metadata__"), nullptr);

  std::string raw = ReadFile(path);
  uint64_t header_len;
  std::memcpy(&header_len, raw.data(), 8);
  nlohmann::json j = nlohmann::json::parse(raw.substr(8, header_len));
  EXPECT_EQ(j["__metadata__"]["format"], "pt");
}

TEST(Safetensors, TruncatedFilesNameTheFile) {
  TempDir dir;
  std::string good = dir.path() + "/good.safetensors";
  ASSERT_TRUE(WriteSafetensors(good, SampleTensors(), {{"format", "pt"}}).ok());
  const std::string raw = ReadFile(good);
  uint64_t header_len;
  std::memcpy(&header_len, raw.data(), 8);
  const size_t data_start = 8 + header_len;

  const std::vector<size_t> cuts = {
      3,                   // inside the header length
      8,                   // just the header length
      8 + header_len / 2,  // inside the JSON
      data_start - 1,      // the last byte of the header
      data_start,          // no data
      data_start + 10,     // inside the first tensor
      raw.size() - 1,      // inside the last tensor
  };
  for (size_t cut : cuts) {
    SCOPED_TRACE(cut);
    std::string path = dir.path() + "/cut_" + std::to_string(cut) + ".safetensors";
    WriteFile(path, raw.substr(0, cut));
    std::string error = ErrorOf(SafetensorsFile::Open(path));
    EXPECT_TRUE(Contains(error, path)) << error;
    EXPECT_TRUE(Contains(error, "truncated")) << error;
  }
  // Past the header, the message names the tensor whose bytes are missing.
  std::string path = dir.path() + "/cut_last.safetensors";
  WriteFile(path, raw.substr(0, raw.size() - 1));
  EXPECT_TRUE(Contains(ErrorOf(SafetensorsFile::Open(path)), "tensor 'scale'"));

  std::string empty = dir.path() + "/empty.safetensors";
  WriteFile(empty, "");
  std::string error = ErrorOf(SafetensorsFile::Open(empty));
  EXPECT_TRUE(Contains(error, empty)) << error;
  EXPECT_TRUE(Contains(error, "empty")) << error;
}

TEST(Safetensors, DataOffsetsMustMatchTheShape) {
  TempDir dir;
  std::string path = dir.path() + "/x.safetensors";
  WriteFile(path,
            RawFile(R"({"model.norm.weight":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}})",
                    std::string(16, '\0')));
  Result<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path);
  EXPECT_EQ(file.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(ErrorOf(file),
            path +
                ": tensor 'model.norm.weight': data_offsets [0, 8] do not match shape 4 of F32 "
                "(16 bytes)");

  // The same header with matching offsets is accepted, so the check is not over-eager.
  WriteFile(path,
            RawFile(R"({"model.norm.weight":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
                    std::string(16, '\0')));
  EXPECT_TRUE(SafetensorsFile::Open(path).ok());
}

TEST(Safetensors, UnsupportedDtypeNamesTheTensorAndDtype) {
  TempDir dir;
  std::string path = dir.path() + "/x.safetensors";
  for (const char* dtype : {"I8", "F64", "U8", "F8_E4M3", "f32"}) {
    SCOPED_TRACE(dtype);
    WriteFile(path, RawFile(fmt::format(R"({{"layers.0.w":{{"dtype":"{}","shape":[2],)"
                                        R"("data_offsets":[0,8]}}}})",
                                        dtype),
                            std::string(8, '\0')));
    Result<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path);
    EXPECT_EQ(file.status().code(), StatusCode::kInvalidArgument);
    std::string error = ErrorOf(file);
    EXPECT_TRUE(Contains(error, path)) << error;
    EXPECT_TRUE(Contains(error, "tensor 'layers.0.w' has dtype " + std::string(dtype))) << error;
    EXPECT_TRUE(Contains(error, "F32, F16 and BF16")) << error;
  }
}

TEST(Safetensors, OverlappingTensorsAreAnError) {
  TempDir dir;
  std::string path = dir.path() + "/x.safetensors";
  WriteFile(path, RawFile(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                          R"("b":{"dtype":"F16","shape":[8],"data_offsets":[8,24]}})",
                          std::string(24, '\0')));
  std::string error = ErrorOf(SafetensorsFile::Open(path));
  EXPECT_TRUE(Contains(error, path)) << error;
  EXPECT_TRUE(Contains(error, "'a'")) << error;
  EXPECT_TRUE(Contains(error, "'b'")) << error;
  EXPECT_TRUE(Contains(error, "overlap")) << error;

  // The same range twice.
  WriteFile(path, RawFile(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                          R"("b":{"dtype":"BF16","shape":[8],"data_offsets":[0,16]}})",
                          std::string(16, '\0')));
  EXPECT_TRUE(Contains(ErrorOf(SafetensorsFile::Open(path)), "overlap"));

  // A small tensor inside a big one, listed after a third that ends before it.
  WriteFile(path, RawFile(R"({"a":{"dtype":"F32","shape":[8],"data_offsets":[0,32]},)"
                          R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},)"
                          R"("c":{"dtype":"F32","shape":[1],"data_offsets":[24,28]}})",
                          std::string(32, '\0')));
  EXPECT_TRUE(Contains(ErrorOf(SafetensorsFile::Open(path)), "overlap"));

  // Adjacent ranges, a gap and an empty tensor are fine; tensors come back in file order.
  const std::string header = R"({"z":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                             R"("e":{"dtype":"F32","shape":[0,3],"data_offsets":[4,4]},)"
                             R"("y":{"dtype":"F16","shape":[2],"data_offsets":[8,12]},)"
                             R"("x":{"dtype":"F16","shape":[2],"data_offsets":[16,20]}})";
  WriteFile(path, RawFile(header, std::string(20, '\0')));
  Result<std::unique_ptr<SafetensorsFile>> ok = SafetensorsFile::Open(path);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  ASSERT_EQ((*ok)->tensors().size(), 4u);
  EXPECT_EQ((*ok)->tensors()[0].name, "z");
  EXPECT_EQ((*ok)->tensors()[1].name, "e");
  EXPECT_EQ((*ok)->tensors()[3].name, "x");
  EXPECT_EQ((*ok)->Find("e")->bytes, 0u);
  EXPECT_EQ((*ok)->Find("x")->offset, 8 + header.size() + 16);
}

TEST(Safetensors, OffsetsPastTheDataAreAnError) {
  TempDir dir;
  std::string path = dir.path() + "/x.safetensors";
  WriteFile(path, RawFile(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
                          std::string(12, '\0')));
  std::string error = ErrorOf(SafetensorsFile::Open(path));
  EXPECT_TRUE(Contains(error, path + ": truncated: tensor 'w'")) << error;
  EXPECT_TRUE(Contains(error, "12 bytes")) << error;
}

TEST(Safetensors, MalformedHeadersAreErrors) {
  TempDir dir;
  std::string path = dir.path() + "/x.safetensors";
  const std::string data(16, '\0');
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[]", "must be a JSON object, found array"},
      {R"({"w":)", "not valid JSON"},
      {R"({"w":1} trailing)", "not valid JSON"},
      {R"({"__metadata__":["x"]})", "__metadata__ must be an object of strings, found [\"x\"]"},
      {R"({"__metadata__":{"k":1}})", "__metadata__ 'k' must be a string, found 1"},
      {R"({"w":3})", "tensor 'w': expected an object"},
      {R"({"w":{"shape":[4],"data_offsets":[0,16]}})", "tensor 'w': missing \"dtype\""},
      {R"({"w":{"dtype":7,"shape":[4],"data_offsets":[0,16]}})", "dtype must be a string"},
      {R"({"w":{"dtype":"F32","data_offsets":[0,16]}})", "tensor 'w': missing \"shape\""},
      {R"({"w":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})",
       "shape must be an array of non-negative integers, found -4"},
      {R"({"w":{"dtype":"F32","shape":[4.0],"data_offsets":[0,16]}})", "non-negative integers"},
      {R"({"w":{"dtype":"F32","shape":"4","data_offsets":[0,16]}})", "non-negative integers"},
      {R"({"w":{"dtype":"F32","shape":[4]}})", "missing \"data_offsets\""},
      {R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[16]}})", "found [16]"},
      {R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[-1,15]}})", "[begin, end]"},
      {R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[16,0]}})", "end before they begin"},
      {R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,16]}})",
       "more bytes than fit in 64 bits"},
      {R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
       R"("w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
       "names 'w' more than once"},
  };
  for (const auto& [header, expected] : cases) {
    SCOPED_TRACE(header);
    WriteFile(path, RawFile(header, data));
    std::string error = ErrorOf(SafetensorsFile::Open(path));
    EXPECT_TRUE(Contains(error, path + ": ")) << error;
    EXPECT_TRUE(Contains(error, expected)) << error;
  }
}

TEST(Safetensors, DeeplyNestedHeadersAreErrorsNotCrashes) {
  TempDir dir;
  std::string path = dir.path() + "/x.safetensors";
  const int depth = 200000;
  std::string header = R"({"w":{"dtype":"F32","shape":)" + std::string(depth, '[') +
                       std::string(depth, ']') + R"(,"data_offsets":[0,4]}})";
  WriteFile(path, RawFile(header, std::string(4, '\0')));
  std::string error = ErrorOf(SafetensorsFile::Open(path));
  EXPECT_TRUE(Contains(error, path + ": tensor 'w': shape must be an array of non-negative "
                                     "integers, found an array of 1 elements"))
      << error;
}

TEST(Safetensors, HeaderLengthMustBeSane) {
  TempDir dir;
  std::string path = dir.path() + "/x.safetensors";
  WriteFile(path, Le64(uint64_t{1} << 40) + "{}");
  std::string error = ErrorOf(SafetensorsFile::Open(path));
  EXPECT_TRUE(Contains(error, path + ": header length 1099511627776 is more than")) << error;

  WriteFile(path, Le64(200) + "{}");
  error = ErrorOf(SafetensorsFile::Open(path));
  EXPECT_TRUE(Contains(error, path + ": truncated: the header length says 200 bytes")) << error;

  WriteFile(path, Le64(1) + "{}");
  error = ErrorOf(SafetensorsFile::Open(path));
  EXPECT_TRUE(Contains(error, "header length 1 is too short")) << error;

  // The smallest valid file: no tensors at all.
  WriteFile(path, Le64(2) + "{}");
  Result<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_TRUE((*file)->tensors().empty());
}

TEST(Safetensors, WriterValidatesItsInput) {
  TempDir dir;
  std::string path = dir.path() + "/x.safetensors";
  Status s = WriteSafetensors(path, {{"w", DType::kF32, {2, 3}, std::string(20, '\0')}});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s.message(), "tensor 'w': data has 20 bytes, but shape 2x3 of F32 needs 24"))
      << s.message();

  s = WriteSafetensors(path, {{"w", DType::kF16, {2}, std::string(4, '\0')},
                              {"w", DType::kF16, {2}, std::string(4, '\0')}});
  EXPECT_TRUE(Contains(s.message(), "tensor 'w' is given more than once")) << s.message();

  s = WriteSafetensors(path, {{"__metadata__", DType::kF16, {2}, std::string(4, '\0')}});
  EXPECT_FALSE(s.ok());

  s = WriteSafetensors(path, {{"w", DType::kF32, {-1}, ""}});
  EXPECT_FALSE(s.ok());

  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));

  // A failed write leaves an existing file alone.
  ASSERT_TRUE(WriteSafetensors(path, SampleTensors()).ok());
  std::string before = ReadFile(path);
  EXPECT_FALSE(WriteSafetensors(path, {{"w", DType::kF32, {2}, "x"}}).ok());
  EXPECT_EQ(ReadFile(path), before);

  s = WriteSafetensors(dir.path() + "/no/such/dir/x.safetensors", SampleTensors());
  EXPECT_TRUE(Contains(s.message(), dir.path() + "/no/such/dir/x.safetensors.tmp")) << s.message();
}

TEST(MappedFile, ErrorsNameTheFile) {
  TempDir dir;
  std::string missing = dir.path() + "/missing.safetensors";
  Result<std::shared_ptr<MappedFile>> r = MappedFile::Open(missing);
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(ErrorOf(r), missing));
  EXPECT_TRUE(Contains(ErrorOf(SafetensorsFile::Open(missing)), missing));

  std::string error = ErrorOf(MappedFile::Open(dir.path()));
  EXPECT_TRUE(Contains(error, dir.path())) << error;
  EXPECT_TRUE(Contains(error, "directory")) << error;

  std::string empty = dir.path() + "/empty";
  WriteFile(empty, "");
  error = ErrorOf(MappedFile::Open(empty));
  EXPECT_TRUE(Contains(error, empty)) << error;
  EXPECT_TRUE(Contains(error, "empty")) << error;

  if (::geteuid() != 0) {  // root reads anything
    std::string unreadable = dir.path() + "/unreadable";
    WriteFile(unreadable, "data");
    ASSERT_EQ(::chmod(unreadable.c_str(), 0), 0);
    r = MappedFile::Open(unreadable);
    EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
    EXPECT_TRUE(Contains(ErrorOf(r), unreadable));
  }

  std::string ok = dir.path() + "/ok";
  WriteFile(ok, "hello");
  r = MappedFile::Open(ok);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->size(), 5u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>((*r)->data()), 5), "hello");
  EXPECT_EQ((*r)->path(), ok);
}

}  // namespace
}  // namespace breakeven::engine
