// ResponseCache: exact-match cache of upstream responses (R15). A repeated deterministic
// request is answered from memory at zero cost, and the saving is recorded. Bounded by
// bytes (least recently used entries go first) and by age (TTL). One interface so that a
// fleet can share it later; MemoryResponseCache is this process's.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "core/clock.h"
#include "core/money.h"
#include "gateway/wire.h"

namespace aifinops::gateway {

/// A stored response: what the client received (a JSON body, or the SSE bytes of a
/// stream) and what the original call used and cost.
struct CachedResponse {
  std::string content_type;
  std::string body;
  TokenCounts tokens;
  Money cost;
};

/// Implementations are thread-safe.
class ResponseCache {
 public:
  virtual ~ResponseCache() = default;
  virtual std::optional<CachedResponse> find(const std::string& key) = 0;
  virtual void insert(const std::string& key, CachedResponse response) = 0;
};

class MemoryResponseCache final : public ResponseCache {
 public:
  MemoryResponseCache(int64_t max_bytes, int64_t ttl_ms, const Clock& clock)
      : max_bytes_(max_bytes), ttl_ms_(ttl_ms), clock_(clock) {}
  std::optional<CachedResponse> find(const std::string& key) override;
  void insert(const std::string& key, CachedResponse response) override;
  int64_t bytes() const;
  size_t size() const;

 private:
  struct Entry {
    std::string key;
    CachedResponse response;
    int64_t stored_ms;
    int64_t bytes;
  };
  void evict_until_fits(int64_t incoming);  // under mutex_

  int64_t max_bytes_, ttl_ms_;
  const Clock& clock_;
  mutable std::mutex mutex_;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
  int64_t bytes_ = 0;
};

/// A request body as a JSON value (white space, number spellings and string escapes aside;
/// member order counts), hashed with XXH3 to 128 bits: what the cache key and the repeat
/// fingerprint are both made of, so that a request is parsed and hashed once for the two.
struct RequestDigest {
  uint64_t high = 0, low = 0;
};
/// The body's digest; nullopt when the body is not a JSON object (never cached or tracked).
std::optional<RequestDigest> request_digest(std::string_view body);
/// The digest of a body's canonical form (canonical_json, or parse_request's `canonical`):
/// request_digest without a parse of its own.
RequestDigest digest_of_canonical(std::string_view canonical);

/// The cache key of a request: its scope (a team, or a key when there is no team), the
/// route, whether it streams, and the request body's digest (request_digest).
/// Empty when the body is not a JSON object (never cached).
std::string response_cache_key(std::string_view scope, std::string_view route, bool stream,
                               std::string_view body);
/// The same key from a digest already made.
std::string response_cache_key(std::string_view scope, std::string_view route, bool stream,
                               const RequestDigest& digest);
/// What the RepeatTracker keeps of a request: 64 bits of hash over the same parts as the
/// cache key (scope, route, stream, normalised body), so that a repeat is what an exact
/// cache in that scope could have answered. Only the hash is kept, never the body (R24).
uint64_t repeat_fingerprint(std::string_view scope, std::string_view route, bool stream,
                            const RequestDigest& digest);

}  // namespace aifinops::gateway
