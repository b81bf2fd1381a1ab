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
}  // namespace aifinops::config
