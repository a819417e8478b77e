#pragma once

#include <memory>

#include "kernels/backend.h"

namespace breakeven::kernels {

// The CPU backend (kernels/cpu/cpu_backend.cc): OpenBLAS for matrix products, fp32 compute,
// KV cache in fp32.
std::unique_ptr<Backend> CreateCpuBackend(const BackendOptions& options);

}  // namespace breakeven::kernels
