#include "kernels/backend.h"

#include "kernels/cpu/cpu_backend.h"

namespace breakeven::kernels {

Tensor Tensor::Rows(int64_t begin, int64_t count) const {
  Tensor t = *this;
  t.data = static_cast<uint8_t*>(data) + begin * stride * static_cast<int64_t>(DTypeSize(dtype));
  t.rows = count;
  return t;
}

Tensor Tensor::Cols(int64_t begin, int64_t count) const {
  Tensor t = *this;
  t.data = static_cast<uint8_t*>(data) + begin * static_cast<int64_t>(DTypeSize(dtype));
  t.cols = count;
  return t;
}

Result<std::unique_ptr<Backend>> CreateBackend(std::string_view name,
                                               const BackendOptions& options) {
  if (name == "cpu") return CreateCpuBackend(options);
  return InvalidArgument("backend '{}' is not available in this build (available: cpu)", name);
}

}  // namespace breakeven::kernels
