// Reconnect delays: exponential growth with full jitter (each delay is uniform in
// [initial, cap], where the cap doubles per failure up to max), so agents that lost the
// scheduler together do not return together.
#pragma once

#include <cstdint>
#include <random>

#include "common/clock.h"

namespace breakeven::node {

class Backoff {
 public:
  Backoff(Millis initial, Millis max, uint64_t seed);

  // The delay before the next attempt; grows the cap.
  Millis Next();
  // After a success: the next delay starts small again.
  void Reset() { attempt_ = 0; }
  int attempts() const { return attempt_; }

 private:
  Millis initial_;
  Millis max_;
  int attempt_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace breakeven::node
