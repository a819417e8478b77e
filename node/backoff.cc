#include "node/backoff.h"

#include <algorithm>

namespace breakeven::node {

Backoff::Backoff(Millis initial, Millis max, uint64_t seed)
    : initial_(initial), max_(std::max(initial, max)), rng_(seed) {}

Millis Backoff::Next() {
  int64_t cap = initial_.count();
  for (int i = 0; i < attempt_ && cap < max_.count(); ++i) cap *= 2;
  cap = std::min(cap, max_.count());
  ++attempt_;
  std::uniform_int_distribution<int64_t> pick(initial_.count(), cap);
  return Millis(pick(rng_));
}

}  // namespace breakeven::node
