#include "gateway/metrics.h"

#include "core/prometheus_text.h"

namespace aifinops::gateway {

void GatewayMetrics::record_request(std::string_view key, std::string_view team,
                                    std::string_view model, int status, const TokenCounts& tokens,
                                    Money cost, bool cache_hit) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = by_request_.find(std::tuple(key, team, model, status));
  if (it == by_request_.end())
    it = by_request_
             .emplace(std::tuple(std::string(key), std::string(team), std::string(model), status),
                      Counters{})
             .first;
  Counters& c = it->second;
  ++c.requests;
  c.input += tokens.input;
  c.cached_input += tokens.cached_input;
  c.output += tokens.output;
  c.reasoning += tokens.reasoning;
  c.cost_nanos += cost.nanos;
  c.cache_hits += cache_hit ? 1 : 0;
}

void GatewayMetrics::record_rejection(const std::string& key, const std::string& limit) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++rejections_[{key, limit}];
}

void GatewayMetrics::record_upstream_latency(const std::string& upstream, int64_t micros) {
  std::lock_guard<std::mutex> lock(mutex_);
  Histogram& h = latency_[upstream];
  size_t i = 0;
  while (i < kBuckets.size() && micros > kBuckets[i]) ++i;
  ++h.counts[i];
  h.sum_micros += micros;
  ++h.count;
}

void GatewayMetrics::record_unauthenticated(int status) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++unauthenticated_[status];
}

std::string GatewayMetrics::render() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  auto family = [&](const char* name, const char* type, const char* help) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  };
  auto labels = [](const auto& k) {
    return "key=\"" + prometheus_label_value(std::get<0>(k)) + "\",team=\"" + prometheus_label_value(std::get<1>(k)) + "\",model=\"" +
           prometheus_label_value(std::get<2>(k)) + "\"";
  };
  family("aifinops_gateway_requests_total", "counter",
         "Requests by virtual key, team, model and HTTP status.");
  for (const auto& [k, c] : by_request_)
    out += "aifinops_gateway_requests_total{" + labels(k) + ",status=\"" +
           std::to_string(std::get<3>(k)) + "\"} " + std::to_string(c.requests) + "\n";
  // Tokens and cost summed over statuses.
  std::map<std::tuple<std::string, std::string, std::string>, Counters> sums;
  for (const auto& [k, c] : by_request_) {
    Counters& s = sums[{std::get<0>(k), std::get<1>(k), std::get<2>(k)}];
    s.input += c.input;
    s.cached_input += c.cached_input;
    s.output += c.output;
    s.reasoning += c.reasoning;
    s.cost_nanos += c.cost_nanos;
    s.cache_hits += c.cache_hits;
  }
  family("aifinops_gateway_tokens_total", "counter",
         "Tokens metered, by kind (cached_input is part of input, reasoning of output).");
  for (const auto& [k, c] : sums) {
    for (auto [kind, v] : {std::pair{"input", c.input}, std::pair{"cached_input", c.cached_input},
                           std::pair{"output", c.output}, std::pair{"reasoning", c.reasoning}})
      out += "aifinops_gateway_tokens_total{" + labels(k) + ",kind=\"" + kind + "\"} " +
             std::to_string(v) + "\n";
  }
  family("aifinops_gateway_cost_usd_total", "counter",
         "Cost of metered requests in USD, priced from the catalog.");
  for (const auto& [k, c] : sums)
    out +=
        "aifinops_gateway_cost_usd_total{" + labels(k) + "} " + format_decimal(c.cost_nanos) + "\n";
  family("aifinops_gateway_cache_hits_total", "counter",
         "Requests answered from the response cache.");
  for (const auto& [k, c] : sums)
    out += "aifinops_gateway_cache_hits_total{" + labels(k) + "} " + std::to_string(c.cache_hits) +
           "\n";
  family("aifinops_gateway_limit_rejections_total", "counter",
         "Requests refused by a rate limit, quota or budget.");
  for (const auto& [k, n] : rejections_)
    out += "aifinops_gateway_limit_rejections_total{key=\"" + prometheus_label_value(k.first) + "\",limit=\"" +
           prometheus_label_value(k.second) + "\"} " + std::to_string(n) + "\n";
  family("aifinops_gateway_unauthenticated_total", "counter",
         "Requests refused before a key was known, by status.");
  for (const auto& [status, n] : unauthenticated_)
    out += "aifinops_gateway_unauthenticated_total{status=\"" + std::to_string(status) + "\"} " +
           std::to_string(n) + "\n";
  family("aifinops_gateway_upstream_latency_seconds", "histogram",
         "Time from sending upstream to the last byte received.");
  for (const auto& [upstream, h] : latency_) {
    int64_t cumulative = 0;
    for (size_t i = 0; i <= kBuckets.size(); ++i) {
      cumulative += h.counts[i];
      std::string le = i < kBuckets.size() ? format_decimal((int64_t)kBuckets[i] * 1000) : "+Inf";
      out += "aifinops_gateway_upstream_latency_seconds_bucket{upstream=\"" + prometheus_label_value(upstream) +
             "\",le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
    }
    out += "aifinops_gateway_upstream_latency_seconds_sum{upstream=\"" + prometheus_label_value(upstream) + "\"} " +
           format_decimal((int64_t)h.sum_micros * 1000) + "\n";
    out += "aifinops_gateway_upstream_latency_seconds_count{upstream=\"" + prometheus_label_value(upstream) +
           "\"} " + std::to_string(h.count) + "\n";
  }
  return out;
}

}  // namespace aifinops::gateway
