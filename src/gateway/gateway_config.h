// GatewayConfig: the gateway's validated settings as plain values (config/gateway_yaml.cc
// reads them from gateway.yaml). Built once at start and shared const.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/money.h"
#include "gateway/limits.h"

namespace aifinops::gateway {

enum class UpstreamKind { kOpenAi, kAzureOpenAi, kAnthropic };

struct UpstreamConfig {
  std::string name;
  UpstreamKind kind = UpstreamKind::kOpenAi;
  std::string base_url;      ///< e.g. http://127.0.0.1:18080/v1 or https://api.openai.com/v1
  std::string api_key_env;   ///< environment variable holding the provider secret
  std::string api_key_file;  ///< or a file holding it
  int64_t timeout_s = 60;
  std::string api_version;   ///< azure-openai: the api-version query parameter to send
  std::string ca_file;       ///< https: trust these CA certificates instead of the system store
};

struct RouteConfig {
  std::string model;         ///< exact model name, or "*" for the default
  std::string upstream;
};

struct KeyConfig {
  std::string id;
  std::string key_sha256;    ///< lower-case hex SHA-256 of the virtual key
  std::map<std::string, std::string> tags;
  std::vector<std::string> models;  ///< allowed models; "*" = any
  KeyLimits limits;
};

struct CacheConfig {
  bool enabled = false;
  int64_t ttl_s = 3600;
  int64_t max_mb = 256;
  bool share_across_teams = false;
  /// Duplicate requests are counted (cache on or off) over this window: a request repeats
  /// one answered less than this long before. Default: ttl_s, so that a repeat is what the
  /// cache would have answered. 0 turns the counting off.
  int64_t repeat_window_s = 3600;
  /// Fingerprints held for the count (16 bytes each, reserved at start).
  int64_t repeat_max_entries = 262'144;
};

/// What the gateway does when Redis cannot be reached.
enum class RedisFailure {
  kClosed,  ///< refuse requests with 503 until Redis is back (no spend beyond the budgets)
  kOpen,    ///< admit, limit and meter with this process's own counters; reconcile later
};

/// Shared state in Redis for a fleet of gateways (gateway.yaml `redis:` and `redis_*`).
struct RedisConfig {
  std::string host = "127.0.0.1";
  int64_t port = 6379;
  int64_t db = 0;
  std::string password;      ///< from the URL (redis://:password@host); never logged
  std::string password_env;  ///< or from this environment variable (read by the CLI)
  RedisFailure failure = RedisFailure::kClosed;
  std::string prefix = "aifinops:";  ///< every key starts with it
  int64_t connect_timeout_ms = 200;
  int64_t timeout_ms = 200;          ///< per command
  int64_t reservation_ttl_s = 900;   ///< a reservation never settled is given back after this
  /// Admit the common case against a lease: a reservation in Redis for a bundle of requests
  /// of one (key, model) pair, taken in the background (see RedisLimitStore).
  bool lease = true;
  /// A lease admits nothing older than this, and is settled once its requests are done.
  int64_t lease_max_age_ms = 1000;
};

/// A price override per model, per million tokens.
struct PriceOverride {
  std::optional<Money> input, cached_input, cache_write, output, reasoning;
};

struct GatewayConfig {
  std::string listen = "127.0.0.1:4000";
  std::string ledger = "aifinops.db";
  std::string spool_dir;     ///< default: <ledger>.spool beside the ledger
  int64_t threads = 1;       ///< I/O threads
  int64_t max_body_bytes = 8 * 1024 * 1024;
  bool store_bodies = false;  ///< only false is accepted (config/gateway_yaml.cc)
  /// Slack-compatible webhook for soft budget notices (http:// or https://); empty: log only.
  std::string webhook;
  std::vector<UpstreamConfig> upstreams;
  std::vector<RouteConfig> routes;
  std::vector<KeyConfig> keys;
  std::vector<BudgetRule> budgets;
  CacheConfig cache;
  std::map<std::string, PriceOverride> prices;
  /// Limits, budgets and the cache in Redis, shared by every replica; unset: in memory.
  std::optional<RedisConfig> redis;
};

}  // namespace aifinops::gateway
