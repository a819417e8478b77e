// A clock that moves only when the test says so.
#pragma once

#include "common/clock.h"

namespace breakeven::testing {

class FakeClock final : public Clock {
 public:
  SteadyTime Now() const override { return steady_; }
  int64_t WallUnixMs() const override { return wall_ms_; }
  void Advance(Millis ms) {
    steady_ += ms;
    wall_ms_ += ms.count();
  }

 private:
  SteadyTime steady_{std::chrono::hours(1000)};
  int64_t wall_ms_ = 1'800'000'000'000;  // 2027-01-15
};

}  // namespace breakeven::testing
