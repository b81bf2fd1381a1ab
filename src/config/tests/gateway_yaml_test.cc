#include "config/gateway_yaml.h"

#include <gtest/gtest.h>

namespace aifinops::config {
namespace {

std::string error_of(const std::string& yaml) {
  auto r = parse_gateway_yaml(yaml, "gateway.yaml");
  return r.has_value() ? "" : r.error().message;
}

const char* kMinimal =
    "upstreams: [{name: openai, base_url: 'http://127.0.0.1:18080/v1'}]\n"
    "routes: [{model: '*', upstream: openai}]\n";

TEST(GatewayYamlTest, ReadsTheDocumentedExample) {
  auto config = load_gateway_config(std::string(AIFINOPS_SOURCE_DIR) + "/config/gateway.example.yaml");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->listen, "127.0.0.1:4000");
  ASSERT_EQ(config->upstreams.size(), 1u);
  EXPECT_EQ(config->upstreams[0].api_key_env, "OPENAI_API_KEY");
  ASSERT_EQ(config->keys.size(), 1u);
  EXPECT_EQ(config->keys[0].tags.at("team"), "team-a");
  EXPECT_EQ(config->keys[0].limits.rpm, 600);
  EXPECT_EQ(format_decimal(config->keys[0].limits.usd_per_day->nanos), "50");
  ASSERT_EQ(config->budgets.size(), 1u);
  EXPECT_EQ(config->budgets[0].name, "team=team-a (month)");
  EXPECT_TRUE(config->budgets[0].hard);
  EXPECT_TRUE(config->cache.enabled);
  EXPECT_EQ(format_decimal(config->prices.at("gpt-4o-mini").cached_input->nanos), "0.075");
}

TEST(GatewayYamlTest, TheRepeatWindowFollowsTheCacheTtlUnlessSet) {
  auto defaults = parse_gateway_yaml(kMinimal, "gateway.yaml");
  ASSERT_TRUE(defaults.has_value()) << defaults.error().message;
  EXPECT_EQ(defaults->cache.repeat_window_s, 3600);
  EXPECT_EQ(defaults->cache.repeat_max_entries, 262'144);
  auto follows = parse_gateway_yaml(std::string(kMinimal) + "cache: {enabled: false, ttl_s: 600}\n", "gateway.yaml");
  ASSERT_TRUE(follows.has_value()) << follows.error().message;
  EXPECT_EQ(follows->cache.repeat_window_s, 600);
  auto set = parse_gateway_yaml(
      std::string(kMinimal) + "cache: {ttl_s: 600, repeat_window_s: 0, repeat_max_entries: 1000}\n", "gateway.yaml");
  ASSERT_TRUE(set.has_value()) << set.error().message;
  EXPECT_EQ(set->cache.repeat_window_s, 0);  // counting off
  EXPECT_EQ(set->cache.repeat_max_entries, 1000);
  EXPECT_EQ(error_of(std::string(kMinimal) + "cache: {repeat_max_entries: 0}\n"),
            "gateway.yaml:3: cache.repeat_max_entries: \"0\" is not between 1 and 67108864 (16 bytes each, "
            "reserved at start)");
  EXPECT_NE(error_of(std::string(kMinimal) + "cache: {repeat_window_s: -5}\n").find("cache.repeat_window_s"),
            std::string::npos);
}

TEST(GatewayYamlTest, KeyTagsTakeTheirCanonicalNames) {
  auto config = parse_gateway_yaml(std::string(kMinimal) +
                                       "keys: [{id: a, key_sha256: '" + std::string(64, 'a') +
                                       "', tags: {Team: ads, owner: ann, Cost-Center: cc1}}]\n",
                                   "gateway.yaml");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->keys[0].tags, (std::map<std::string, std::string>{{"team", "ads"}, {"owner", "ann"}, {"cost_center", "cc1"}}));
}

TEST(GatewayYamlTest, ErrorsNameTheKeyPathAndWhatWasExpected) {
  EXPECT_EQ(error_of(std::string(kMinimal) + "listen: 4000\n"),
            "gateway.yaml:3: listen: \"4000\" is not HOST:PORT, e.g. 127.0.0.1:4000");
  EXPECT_EQ(error_of("upstreams: [{name: x, kind: bard, base_url: 'http://h'}]\nroutes: [{model: '*', upstream: x}]\n"),
            "gateway.yaml:1: upstreams[0].kind: \"bard\" is not one of openai, azure-openai, anthropic");
  EXPECT_EQ(error_of("upstreams: [{name: x, base_url: 'http://h'}]\nroutes: [{model: '*', upstream: y}]\n"),
            "gateway.yaml:2: routes[0].upstream: \"y\" is not the name of an upstream");
  EXPECT_NE(error_of(std::string(kMinimal) + "keys: [{id: a, key_sha256: sk-123}]\n").find("64 hex digits"), std::string::npos);
  EXPECT_NE(error_of(std::string(kMinimal) + "budgets: [{scope: {team: a}, amount_usd: 10, enforce: maybe}]\n")
                .find("budgets[0].enforce: \"maybe\" is not hard or soft"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(kMinimal) + "cache: {enable: true}\n").find("cache.enable: unknown key"), std::string::npos);
  EXPECT_NE(error_of(std::string(kMinimal) + "budgets: [{scope: {provider: OpenAI}, amount_usd: 1}]\n")
                .find("budgets[0].scope.provider: a budget scope is key, model or a tag dimension"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(kMinimal) + "budgets: [{scope: {team: a}, amount_usd: 1}, {scope: {team: a}, amount_usd: 2}]\n")
                .find("is the name of another budget"),
            std::string::npos);
  EXPECT_NE(error_of("routes: []\n").find("upstreams: at least one upstream"), std::string::npos);
}

}  // namespace
TEST(GatewayYamlTest, ReadsTheRedisSettingsOfAFleet) {
  auto plain = parse_gateway_yaml(kMinimal, "gateway.yaml");
  ASSERT_TRUE(plain.has_value()) << plain.error().message;
  EXPECT_FALSE(plain->redis.has_value());  // no redis: state in memory

  auto config = parse_gateway_yaml(std::string(kMinimal) +
                                       "redis: redis://10.0.0.5:6380/2\n"
                                       "redis_password_env: REDIS_PASSWORD\n"
                                       "redis_failure: open\n"
                                       "redis_prefix: 'prod:'\n"
                                       "redis_connect_timeout_ms: 50\n"
                                       "redis_timeout_ms: 20\n"
                                       "redis_reservation_ttl_s: 120\n"
                                       "redis_lease: false\n"
                                       "redis_lease_max_age_ms: 500\n",
                                   "gateway.yaml");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  ASSERT_TRUE(config->redis.has_value());
  EXPECT_EQ(config->redis->host, "10.0.0.5");
  EXPECT_EQ(config->redis->port, 6380);
  EXPECT_EQ(config->redis->db, 2);
  EXPECT_EQ(config->redis->password, "");
  EXPECT_EQ(config->redis->password_env, "REDIS_PASSWORD");
  EXPECT_EQ(config->redis->failure, gateway::RedisFailure::kOpen);
  EXPECT_EQ(config->redis->prefix, "prod:");
  EXPECT_EQ(config->redis->connect_timeout_ms, 50);
  EXPECT_EQ(config->redis->timeout_ms, 20);
  EXPECT_EQ(config->redis->reservation_ttl_s, 120);
  EXPECT_FALSE(config->redis->lease);
  EXPECT_EQ(config->redis->lease_max_age_ms, 500);

  auto defaults = parse_gateway_yaml(std::string(kMinimal) + "redis: 'redis://:s3cret@[::1]'\n", "gateway.yaml");
  ASSERT_TRUE(defaults.has_value()) << defaults.error().message;
  EXPECT_EQ(defaults->redis->host, "::1");
  EXPECT_EQ(defaults->redis->port, 6379);
  EXPECT_EQ(defaults->redis->db, 0);
  EXPECT_EQ(defaults->redis->password, "s3cret");
  EXPECT_EQ(defaults->redis->failure, gateway::RedisFailure::kClosed);  // refuse rather than overspend
  EXPECT_EQ(defaults->redis->prefix, "aifinops:");
  EXPECT_TRUE(defaults->redis->lease);  // leased admission unless turned off
  EXPECT_EQ(defaults->redis->lease_max_age_ms, 1000);
}

TEST(GatewayYamlTest, BadRedisSettingsNameTheKeyAndWhatWasExpected) {
  EXPECT_EQ(error_of(std::string(kMinimal) + "redis: http://127.0.0.1:6379\n"),
            "gateway.yaml:3: redis: \"http://127.0.0.1:6379\" does not start with redis://; expected "
            "redis://[:password@]host[:port][/db], e.g. redis://127.0.0.1:6379/0");
  EXPECT_NE(error_of(std::string(kMinimal) + "redis: redis://127.0.0.1:99999\n")
                .find("redis: \"redis://127.0.0.1:99999\" has a port that is not a number from 1 to 65535"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(kMinimal) + "redis: redis://127.0.0.1:6379/x\n").find("has a database that is not a number"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(kMinimal) + "redis: redis://ann:pw@127.0.0.1\n").find("names a user"), std::string::npos);
  EXPECT_NE(error_of(std::string(kMinimal) + "redis: rediss://127.0.0.1\n").find("uses TLS"), std::string::npos);
  EXPECT_EQ(error_of(std::string(kMinimal) + "redis: redis://127.0.0.1\nredis_failure: maybe\n"),
            "gateway.yaml:4: redis_failure: \"maybe\" is not closed (refuse with 503 while Redis is "
            "unreachable) or open (admit and meter locally, reconcile later)");
  EXPECT_NE(error_of(std::string(kMinimal) + "redis_failure: open\n").find("redis_failure: needs redis: beside it"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(kMinimal) + "redis: redis://127.0.0.1\nredis_timeout_ms: 0\n")
                .find("redis_timeout_ms: expected a whole number from 1 to 60000"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(kMinimal) + "redis: redis://:pw@127.0.0.1\nredis_password_env: P\n")
                .find("has a password already"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(kMinimal) + "redis: redis://127.0.0.1\nredis_prefix: ''\n").find("redis_prefix: expected"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(kMinimal) + "redis: redis://127.0.0.1\nredis_lease: sometimes\n").find("redis_lease:"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(kMinimal) + "redis: redis://127.0.0.1\nredis_lease_max_age_ms: 5\n")
                .find("redis_lease_max_age_ms: expected a whole number from 10 to 60000"),
            std::string::npos);
  EXPECT_EQ(error_of(std::string(kMinimal) +
                     "redis: redis://127.0.0.1\nredis_reservation_ttl_s: 2\nredis_lease_max_age_ms: 2000\n"),
            "gateway.yaml:5: redis_lease_max_age_ms: a lease (redis_lease_max_age_ms: 2000) must be shorter "
            "than a reservation's lifetime (redis_reservation_ttl_s: 2 s); lower the one or raise the other");
  EXPECT_NE(error_of(std::string(kMinimal) + "redis_lease: true\n").find("redis_lease: needs redis: beside it"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(kMinimal) + "redis: redis://127.0.0.1\nredis_fail: open\n").find("redis_fail: unknown key"),
            std::string::npos);
}

}  // namespace aifinops::config
