// Hugging Face safetensors files: an 8-byte little-endian header length, a JSON header mapping
// each tensor name to {dtype, shape, data_offsets: [begin, end]} (offsets relative to the end of
// the header) plus an optional "__metadata__" object of strings, then the data.
//
// Reading maps the file and validates the header completely before anything is used: every
// tensor's byte range lies inside the file, matches its shape and dtype, and ranges do not
// overlap. Supported dtypes: F32, F16, BF16; any other is an error naming the tensor.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "engine/mapped_file.h"
#include "engine/tensor_file.h"

namespace breakeven::engine {

class SafetensorsFile {
 public:
  // Errors name the file and, where it applies, the tensor: "x.safetensors: tensor
  // 'model.norm.weight': data_offsets [0, 100] do not match shape 4096 of F32 (16384 bytes)".
  static Result<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* Find(std::string_view name) const;
  // Start of the tensor's bytes inside the mapping.
  const uint8_t* Data(const TensorInfo& tensor) const { return file_->data() + tensor.offset; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& path() const { return file_->path(); }

 private:
  std::shared_ptr<MappedFile> file_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
  std::map<std::string, std::string> metadata_;
};

// Writes a safetensors file (tensors in the order given, 8-byte aligned header as the reference
// implementation pads it). For tests and for exporting models.
Status WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                        const std::map<std::string, std::string>& metadata = {});

}  // namespace breakeven::engine
