#include "gateway/response_cache.h"

#include <simdjson.h>
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

namespace {

/// Writes a parsed JSON value into `out` in a binary form that two bodies share exactly when
/// they are the same JSON value: each value starts with its type, strings and keys carry their
/// length, numbers their 8 bytes, and containers end with a mark. White space, the spelling of
/// a number (1.0, 1.00, 1e0) and string escapes (\u0041, A) leave no trace; member order does.
/// Cheaper than re-serialising the text (which escapes and formats): the body is read once.
/// Recursion is bounded by the parser's depth limit (simdjson's default, 1024).
void append_canonical(std::string& out, simdjson::dom::element e) {
  using Type = simdjson::dom::element_type;
  auto append_bytes = [&out](const void* data, size_t size) {
    out.append(static_cast<const char*>(data), size);
  };
  auto append_text = [&](std::string_view text) {
    const uint64_t size = text.size();
    append_bytes(&size, sizeof size);
    out += text;
  };
  const Type type = e.type();
  out += static_cast<char>(type);
  switch (type) {
    case Type::ARRAY: {
      // A named copy: a range-for over value_unsafe() of the temporary result would dangle.
      const simdjson::dom::array array = e.get_array().value_unsafe();
      for (simdjson::dom::element child : array) append_canonical(out, child);
      out += ']';
      break;
    }
    case Type::OBJECT: {
      const simdjson::dom::object object = e.get_object().value_unsafe();
      for (simdjson::dom::key_value_pair field : object) {
        append_text(field.key);
        append_canonical(out, field.value);
      }
      out += '}';
      break;
    }
    case Type::STRING:
      append_text(e.get_string().value_unsafe());
      break;
    case Type::INT64: {
      const int64_t v = e.get_int64().value_unsafe();
      append_bytes(&v, sizeof v);
      break;
    }
    case Type::UINT64: {
      const uint64_t v = e.get_uint64().value_unsafe();
      append_bytes(&v, sizeof v);
      break;
    }
    case Type::DOUBLE: {
      const double v = e.get_double().value_unsafe();
      append_bytes(&v, sizeof v);
      break;
    }
    case Type::BOOL:
      out += e.get_bool().value_unsafe() ? 't' : 'f';
      break;
    case Type::NULL_VALUE:
      break;
  }
}

}  // namespace

std::optional<RequestDigest> request_digest(std::string_view body) {
  thread_local simdjson::dom::parser parser;  // building one allocates
  simdjson::dom::element doc;
  if (parser.parse(body.data(), body.size()).get(doc) != simdjson::SUCCESS || !doc.is_object())
    return std::nullopt;
  // One buffer per thread: the canonical form is hashed and dropped, its room kept.
  thread_local std::string canonical;
  canonical.clear();
  append_canonical(canonical, doc);
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
