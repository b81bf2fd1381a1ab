#include "gateway/repeat_tracker.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <fstream>
#include <thread>
#include <vector>

namespace aifinops::gateway {
namespace {

TEST(RepeatTrackerTest, ARequestRepeatsOnlyWithinTheWindowAfterItWasRemembered) {
  ManualClock clock;
  RepeatTracker tracker(60'000, 1024, clock);
  EXPECT_FALSE(tracker.seen(42));
  tracker.remember(42);
  EXPECT_TRUE(tracker.seen(42));
  EXPECT_FALSE(tracker.seen(43));
  clock.advance_ms(59'999);
  EXPECT_TRUE(tracker.seen(42));
  clock.advance_ms(1);  // exactly the window later: no longer a repeat
  EXPECT_FALSE(tracker.seen(42));
  EXPECT_EQ(tracker.live_entries(), 0);
}

TEST(RepeatTrackerTest, SeeingDoesNotRememberAndRememberingAgainRestartsTheWindow) {
  ManualClock clock;
  RepeatTracker tracker(10'000, 1024, clock);
  EXPECT_FALSE(tracker.seen(7));
  EXPECT_FALSE(tracker.seen(7));  // asked twice, never answered: not a repeat
  tracker.remember(7);
  clock.advance_ms(8'000);
  tracker.remember(7);
  clock.advance_ms(8'000);
  EXPECT_TRUE(tracker.seen(7));
  EXPECT_EQ(tracker.live_entries(), 1);
  // Fingerprint 0 is a value like any other (stored as 1, which it then shares).
  tracker.remember(0);
  EXPECT_TRUE(tracker.seen(0));
}

TEST(RepeatTrackerTest, MemoryIsBoundedAndTheOldestGiveWay) {
  ManualClock clock;
  RepeatTracker tracker(3'600'000, 1000, clock);
  const int64_t capacity = tracker.capacity();
  EXPECT_GE(capacity, 1000);
  EXPECT_LE(capacity, 2 * 1000 + 64 * 16);  // rounded up to whole buckets per shard only
  // Ten times more distinct requests than it holds, a millisecond apart.
  for (uint64_t i = 1; i <= 10 * static_cast<uint64_t>(capacity); ++i) {
    tracker.remember(i * 0x9E3779B97F4A7C15ull);
    clock.advance_ms(1);
  }
  EXPECT_LE(tracker.live_entries(), capacity);
  EXPECT_GE(tracker.evictions(), 9 * capacity - capacity / 2);
  // The most recent are kept, the first are forgotten (undercounted, never invented).
  EXPECT_TRUE(tracker.seen(10 * static_cast<uint64_t>(capacity) * 0x9E3779B97F4A7C15ull));
  EXPECT_FALSE(tracker.seen(1 * 0x9E3779B97F4A7C15ull));
}

/// Resident memory of this process, in bytes (/proc/self/statm).
int64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * ::sysconf(_SC_PAGESIZE);
}

TEST(RepeatTrackerTest, TheTableTakesResidentMemoryOnlyWhereEntriesAreWritten) {
  ManualClock clock;
  const int64_t before = resident_bytes();
  RepeatTracker tracker(3'600'000, int64_t{1} << 22, clock);  // 64 MiB of entries
  EXPECT_EQ(tracker.capacity(), int64_t{1} << 22);
  for (uint64_t i = 1; i <= 100; ++i) tracker.remember(i * 0x9E3779B97F4A7C15ull);
  EXPECT_TRUE(tracker.seen(0x9E3779B97F4A7C15ull));
  // A hundred entries touch at most a hundred pages (400 KiB), not the whole table.
  EXPECT_LT(resident_bytes() - before, int64_t{8} << 20);
}

TEST(RepeatTrackerTest, ExpiredEntriesMakeRoomWithoutEvictingLiveOnes) {
  ManualClock clock;
  RepeatTracker tracker(1'000, 64, clock);
  for (uint64_t i = 1; i <= 64; ++i) tracker.remember(i * 0x9E3779B97F4A7C15ull);
  clock.advance_ms(1'000);  // all expired
  EXPECT_EQ(tracker.live_entries(), 0);
  const int64_t before = tracker.evictions();
  for (uint64_t i = 65; i <= 128; ++i) tracker.remember(i * 0x9E3779B97F4A7C15ull);
  EXPECT_EQ(tracker.evictions(), before);
  EXPECT_EQ(tracker.live_entries(), 64);
}

TEST(RepeatTrackerTest, ThreadsRememberingAndSeeingConcurrentlyLoseNoFingerprint) {
  ManualClock clock;
  RepeatTracker tracker(3'600'000, 1 << 18, clock);  // room to spare: no eviction races a check
  constexpr int kThreads = 4;
  constexpr uint64_t kEach = 2000;
  std::atomic<int> missing{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (uint64_t i = 0; i < kEach; ++i) {
        const uint64_t fingerprint = ((uint64_t)t << 32 | i) * 0x9E3779B97F4A7C15ull;
        tracker.remember(fingerprint);
        if (!tracker.seen(fingerprint)) ++missing;
        // Another thread's fingerprints, read while they are written: no torn answer.
        (void)tracker.seen((((uint64_t)((t + 1) % kThreads)) << 32 | i) * 0x9E3779B97F4A7C15ull);
      }
    });
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(missing.load(), 0);
  EXPECT_EQ(tracker.live_entries() + tracker.evictions(), kThreads * (int64_t)kEach);
}

}  // namespace
}  // namespace aifinops::gateway
