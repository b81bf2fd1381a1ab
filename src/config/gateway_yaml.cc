#include "config/gateway_yaml.h"

#include <algorithm>
#include <set>

#include "allocate/tag_policy.h"
#include "config/yaml_reader.h"

namespace aifinops::config {
namespace {

using gateway::GatewayConfig;

bool is_lower_hex(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

class GatewayReader : public YamlReader {
 public:
  using YamlReader::YamlReader;

  Result<GatewayConfig> read(const YAML::Node& root) {
    GatewayConfig config;
    if (!root || !root.IsMap()) return fail_result(root, "(top level)", "expected a mapping with listen:, upstreams:, routes:, keys:");
    if (!check_keys(root, "", {"listen", "ledger", "spool_dir", "threads", "max_body_bytes", "store_bodies",
                               "upstreams", "routes", "keys", "budgets", "cache", "prices", "webhook",
                               "redis", "redis_password_env", "redis_failure", "redis_prefix",
                               "redis_connect_timeout_ms", "redis_timeout_ms", "redis_reservation_ttl_s",
                               "redis_lease", "redis_lease_max_age_ms"}))
      return *error_;
    bool ok = true;
    if (root["listen"]) ok = ok && read_listen(root["listen"], config.listen);
    if (root["ledger"]) ok = ok && read_string(root["ledger"], "ledger", config.ledger);
    if (root["spool_dir"]) ok = ok && read_string(root["spool_dir"], "spool_dir", config.spool_dir);
    if (root["threads"]) ok = ok && read_count(root["threads"], "threads", config.threads);
    if (root["max_body_bytes"]) ok = ok && read_count(root["max_body_bytes"], "max_body_bytes", config.max_body_bytes);
    if (root["store_bodies"]) ok = ok && read_bool(root["store_bodies"], "store_bodies", config.store_bodies);
    if (ok && config.store_bodies)
      return fail_result(root["store_bodies"], "store_bodies",
                         "true is not supported: the gateway never stores request or response bodies; "
                         "remove the key or set it to false");
    if (root["webhook"]) ok = ok && read_string(root["webhook"], "webhook", config.webhook);
    ok = ok && read_list(root, "upstreams", [&](const YAML::Node& n, const std::string& p) { return read_upstream(n, p, config); });
    ok = ok && read_list(root, "routes", [&](const YAML::Node& n, const std::string& p) { return read_route(n, p, config); });
    ok = ok && read_list(root, "keys", [&](const YAML::Node& n, const std::string& p) { return read_key(n, p, config); });
    ok = ok && read_list(root, "budgets", [&](const YAML::Node& n, const std::string& p) { return read_gateway_budget(n, p, config); });
    if (ok && root["cache"]) ok = read_cache(root["cache"], config.cache);
    if (ok && root["prices"]) ok = read_prices(root["prices"], config);
    if (ok) ok = read_redis(root, config);
    if (!ok) return *error_;
    if (config.threads < 1) return fail_result(root["threads"], "threads", "must be at least 1");
    if (config.upstreams.empty()) return fail_result(root, "upstreams", "at least one upstream is needed");
    if (config.routes.empty()) return fail_result(root, "routes", "at least one route is needed, e.g. {model: \"*\", upstream: " + config.upstreams[0].name + "}");
    return config;
  }

 private:
  bool read_listen(const YAML::Node& node, std::string& out) {
    if (!read_string(node, "listen", out)) return false;
    size_t colon = out.rfind(':');
    if (colon == std::string::npos || colon + 1 == out.size())
      return fail(node, "listen", "\"" + out + "\" is not HOST:PORT, e.g. 127.0.0.1:4000");
    return true;
  }

  /// redis: and the redis_* keys beside it (flat, so that `redis: URL` stays one line).
  bool read_redis(const YAML::Node& root, GatewayConfig& config) {
    static const char* kRelated[] = {"redis_password_env",       "redis_failure",
                                     "redis_prefix",             "redis_connect_timeout_ms",
                                     "redis_timeout_ms",         "redis_reservation_ttl_s",
                                     "redis_lease",              "redis_lease_max_age_ms"};
    if (!root["redis"]) {
      for (const char* key : kRelated)
        if (root[key])
          return fail(root[key], key,
                      "needs redis: beside it (the Redis server's URL, e.g. redis://127.0.0.1:6379/0)");
      return true;
    }
    gateway::RedisConfig redis;
    std::string url;
    if (!read_string(root["redis"], "redis", url)) return false;
    if (std::string why = parse_redis_url(url, redis); !why.empty())
      return fail(root["redis"], "redis", "\"" + url + "\" " + why +
                                              "; expected redis://[:password@]host[:port][/db], "
                                              "e.g. redis://127.0.0.1:6379/0");
    if (root["redis_password_env"]) {
      if (!read_string(root["redis_password_env"], "redis_password_env", redis.password_env)) return false;
      if (!redis.password.empty())
        return fail(root["redis_password_env"], "redis_password_env",
                    "the URL in redis: has a password already; keep one of them (the variable is safer)");
    }
    if (root["redis_failure"]) {
      std::string mode;
      if (!read_string(root["redis_failure"], "redis_failure", mode)) return false;
      if (mode == "closed") redis.failure = gateway::RedisFailure::kClosed;
      else if (mode == "open") redis.failure = gateway::RedisFailure::kOpen;
      else
        return fail(root["redis_failure"], "redis_failure",
                    "\"" + mode + "\" is not closed (refuse with 503 while Redis is unreachable) or "
                    "open (admit and meter locally, reconcile later)");
    }
    if (root["redis_prefix"]) {
      if (!read_string(root["redis_prefix"], "redis_prefix", redis.prefix)) return false;
      if (redis.prefix.empty() || redis.prefix.find_first_of(" \t\r\n") != std::string::npos)
        return fail(root["redis_prefix"], "redis_prefix",
                    "expected a non-empty key prefix without white space, e.g. \"aifinops:\"");
    }
    struct Bound {
      const char* key;
      int64_t* out;
      int64_t min, max;
    };
    for (const Bound& b : {Bound{"redis_connect_timeout_ms", &redis.connect_timeout_ms, 1, 60'000},
                           Bound{"redis_timeout_ms", &redis.timeout_ms, 1, 60'000},
                           Bound{"redis_reservation_ttl_s", &redis.reservation_ttl_s, 1, 7 * 86'400},
                           Bound{"redis_lease_max_age_ms", &redis.lease_max_age_ms, 10, 60'000}}) {
      if (!root[b.key]) continue;
      if (!read_count(root[b.key], b.key, *b.out)) return false;
      if (*b.out < b.min || *b.out > b.max)
        return fail(root[b.key], b.key,
                    "expected a whole number from " + std::to_string(b.min) + " to " + std::to_string(b.max));
    }
    if (root["redis_lease"] && !read_bool(root["redis_lease"], "redis_lease", redis.lease)) return false;
    // A lease must be settled well before Redis gives its reservation back as abandoned.
    if (redis.lease_max_age_ms >= redis.reservation_ttl_s * 1000)
      return fail(root["redis_lease_max_age_ms"] ? root["redis_lease_max_age_ms"] : root["redis_reservation_ttl_s"],
                  root["redis_lease_max_age_ms"] ? "redis_lease_max_age_ms" : "redis_reservation_ttl_s",
                  "a lease (redis_lease_max_age_ms: " + std::to_string(redis.lease_max_age_ms) +
                      ") must be shorter than a reservation's lifetime (redis_reservation_ttl_s: " +
                      std::to_string(redis.reservation_ttl_s) + " s); lower the one or raise the other");
    config.redis = std::move(redis);
    return true;
  }

  /// Reads redis://[:password@]host[:port][/db]; returns what is wrong, or "".
  static std::string parse_redis_url(const std::string& url, gateway::RedisConfig& out) {
    const std::string scheme = "redis://";
    if (url.rfind("rediss://", 0) == 0) return "uses TLS (rediss://), which the gateway does not speak yet";
    if (url.rfind(scheme, 0) != 0) return "does not start with redis://";
    std::string rest = url.substr(scheme.size());
    if (size_t at = rest.rfind('@'); at != std::string::npos) {
      std::string userinfo = rest.substr(0, at);
      rest = rest.substr(at + 1);
      size_t colon = userinfo.find(':');
      if (colon == std::string::npos || (colon > 0 && userinfo.substr(0, colon) != "default"))
        return "names a user; only a password is supported (redis://:password@host)";
      out.password = userinfo.substr(colon + 1);
      if (out.password.empty()) return "has an empty password";
    }
    std::string db;
    if (size_t slash = rest.find('/'); slash != std::string::npos) {
      db = rest.substr(slash + 1);
      rest = rest.substr(0, slash);
    }
    std::string port;
    if (!rest.empty() && rest.front() == '[') {  // [::1]:6379
      size_t close = rest.find(']');
      if (close == std::string::npos) return "has an unclosed [ in its host";
      out.host = rest.substr(1, close - 1);
      if (close + 1 < rest.size()) {
        if (rest[close + 1] != ':') return "has something other than :port after its host";
        port = rest.substr(close + 2);
      }
    } else if (size_t colon = rest.rfind(':'); colon != std::string::npos) {
      out.host = rest.substr(0, colon);
      port = rest.substr(colon + 1);
    } else {
      out.host = rest;
    }
    if (out.host.empty()) return "has no host";
    auto number = [](const std::string& text, int64_t max, int64_t& value) {
      if (text.empty() || text.size() > 6 ||
          !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return false;
      value = std::stoll(text);
      return value <= max;
    };
    if (!port.empty() && (!number(port, 65535, out.port) || out.port == 0))
      return "has a port that is not a number from 1 to 65535";
    if (!db.empty() && !number(db, 9999, out.db)) return "has a database that is not a number (0, 1, ...)";
    return "";
  }

  bool read_upstream(const YAML::Node& n, const std::string& path, GatewayConfig& config) {
    if (!check_keys(n, path, {"name", "kind", "base_url", "api_key_env", "api_key_file", "timeout_s", "api_version", "ca_file"})) return false;
    gateway::UpstreamConfig u;
    std::string kind = "openai";
    if (!n["name"]) return fail(n, path + ".name", "missing (every upstream needs a name that routes refer to)");
    if (!n["base_url"]) return fail(n, path + ".base_url", "missing, e.g. https://api.openai.com/v1");
    if (!read_string(n["name"], path + ".name", u.name) || !read_string(n["base_url"], path + ".base_url", u.base_url)) return false;
    if (n["kind"] && !read_string(n["kind"], path + ".kind", kind)) return false;
    if (kind == "openai") u.kind = gateway::UpstreamKind::kOpenAi;
    else if (kind == "azure-openai") u.kind = gateway::UpstreamKind::kAzureOpenAi;
    else if (kind == "anthropic") u.kind = gateway::UpstreamKind::kAnthropic;
    else return fail(n["kind"], path + ".kind", "\"" + kind + "\" is not one of openai, azure-openai, anthropic");
    if (u.base_url.rfind("http://", 0) != 0 && u.base_url.rfind("https://", 0) != 0)
      return fail(n["base_url"], path + ".base_url", "\"" + u.base_url + "\" must start with http:// or https://");
    while (!u.base_url.empty() && u.base_url.back() == '/') u.base_url.pop_back();
    if (n["api_key_env"] && !read_string(n["api_key_env"], path + ".api_key_env", u.api_key_env)) return false;
    if (n["api_key_file"] && !read_string(n["api_key_file"], path + ".api_key_file", u.api_key_file)) return false;
    if (n["api_version"] && !read_string(n["api_version"], path + ".api_version", u.api_version)) return false;
    if (n["ca_file"] && !read_string(n["ca_file"], path + ".ca_file", u.ca_file)) return false;
    if (n["timeout_s"] && !read_count(n["timeout_s"], path + ".timeout_s", u.timeout_s)) return false;
    if (u.timeout_s < 1) return fail(n["timeout_s"], path + ".timeout_s", "must be at least 1");
    for (const auto& other : config.upstreams)
      if (other.name == u.name) return fail(n["name"], path + ".name", "\"" + u.name + "\" is used by another upstream");
    config.upstreams.push_back(std::move(u));
    return true;
  }

  bool read_route(const YAML::Node& n, const std::string& path, GatewayConfig& config) {
    if (!check_keys(n, path, {"model", "upstream"})) return false;
    gateway::RouteConfig r;
    if (!n["model"] || !n["upstream"]) return fail(n, path, "needs model: and upstream:");
    if (!read_string(n["model"], path + ".model", r.model) || !read_string(n["upstream"], path + ".upstream", r.upstream)) return false;
    bool known = std::any_of(config.upstreams.begin(), config.upstreams.end(), [&](const auto& u) { return u.name == r.upstream; });
    if (!known) return fail(n["upstream"], path + ".upstream", "\"" + r.upstream + "\" is not the name of an upstream");
    config.routes.push_back(std::move(r));
    return true;
  }

  bool read_key(const YAML::Node& n, const std::string& path, GatewayConfig& config) {
    if (!check_keys(n, path, {"id", "key_sha256", "tags", "models", "limits"})) return false;
    gateway::KeyConfig k;
    if (!n["id"] || !n["key_sha256"]) return fail(n, path, "needs id: and key_sha256: (make one with 'aifinops gateway keys new --id ID')");
    if (!read_string(n["id"], path + ".id", k.id) || !read_string(n["key_sha256"], path + ".key_sha256", k.key_sha256)) return false;
    std::transform(k.key_sha256.begin(), k.key_sha256.end(), k.key_sha256.begin(), [](char c) { return (char)std::tolower((unsigned char)c); });
    if (k.key_sha256.size() != 64 || !is_lower_hex(k.key_sha256))
      return fail(n["key_sha256"], path + ".key_sha256", "expected 64 hex digits (the SHA-256 of the virtual key, not the key itself)");
    if (n["tags"] && !read_string_map(n["tags"], path + ".tags", k.tags)) return false;
    // Tags under their canonical names ("Team" and "owner-team" are team), as the ledger
    // stores them, so that budgets and metrics match them.
    static const allocate::TagPolicy policy = allocate::TagPolicy::defaults();
    std::map<std::string, std::string> canonical;
    for (const auto& [raw, value] : k.tags) {
      Attr a = policy.dimension_of(raw);
      canonical[a == Attr::kCount ? raw : std::string(attribute_name(a))] = value;
    }
    k.tags = std::move(canonical);
    k.models = {"*"};
    if (n["models"] && !read_string_list(n["models"], path + ".models", k.models)) return false;
    if (const YAML::Node l = n["limits"]) {
      std::string lp = path + ".limits";
      if (!l.IsMap()) return fail(l, lp, "expected a mapping like {rpm: 600, tpm: 100000}");
      if (!check_keys(l, lp, {"rpm", "tpm", "requests_per_day", "tokens_per_day", "usd_per_day"})) return false;
      if (l["rpm"] && !read_count(l["rpm"], lp + ".rpm", k.limits.rpm)) return false;
      if (l["tpm"] && !read_count(l["tpm"], lp + ".tpm", k.limits.tpm)) return false;
      if (l["requests_per_day"] && !read_count(l["requests_per_day"], lp + ".requests_per_day", k.limits.requests_per_day)) return false;
      if (l["tokens_per_day"] && !read_count(l["tokens_per_day"], lp + ".tokens_per_day", k.limits.tokens_per_day)) return false;
      if (l["usd_per_day"] && !read_decimal(l["usd_per_day"], lp + ".usd_per_day", k.limits.usd_per_day)) return false;
    }
    for (const auto& other : config.keys) {
      if (other.id == k.id) return fail(n["id"], path + ".id", "\"" + k.id + "\" is used by another key");
      if (other.key_sha256 == k.key_sha256) return fail(n["key_sha256"], path + ".key_sha256", "the same key as " + other.id);
    }
    config.keys.push_back(std::move(k));
    return true;
  }

  bool read_gateway_budget(const YAML::Node& n, const std::string& path, GatewayConfig& config) {
    gateway::BudgetRule b;
    if (!read_budget(n, path, b)) return false;
    for (const auto& [dimension, value] : b.scope) {
      Attr a = attribute_from_name(dimension);
      bool known = dimension == "key" || dimension == "model" || (a >= kFirstDimension && a <= kLastDimension);
      if (!known)
        return fail(n["scope"], path + ".scope." + dimension,
                    "a budget scope is key, model or a tag dimension (team, project, environment, "
                    "cost_center, workload, usage_type, purpose, criticality, shutdown_eligible)");
    }
    for (const auto& other : config.budgets)
      if (other.name == b.name)
        return fail(n, path + ".name", "\"" + b.name + "\" is the name of another budget; give each budget its own name");
    config.budgets.push_back(std::move(b));
    return true;
  }

  bool read_cache(const YAML::Node& n, gateway::CacheConfig& cache) {
    if (!n.IsMap()) return fail(n, "cache", "expected a mapping like {enabled: true, ttl_s: 3600, max_mb: 256}");
    if (!check_keys(n, "cache", {"enabled", "ttl_s", "max_mb", "share_across_teams", "repeat_window_s",
                                 "repeat_max_entries"}))
      return false;
    if (n["enabled"] && !read_bool(n["enabled"], "cache.enabled", cache.enabled)) return false;
    if (n["ttl_s"] && !read_count(n["ttl_s"], "cache.ttl_s", cache.ttl_s)) return false;
    if (n["max_mb"] && !read_count(n["max_mb"], "cache.max_mb", cache.max_mb)) return false;
    if (n["share_across_teams"] && !read_bool(n["share_across_teams"], "cache.share_across_teams", cache.share_across_teams)) return false;
    // A repeat counts over the cache's own lifetime unless told otherwise: then the measured
    // duplicate rate is what the cache would answer.
    cache.repeat_window_s = cache.ttl_s;
    if (n["repeat_window_s"] && !read_count(n["repeat_window_s"], "cache.repeat_window_s", cache.repeat_window_s))
      return false;
    if (n["repeat_max_entries"]) {
      if (!read_count(n["repeat_max_entries"], "cache.repeat_max_entries", cache.repeat_max_entries)) return false;
      // 16 bytes an entry, reserved at start: a billion would be 16 GB, surely a typo.
      constexpr int64_t kMaxEntries = int64_t{1} << 26;
      if (cache.repeat_max_entries < 1 || cache.repeat_max_entries > kMaxEntries)
        return fail(n["repeat_max_entries"], "cache.repeat_max_entries",
                    "\"" + std::to_string(cache.repeat_max_entries) +
                        "\" is not between 1 and 67108864 (16 bytes each, reserved at start)");
    }
    return true;
  }

  bool read_prices(const YAML::Node& n, GatewayConfig& config) {
    if (!n.IsMap()) return fail(n, "prices", "expected a mapping of model: {input: 0.15, output: 0.60}");
    for (const auto& item : n) {
      std::string model = item.first.Scalar(), path = "prices." + model;
      const YAML::Node& p = item.second;
      if (!p.IsMap()) return fail(p, path, "expected a mapping like {input: 0.15, output: 0.60}");
      if (!check_keys(p, path, {"input", "cached_input", "cache_write", "output", "reasoning"})) return false;
      gateway::PriceOverride o;
      if (p["input"] && !read_decimal(p["input"], path + ".input", o.input)) return false;
      if (p["cached_input"] && !read_decimal(p["cached_input"], path + ".cached_input", o.cached_input)) return false;
      if (p["cache_write"] && !read_decimal(p["cache_write"], path + ".cache_write", o.cache_write)) return false;
      if (p["output"] && !read_decimal(p["output"], path + ".output", o.output)) return false;
      if (p["reasoning"] && !read_decimal(p["reasoning"], path + ".reasoning", o.reasoning)) return false;
      config.prices[model] = o;
    }
    return true;
  }
};

}  // namespace

Result<gateway::GatewayConfig> parse_gateway_yaml(std::string_view text, std::string_view file_name) {
  auto root = load_yaml(text, file_name);
  if (!root) return Unexpected{root.error()};
  try {
    return GatewayReader(file_name).read(*root);
  } catch (const YAML::Exception& e) {
    return make_error(ErrorCode::kParse, std::string(file_name) + ": " + e.msg);
  }
}

Result<gateway::GatewayConfig> load_gateway_config(const std::string& path) {
  auto text = read_text_file(path, "gateway config (--config)");
  if (!text) return Unexpected{text.error()};
  return parse_gateway_yaml(*text, path);
}

}  // namespace aifinops::config
