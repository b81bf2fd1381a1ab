// GatewayMetrics: the gateway's counters and upstream latency histograms, rendered in the
// Prometheus text format for GET /metrics. Thread-safe; one short lock per request.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>

#include "core/money.h"
#include "gateway/wire.h"

namespace aifinops::gateway {

class GatewayMetrics {
 public:
  /// One finished request (served or refused after authentication).
  void record_request(std::string_view key, std::string_view team, std::string_view model,
                      int status, const TokenCounts& tokens, Money cost, bool cache_hit);
  /// A refusal by a limit ("rpm", "budget", ...).
  void record_rejection(const std::string& key, const std::string& limit);
  /// Time from sending upstream to the response's last byte.
  void record_upstream_latency(const std::string& upstream, int64_t micros);
  /// Requests refused before a key was known (401, 404, 413).
  void record_unauthenticated(int status);

  std::string render() const;

 private:
  struct Counters {
    int64_t requests = 0, input = 0, cached_input = 0, output = 0, reasoning = 0, cache_hits = 0;
    __int128 cost_nanos = 0;
  };
  // Upper bounds in microseconds; the last bucket is +Inf.
  static constexpr std::array<int64_t, 12> kBuckets = {
      500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000, 5000000, 30000000};
  struct Histogram {
    std::array<int64_t, kBuckets.size() + 1> counts{};
    int64_t sum_micros = 0;
    int64_t count = 0;
  };
  mutable std::mutex mutex_;
  // key, team, model, status; std::less<> finds by string_views without building strings.
  std::map<std::tuple<std::string, std::string, std::string, int>, Counters, std::less<>>
      by_request_;
  std::map<std::pair<std::string, std::string>, int64_t> rejections_;  // key, limit
  std::map<std::string, Histogram> latency_;                           // upstream
  std::map<int, int64_t> unauthenticated_;
};

}  // namespace aifinops::gateway
