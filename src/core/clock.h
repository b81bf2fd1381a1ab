// Clock: the time source, injected so that tests can move time (rate limits, budgets).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace aifinops {

/// Milliseconds since the Unix epoch.
using EpochMillis = int64_t;

/// Wall-clock time. Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual EpochMillis now_ms() const = 0;
};

/// The system's real-time clock.
class SystemClock final : public Clock {
 public:
  EpochMillis now_ms() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

/// A clock that moves only when told to: for tests.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(EpochMillis start = 1'735'689'600'000) : now_(start) {}  // 2025-01-01
  EpochMillis now_ms() const override { return now_.load(); }
  void advance_ms(int64_t ms) { now_ += ms; }
  void set_ms(EpochMillis t) { now_ = t; }

 private:
  std::atomic<EpochMillis> now_;
};

}  // namespace aifinops
