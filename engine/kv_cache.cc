#include "engine/kv_cache.h"

#include <cassert>

namespace breakeven::engine {

BlockAllocator::BlockAllocator(int64_t num_blocks) : refs_(static_cast<size_t>(num_blocks), 0) {
  free_.reserve(static_cast<size_t>(num_blocks));
  for (int64_t b = num_blocks - 1; b >= 0; --b) free_.push_back(static_cast<int32_t>(b));
}

std::optional<int32_t> BlockAllocator::Allocate() {
  if (free_.empty()) return std::nullopt;
  int32_t b = free_.back();
  free_.pop_back();
  refs_[static_cast<size_t>(b)] = 1;
  return b;
}

void BlockAllocator::Retain(int32_t block) {
  assert(refs_[static_cast<size_t>(block)] > 0);
  ++refs_[static_cast<size_t>(block)];
}

void BlockAllocator::Release(int32_t block) {
  int& r = refs_[static_cast<size_t>(block)];
  assert(r > 0);
  if (--r == 0) free_.push_back(block);
}

int64_t KvCacheStorage::BlockBytes(int64_t num_layers, int64_t block_size, int64_t num_kv_heads,
                                   int64_t head_dim) {
  return 2 * num_layers * block_size * num_kv_heads * head_dim *
         static_cast<int64_t>(sizeof(float));
}

Result<std::unique_ptr<KvCacheStorage>> KvCacheStorage::Create(
    kernels::Backend& backend, int64_t num_layers, int64_t num_blocks, int64_t block_size,
    int64_t num_kv_heads, int64_t head_dim) {
  auto s = std::make_unique<KvCacheStorage>();
  const size_t per_tensor =
      static_cast<size_t>(num_blocks * block_size * num_kv_heads * head_dim) * sizeof(float);
  for (int64_t l = 0; l < num_layers; ++l) {
    BE_ASSIGN_OR_RETURN(auto k, backend.Allocate(per_tensor));
    BE_ASSIGN_OR_RETURN(auto v, backend.Allocate(per_tensor));
    kernels::KvCacheLayer layer;
    layer.k = k->data();
    layer.v = v->data();
    layer.dtype = DType::kF32;
    layer.num_blocks = num_blocks;
    layer.block_size = block_size;
    layer.num_kv_heads = num_kv_heads;
    layer.head_dim = head_dim;
    s->layers_.push_back(layer);
    s->buffers_.push_back(std::move(k));
    s->buffers_.push_back(std::move(v));
    s->bytes_ += static_cast<int64_t>(2 * per_tensor);
  }
  return s;
}

}  // namespace breakeven::engine
