#include "node/backoff.h"

#include <gtest/gtest.h>

namespace breakeven::node {
namespace {

TEST(Backoff, DelaysStayWithinADoublingCap) {
  Backoff b(Millis(100), Millis(2000), 42);
  int64_t caps[] = {100, 200, 400, 800, 1600, 2000, 2000, 2000};
  for (int64_t cap : caps) {
    Millis d = b.Next();
    EXPECT_GE(d.count(), 100);
    EXPECT_LE(d.count(), cap);
  }
}

TEST(Backoff, ResetStartsSmallAgain) {
  Backoff b(Millis(100), Millis(10000), 1);
  for (int i = 0; i < 10; ++i) b.Next();
  b.Reset();
  EXPECT_LE(b.Next().count(), 100);
}

TEST(Backoff, JitterSpreadsAgentsThatFailedTogether) {
  // Ten agents, different seeds, fifth attempt each: their delays must not coincide.
  std::set<int64_t> delays;
  for (uint64_t seed = 0; seed < 10; ++seed) {
    Backoff b(Millis(100), Millis(5000), seed);
    for (int i = 0; i < 4; ++i) b.Next();
    delays.insert(b.Next().count());
  }
  EXPECT_GE(delays.size(), 8u);
}

}  // namespace
}  // namespace breakeven::node
