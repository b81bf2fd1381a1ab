#include "gateway/repeat_tracker.h"

#include <sys/mman.h>

#include <bit>
#include <new>

namespace aifinops::gateway {
namespace {

/// 0 marks an unused entry: the one fingerprint in 2^64 that is 0 is taken as 1.
uint64_t stored(uint64_t fingerprint) { return fingerprint == 0 ? 1 : fingerprint; }

}  // namespace

RepeatTracker::RepeatTracker(int64_t window_ms, int64_t max_entries, const Clock& clock)
    : window_ms_(window_ms > 0 ? window_ms : 1), clock_(clock) {
  const uint64_t wanted = max_entries > 0 ? static_cast<uint64_t>(max_entries) : 1;
  const uint64_t per_shard = (wanted + kShards * kBucketEntries - 1) / (kShards * kBucketEntries);
  buckets_per_shard_ = std::bit_ceil(per_shard);
  // An anonymous mapping reads as zeros (every entry unused) and gets a page of memory only
  // when an entry on it is first written; page-aligned, so every bucket is one cache line.
  table_bytes_ = kShards * buckets_per_shard_ * sizeof(Bucket);
  table_ = ::mmap(nullptr, table_bytes_, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (table_ == MAP_FAILED) throw std::bad_alloc();  // at start-up only
  shards_ = std::make_unique<Shard[]>(kShards);
  for (size_t s = 0; s < kShards; ++s)
    shards_[s].buckets = static_cast<Bucket*>(table_) + s * buckets_per_shard_;
}

RepeatTracker::~RepeatTracker() { ::munmap(table_, table_bytes_); }

RepeatTracker::Bucket& RepeatTracker::bucket_of(uint64_t fingerprint, const Shard*& shard) const {
  // The fingerprint is a hash already: its low bits pick the shard, the next ones the bucket.
  shard = &shards_[fingerprint % kShards];
  return shard->buckets[(fingerprint / kShards) & (buckets_per_shard_ - 1)];
}

bool RepeatTracker::seen(uint64_t fingerprint) const {
  fingerprint = stored(fingerprint);
  const int64_t since = clock_.now_ms() - window_ms_;
  const Shard* shard = nullptr;
  const Bucket& bucket = bucket_of(fingerprint, shard);
  std::lock_guard<std::mutex> lock(shard->mutex);
  for (const Entry& e : bucket.entries)
    if (e.fingerprint == fingerprint) return e.seen_ms > since;
  return false;
}

void RepeatTracker::remember(uint64_t fingerprint) {
  fingerprint = stored(fingerprint);
  const int64_t now = clock_.now_ms();
  const int64_t since = now - window_ms_;
  const Shard* shard = nullptr;
  Bucket& bucket = bucket_of(fingerprint, shard);
  std::lock_guard<std::mutex> lock(shard->mutex);
  Entry* free_entry = nullptr;
  Entry* oldest = &bucket.entries[0];
  for (Entry& e : bucket.entries) {
    if (e.fingerprint == fingerprint) {
      e.seen_ms = now;
      return;
    }
    if (free_entry == nullptr && (e.fingerprint == 0 || e.seen_ms <= since)) free_entry = &e;
    if (e.seen_ms < oldest->seen_ms) oldest = &e;
  }
  if (free_entry == nullptr) {
    free_entry = oldest;
    evictions_.fetch_add(1, std::memory_order_relaxed);
  }
  *free_entry = Entry{fingerprint, now};
}

int64_t RepeatTracker::capacity() const {
  return static_cast<int64_t>(kShards * buckets_per_shard_ * kBucketEntries);
}

int64_t RepeatTracker::live_entries() const {
  const int64_t since = clock_.now_ms() - window_ms_;
  int64_t live = 0;
  for (size_t s = 0; s < kShards; ++s) {
    std::lock_guard<std::mutex> lock(shards_[s].mutex);
    for (size_t b = 0; b < buckets_per_shard_; ++b)
      for (const Entry& e : shards_[s].buckets[b].entries)
        live += e.fingerprint != 0 && e.seen_ms > since ? 1 : 0;
  }
  return live;
}

}  // namespace aifinops::gateway
