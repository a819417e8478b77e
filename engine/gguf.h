// GGUF files (llama.cpp's format, version 2 and 3): magic "GGUF", version, tensor count,
// metadata key/value count, the key/values (typed: integers, floats, bool, string, arrays),
// the tensor infos (name, dims with the fastest-varying first, type, offset into the data
// section), then the data section aligned to general.alignment (default 32).
//
// TensorInfo.shape is given row-major (outermost first), i.e. GGUF's dims reversed, so an
// HF-style {out, in} weight reads the same from either format. Tensor types read: F32 (0),
// F16 (1), BF16 (30); a quantized type is an error naming the tensor and the type.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/status.h"
#include "engine/mapped_file.h"
#include "engine/tensor_file.h"

namespace breakeven::engine {

// A metadata value. Integers of every width are widened to int64/uint64, floats to double.
struct GgufValue {
  using Array = std::vector<GgufValue>;
  std::variant<uint64_t, int64_t, double, bool, std::string, Array> value;
};

class GgufFile {
 public:
  // Validates the whole header and every tensor's byte range before returning. Errors name the
  // file and the key or tensor.
  static Result<std::unique_ptr<GgufFile>> Open(const std::string& path);

  uint32_t version() const { return version_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* Find(std::string_view name) const;
  const uint8_t* Data(const TensorInfo& tensor) const { return file_->data() + tensor.offset; }
  const std::string& path() const { return file_->path(); }

  const GgufValue* Get(std::string_view key) const;
  // Typed lookups; errors name the file and key ("missing", "is a string, not an integer").
  // Integer getters accept any integer type that fits.
  Result<uint64_t> GetUInt(std::string_view key) const;
  Result<double> GetFloat(std::string_view key) const;  // float or integer values
  Result<std::string> GetString(std::string_view key) const;
  // Number of elements of an array value (e.g. tokenizer.ggml.tokens gives the vocab size).
  Result<size_t> GetArrayLength(std::string_view key) const;

 private:
  std::shared_ptr<MappedFile> file_;
  uint32_t version_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
  std::map<std::string, GgufValue, std::less<>> metadata_;
};

// One metadata entry to write. Integers are written as UINT32/INT32 when they fit and as
// UINT64/INT64 otherwise; doubles as FLOAT32 (GGUF's usual width for hyperparameters);
// arrays of strings as ARRAY of STRING.
struct GgufKeyValue {
  std::string key;
  GgufValue value;
};

// Writes a version 3 GGUF file aligned to 32 bytes, or to general.alignment when the caller
// passes that key. TensorToWrite.shape is row-major; the
// writer stores the dims reversed, as GGUF expects. For tests and for exporting models.
Status WriteGguf(const std::string& path, const std::vector<GgufKeyValue>& metadata,
                 const std::vector<TensorToWrite>& tensors);

}  // namespace breakeven::engine
