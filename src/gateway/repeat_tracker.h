// RepeatTracker: tells whether a metered request repeats one the gateway answered shortly
// before (R15's duplicate-request rate), with the response cache on or off. Holds 64-bit
// fingerprints of normalised requests and when each was last seen, in memory only: no
// prompt, no body, nothing of it reaches the ledger but the yes/no (R24).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

#include "core/clock.h"

namespace aifinops::gateway {

/// A fixed table of (fingerprint, last seen) pairs, split into shards that each have their
/// own lock, so that I/O threads rarely wait for each other; every call holds one shard's
/// lock for a few loads and stores. Memory is reserved at construction (16 bytes an entry)
/// as zero pages that take room in RSS only once written, so an idle or single-client gateway
/// does not pay for the whole table.
///
/// A fingerprint goes to one bucket of four entries. An entry older than the window counts
/// as free; when all four are in the window the least recently seen one gives way. So the
/// table never grows, old entries expire by themselves, and when more distinct requests
/// arrive within the window than the table holds, the oldest are forgotten early: repeats
/// are then undercounted (evictions() says how often), never invented. A fingerprint
/// collision (two different requests with the same 64-bit value) would make a false repeat;
/// among a million live entries its chance is about one in 10^13 per request.
///
/// Thread-safe. The clock must outlive the tracker.
class RepeatTracker {
 public:
  /// `window_ms` > 0: how long a request counts as seen. `max_entries` > 0 is rounded up to a
  /// whole number of buckets per shard (a power of two).
  RepeatTracker(int64_t window_ms, int64_t max_entries, const Clock& clock);
  ~RepeatTracker();
  RepeatTracker(const RepeatTracker&) = delete;
  RepeatTracker& operator=(const RepeatTracker&) = delete;

  /// Whether `fingerprint` was remembered less than the window ago. Remembers nothing: the
  /// gateway asks when a request arrives and remembers it once it has been answered, as the
  /// response cache finds and stores.
  bool seen(uint64_t fingerprint) const;
  /// Records `fingerprint` as seen now.
  void remember(uint64_t fingerprint);

  int64_t window_ms() const { return window_ms_; }
  /// How many entries the table holds at most.
  int64_t capacity() const;
  /// Entries seen within the window (walks the table: for tests and diagnostics).
  int64_t live_entries() const;
  /// How many entries still within the window were pushed out for room.
  int64_t evictions() const { return evictions_.load(std::memory_order_relaxed); }

 private:
  struct Entry {
    uint64_t fingerprint;  ///< 0: never used
    int64_t seen_ms;
  };
  static constexpr size_t kBucketEntries = 4;  ///< one 64-byte cache line
  struct alignas(64) Bucket {
    Entry entries[kBucketEntries];
  };
  struct alignas(64) Shard {
    mutable std::mutex mutex;
    Bucket* buckets = nullptr;  ///< into table_
  };
  static constexpr size_t kShards = 16;

  Bucket& bucket_of(uint64_t fingerprint, const Shard*& shard) const;

  int64_t window_ms_;
  const Clock& clock_;
  size_t buckets_per_shard_;  ///< a power of two
  void* table_ = nullptr;     ///< every shard's buckets: an anonymous mapping
  size_t table_bytes_ = 0;
  std::unique_ptr<Shard[]> shards_;
  std::atomic<int64_t> evictions_{0};
};

}  // namespace aifinops::gateway
