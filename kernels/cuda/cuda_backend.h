#pragma once

#include "common/status.h"
#include "kernels/backend.h"

namespace breakeven::kernels {

// The CUDA backend (kernels/cuda/cuda_backend.cu): cuBLAS on the tensor cores for matrix
// products, custom kernels for the rest, graphs for decode steps. Fails with the CUDA error when
// no device can be used.
Result<std::unique_ptr<Backend>> CreateCudaBackend(const BackendOptions& options);

}  // namespace breakeven::kernels
