#include "kernels/backend.h"

#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/sampling.h"
#ifdef BREAKEVEN_WITH_CUDA
#include "kernels/cuda/cuda_backend.h"
#endif

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

void Backend::Sample(const Tensor& logits, const SampleSpec* specs, int64_t n, int32_t* tokens) {
  Synchronize();
  std::vector<SampleSpec> host_specs(static_cast<size_t>(n));
  CopyToHost(host_specs.data(), specs, host_specs.size() * sizeof(SampleSpec));
  std::vector<float> row(static_cast<size_t>(logits.cols));
  std::vector<int32_t> out(static_cast<size_t>(n));
  SampleScratch scratch;
  for (int64_t i = 0; i < n; ++i) {
    const SampleSpec& s = host_specs[static_cast<size_t>(i)];
    CopyToHost(row.data(), logits.row(s.row), row.size() * sizeof(float));
    out[static_cast<size_t>(i)] =
        SampleRow(row.data(), logits.cols, s.temperature, s.top_k, s.top_p, s.uniform, scratch);
  }
  CopyToDevice(tokens, out.data(), out.size() * sizeof(int32_t));
}

Status Backend::BeginCapture() {
  return FailedPrecondition("backend '{}' cannot capture graphs", name());
}
Result<int> Backend::EndCapture() {
  return FailedPrecondition("backend '{}' cannot capture graphs", name());
}
Status Backend::Replay(int graph) {
  (void)graph;
  return FailedPrecondition("backend '{}' cannot replay graphs", name());
}

Result<std::unique_ptr<Backend>> CreateBackend(std::string_view name,
                                               const BackendOptions& options) {
  if (name == "cpu") return CreateCpuBackend(options);
#ifdef BREAKEVEN_WITH_CUDA
  if (name == "cuda") return CreateCudaBackend(options);
  return InvalidArgument("backend '{}' is not available in this build (available: cpu, cuda)",
                         name);
#else
  return InvalidArgument(
      "backend '{}' is not available in this build (available: cpu; built without CUDA)", name);
#endif
}

}  // namespace breakeven::kernels
