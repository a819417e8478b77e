// What a model file says about one tensor, whatever the format.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "kernels/dtype.h"

namespace breakeven::engine {

struct TensorInfo {
  std::string name;  // as stored in the file
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;  // row-major, outermost first: an HF linear weight is {out, in}
  uint64_t offset = 0;         // of the first byte, from the start of the file
  uint64_t bytes = 0;          // = product(shape) * DTypeSize(dtype)

  int64_t elements() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

// A tensor to be written by the test/export writers. `data` holds the elements in `dtype`,
// row-major.
struct TensorToWrite {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::string data;
};

// "4096x1024" for messages.
std::string ShapeString(const std::vector<int64_t>& shape);

// elements x dtype size, or nullopt when a dim is negative or the product does not fit in 64 bits.
std::optional<uint64_t> TensorByteSize(const std::vector<int64_t>& shape, DType dtype);

// For the writers: checks that `t`'s name is new (adding it to *names) and that its data holds
// exactly its shape's bytes. `type_name` is how the format calls t.dtype, for messages.
Status CheckTensorToWrite(const std::string& path, const TensorToWrite& t,
                          std::set<std::string_view>* names, std::string_view type_name);

// For the writers: writes `parts` one after the other to path + ".tmp", syncs it, then renames
// it over `path`, so that a reader never sees a half-written file. Errors name the file.
Status WriteFileAtomically(const std::string& path, const std::vector<std::string_view>& parts);

}  // namespace breakeven::engine
