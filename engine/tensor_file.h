// What a model file says about one tensor, whatever the format.
#pragma once

#include <cstdint>
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

// For the writers: writes `parts` one after the other to path + ".tmp", syncs it, then renames
// it over `path`, so that a reader never sees a half-written file. Errors name the file.
Status WriteFileAtomically(const std::string& path, const std::vector<std::string_view>& parts);

}  // namespace breakeven::engine
