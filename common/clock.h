// Time sources. Liveness and timeouts use the steady clock; what is stored or shown uses wall
// time in Unix milliseconds. Code that decides by time takes a Clock so tests can move it.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace breakeven {

using SteadyTime = std::chrono::steady_clock::time_point;
using Millis = std::chrono::milliseconds;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual SteadyTime Now() const = 0;
  virtual int64_t WallUnixMs() const = 0;
};

class SystemClock final : public Clock {
 public:
  SteadyTime Now() const override { return std::chrono::steady_clock::now(); }
  int64_t WallUnixMs() const override;
};

// The steady clock in nanoseconds: the time base of token timestamps and load schedules (the
// engine stamps tokens with it and the load generator schedules arrivals on it).
inline int64_t SteadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// "2026-11-28T04:48:23.123Z"
std::string FormatUnixMs(int64_t unix_ms);

// "0.4s", "12s", "3m05s", "2h10m", "4d3h": short ages for tables.
std::string FormatAge(int64_t ms);

}  // namespace breakeven
