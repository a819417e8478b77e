// Sampling on the device: kernels/sampling.h's rule, one thread block per sample.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/backend.h"

namespace breakeven::kernels::cuda {

// tokens[i] = SampleRow(logits row specs[i].row, vocab, specs[i]'s temperature, top_k, top_p,
// uniform) for i < n: the same token, except where the draw lands within rounding (~1e-15 of the
// kept mass) of the boundary between two tokens, and never otherwise for greedy specs.
// logits: fp32 rows row_stride floats apart, each of `vocab` (< 2^26) logits; specs (n) and
// tokens (n) as well: all device memory. Enqueued on `stream`; never synchronises or allocates,
// so it may be captured in a graph.
void LaunchSample(const float* logits, int64_t row_stride, int64_t vocab, const SampleSpec* specs,
                  int64_t n, int32_t* tokens, cudaStream_t stream);

}  // namespace breakeven::kernels::cuda
