// The paged KV cache: fixed-size blocks of block_size tokens, handed out by a reference-counted
// allocator, and the per-layer storage the backend reads and writes.
//
// A sequence owns a block table (logical block i -> physical block). Blocks are shared by
// reference counting: the n samples of one prompt share the prompt's blocks; the first write
// into a shared block copies it (copy-on-write), so samples never see each other's tokens.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "common/status.h"
#include "kernels/backend.h"

namespace breakeven::engine {

class BlockAllocator {
 public:
  explicit BlockAllocator(int64_t num_blocks);

  int64_t num_blocks() const { return static_cast<int64_t>(refs_.size()); }
  int64_t free_blocks() const { return static_cast<int64_t>(free_.size()); }
  int64_t used_blocks() const { return num_blocks() - free_blocks(); }

  // A free block with one reference, or nothing when all are in use.
  std::optional<int32_t> Allocate();
  void Retain(int32_t block);
  // Drops a reference; the block is free again at zero.
  void Release(int32_t block);
  int refcount(int32_t block) const { return refs_[static_cast<size_t>(block)]; }

 private:
  std::vector<int> refs_;
  std::vector<int32_t> free_;  // a stack: recently freed blocks are reused first
};

// K and V storage for every layer, allocated from the backend.
class KvCacheStorage {
 public:
  // num_blocks x block_size tokens per layer, num_kv_heads x head_dim values per token (fp32).
  static Result<std::unique_ptr<KvCacheStorage>> Create(kernels::Backend& backend,
                                                        int64_t num_layers, int64_t num_blocks,
                                                        int64_t block_size, int64_t num_kv_heads,
                                                        int64_t head_dim);

  const kernels::KvCacheLayer& layer(int64_t i) const { return layers_[static_cast<size_t>(i)]; }
  int64_t bytes() const { return bytes_; }

  // Bytes one block takes across all layers (K and V).
  static int64_t BlockBytes(int64_t num_layers, int64_t block_size, int64_t num_kv_heads,
                            int64_t head_dim);

 private:
  std::vector<std::unique_ptr<kernels::Buffer>> buffers_;
  std::vector<kernels::KvCacheLayer> layers_;
  int64_t bytes_ = 0;
};

}  // namespace breakeven::engine
