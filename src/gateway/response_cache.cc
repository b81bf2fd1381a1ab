#include "gateway/response_cache.h"

#include <xxhash.h>

#include <cstring>

namespace aifinops::gateway {

std::optional<CachedResponse> MemoryResponseCache::find(const std::string& key) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = index_.find(key);
  if (it == index_.end()) return std::nullopt;
  if (clock_.now_ms() - it->second->stored_ms > ttl_ms_) {
    bytes_ -= it->second->bytes;
    lru_.erase(it->second);
    index_.erase(it);
    return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, it->second);  // now the most recently used
  return it->second->response;
}

void MemoryResponseCache::insert(const std::string& key, CachedResponse response) {
  // Key, body and bookkeeping: what the entry costs in memory, roughly.
  int64_t size = (int64_t)(key.size() + response.body.size() + response.content_type.size() + 128);
  if (size > max_bytes_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto it = index_.find(key); it != index_.end()) {
    bytes_ -= it->second->bytes;
    lru_.erase(it->second);
    index_.erase(it);
  }
  evict_until_fits(size);
  lru_.push_front(Entry{key, std::move(response), clock_.now_ms(), size});
  index_[key] = lru_.begin();
  bytes_ += size;
}

void MemoryResponseCache::evict_until_fits(int64_t incoming) {
  while (!lru_.empty() && bytes_ + incoming > max_bytes_) {
    bytes_ -= lru_.back().bytes;
    index_.erase(lru_.back().key);
    lru_.pop_back();
  }
}

int64_t MemoryResponseCache::bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return bytes_;
}

size_t MemoryResponseCache::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return lru_.size();
}

std::optional<RequestDigest> request_digest(std::string_view body) {
  // One buffer per thread: the canonical form is hashed and dropped, its room kept.
  thread_local std::string canonical;
  if (!canonical_json(body, canonical)) return std::nullopt;
  return digest_of_canonical(canonical);
}

RequestDigest digest_of_canonical(std::string_view canonical) {
  XXH128_hash_t h = XXH3_128bits(canonical.data(), canonical.size());
  return RequestDigest{h.high64, h.low64};
}

std::string response_cache_key(std::string_view scope, std::string_view route, bool stream,
                               const RequestDigest& digest) {
  // A 128-bit digest keeps keys short; the scope stays readable for debugging.
  char hex[33];
  std::snprintf(hex, sizeof hex, "%016llx%016llx", (unsigned long long)digest.high,
                (unsigned long long)digest.low);
  return std::string(scope) + "|" + std::string(route) + (stream ? "|stream|" : "|") + hex;
}

std::string response_cache_key(std::string_view scope, std::string_view route, bool stream,
                               std::string_view body) {
  std::optional<RequestDigest> digest = request_digest(body);
  return digest ? response_cache_key(scope, route, stream, *digest) : std::string();
}

uint64_t repeat_fingerprint(std::string_view scope, std::string_view route, bool stream,
                            const RequestDigest& digest) {
  // The body's digest seeds a hash of the rest: scope and route are short, so this is one
  // small XXH3 call with no allocation. The separator keeps ("ab","c") apart from ("a","bc").
  char parts[512];
  const size_t need = scope.size() + route.size() + 2;
  if (need > sizeof parts) {
    std::string joined = std::string(scope) + '\x1f' + std::string(route) + (stream ? 's' : 'n');
    return XXH3_64bits_withSeed(joined.data(), joined.size(), digest.high ^ digest.low);
  }
  std::memcpy(parts, scope.data(), scope.size());
  parts[scope.size()] = '\x1f';
  std::memcpy(parts + scope.size() + 1, route.data(), route.size());
  parts[need - 1] = stream ? 's' : 'n';
  return XXH3_64bits_withSeed(parts, need, digest.high ^ digest.low);
}

}  // namespace aifinops::gateway
