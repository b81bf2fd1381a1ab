#include "config/policy_yaml.h"

#include <gtest/gtest.h>

namespace aifinops::config {
namespace {

std::string team_of(const allocate::TagPolicy& policy, std::string_view tags) {
  std::array<std::string, kAttrCount> storage;
  AttributeViews views{};
  policy.apply(tags, storage, views);
  return std::string(views[(size_t)Attr::kTeam]);
}

TEST(PolicyYamlTest, AddsAliasesToCanonicalDimensionsAndCustomDimensions) {
  auto policy = parse_policy_yaml(R"(
dimensions:
  team: {aliases: [squad], required: true, allowed: [alpha, beta, "team-*"]}
  owner: {aliases: [Owner, owner-email]}
budgets: []
)", "policy.yaml");
  ASSERT_TRUE(policy.has_value()) << policy.error().message;
  EXPECT_EQ(team_of(policy->tags, R"({"Squad":"alpha"})"), "alpha");
  EXPECT_EQ(team_of(policy->tags, R"({"Team":"beta"})"), "beta");  // built-in aliases stay
  ASSERT_NE(policy->tags.find_custom("owner"), nullptr);
  EXPECT_EQ(policy->tags.find_custom("owner")->aliases, (std::vector<std::string>{"Owner", "owner-email"}));
  for (const allocate::DimensionRule& rule : policy->tags.rules()) {
    if (rule.attribute != Attr::kTeam) continue;
    EXPECT_TRUE(rule.required);
    EXPECT_EQ(rule.allowed.size(), 3u);
  }
}

TEST(PolicyYamlTest, ErrorsNameTheFileLineKeyAndWhatWasExpected) {
  auto bad_key = parse_policy_yaml("dimensions:\n  team: {alias: [squad]}\n", "p.yaml");
  ASSERT_FALSE(bad_key.has_value());
  EXPECT_EQ(bad_key.error().message,
            "p.yaml:2: dimensions.team.alias: unknown key (expected one of: aliases, allowed, required)");
  auto bad_bool = parse_policy_yaml("dimensions:\n  team: {required: maybe}\n", "p.yaml");
  ASSERT_FALSE(bad_bool.has_value());
  EXPECT_NE(bad_bool.error().message.find("dimensions.team.required: \"maybe\" is not true or false"), std::string::npos);
  auto no_alias = parse_policy_yaml("dimensions:\n  product: {}\n", "p.yaml");
  ASSERT_FALSE(no_alias.has_value());
  EXPECT_NE(no_alias.error().message.find("dimensions.product.aliases"), std::string::npos);
  auto top = parse_policy_yaml("dimension: {}\n", "p.yaml");
  ASSERT_FALSE(top.has_value());
  EXPECT_NE(top.error().message.find("unknown key"), std::string::npos);
  auto syntax = parse_policy_yaml("dimensions: [unclosed\n", "p.yaml");
  ASSERT_FALSE(syntax.has_value());
  EXPECT_NE(syntax.error().message.find("not valid YAML"), std::string::npos);
}

TEST(PolicyYamlTest, AMissingNamedFileIsAnError) {
  auto policy = load_policy_file("/nonexistent/policy.yaml");
  ASSERT_FALSE(policy.has_value());
  EXPECT_NE(policy.error().message.find("--config"), std::string::npos);
}

}  // namespace
}  // namespace aifinops::config

namespace aifinops::config {
namespace {

TEST(PolicyYamlTest, ReadsSharedCostRulesAndBudgets) {
  auto policy = parse_policy_yaml(R"yaml(
shared_costs:
  - name: platform-gpu-pool
    match: {service: "GPU pool"}
    split: proportional
    driver: gpu_hours
    by: team
  - {name: gateway, match: {project: "(none)"}, split: fixed, by: team, weights: {alpha: 0.7, beta: 0.3}}
budgets:
  - {scope: {team: alpha}, period: month, amount_usd: 30000, enforce: soft, alert_at: ["50%", "80%", "100%", "forecast 100%"]}
)yaml", "policy.yaml");
  ASSERT_TRUE(policy.has_value()) << policy.error().message;
  ASSERT_EQ(policy->shared_costs.size(), 2u);
  EXPECT_EQ(policy->shared_costs[0].driver, allocate::SplitDriver::kGpuHours);
  EXPECT_EQ(policy->shared_costs[0].match.at("service"), "GPU pool");
  EXPECT_EQ(policy->shared_costs[1].split, allocate::SplitMethod::kFixed);
  EXPECT_EQ(policy->shared_costs[1].weights.at("alpha").nanos, 700'000'000);
  ASSERT_EQ(policy->budgets.size(), 1u);
  const BudgetRule& b = policy->budgets[0];
  EXPECT_EQ(b.name, "team=alpha (month)");
  EXPECT_FALSE(b.hard);
  EXPECT_EQ(b.amount.nanos, 30000LL * 1'000'000'000);
  ASSERT_EQ(b.alert_at.size(), 4u);
  EXPECT_EQ(b.alert_at[3].percent, 100);
  EXPECT_TRUE(b.alert_at[3].forecast);
  EXPECT_EQ(b.alert_at[1].label(), "80%");
}

TEST(PolicyYamlTest, SharedCostAndBudgetErrorsNameTheKey) {
  auto expect_error = [](std::string_view text, std::string_view fragment) {
    auto policy = parse_policy_yaml(text, "p.yaml");
    ASSERT_FALSE(policy.has_value()) << text;
    EXPECT_NE(policy.error().message.find(fragment), std::string::npos) << policy.error().message;
  };
  expect_error("shared_costs:\n  - {name: a, match: {service: x}, split: halves}\n", "shared_costs[0].split");
  expect_error("shared_costs:\n  - {name: a, match: {service: x}, driver: watts}\n", "shared_costs[0].driver");
  expect_error("shared_costs:\n  - {name: a, match: {colour: x}}\n", "shared_costs[0].match.colour");
  expect_error("shared_costs:\n  - {name: a, match: {service: x}, split: fixed}\n", "shared_costs[0].weights");
  expect_error("shared_costs:\n  - {name: a, match: {service: x}, by: nothing}\n", "shared_costs[0].by");
  expect_error("shared_costs:\n  - {match: {service: x}}\n", "shared_costs[0].name");
  expect_error("budgets:\n  - {scope: {team: a}, amount_usd: 10, alert_at: [lots]}\n", "budgets[0].alert_at");
  expect_error("budgets:\n  - {scope: {team: a}, amount_usd: -1}\n", "budgets[0].amount_usd");
  expect_error("budgets:\n  - {scope: {team: a}, amount_usd: 1, period: year}\n", "budgets[0].period");
  expect_error("budgets:\n  - {scope: {flavour: a}, amount_usd: 1}\n", "budgets[0].scope.flavour");
}

TEST(PolicyYamlTest, ReadsApiTokensWithScopesAndRestrictions) {
  const std::string hash(64, 'a');
  auto policy = parse_policy_yaml("api_tokens:\n"
                                  "  - {id: ops, token_sha256: \"" + std::string(64, 'A') +
                                      "\", scope: admin}\n"
                                  "  - {id: lead, token_sha256: \"" + std::string(64, 'b') +
                                      "\", scope: viewer, restrict: {team: [team-a, team-c]}}\n",
                                  "p.yaml");
  ASSERT_TRUE(policy.has_value()) << policy.error().message;
  ASSERT_EQ(policy->api_tokens.size(), 2u);
  EXPECT_EQ(policy->api_tokens[0].id, "ops");
  EXPECT_EQ(policy->api_tokens[0].token_sha256, hash);  // upper-case hex is normalised
  EXPECT_EQ(policy->api_tokens[0].scope, ApiScope::kAdmin);
  EXPECT_TRUE(policy->api_tokens[0].restrict.empty());
  EXPECT_EQ(policy->api_tokens[1].scope, ApiScope::kViewer);
  ASSERT_EQ(policy->api_tokens[1].restrict.size(), 1u);
  EXPECT_EQ(policy->api_tokens[1].restrict[0].first, "team");
  EXPECT_EQ(policy->api_tokens[1].restrict[0].second, (std::vector<std::string>{"team-a", "team-c"}));
  EXPECT_EQ(policy->api_tokens[1].line, 3);
}

TEST(PolicyYamlTest, ApiTokenErrorsNameTheLineAndKeyPath) {
  auto error_of = [](const std::string& text) {
    auto p = parse_policy_yaml(text, "p.yaml");
    return p ? std::string("(no error)") : p.error().message;
  };
  const std::string h = std::string(64, 'c');
  EXPECT_NE(error_of("api_tokens:\n  - {id: x, token_sha256: secret, scope: viewer}\n")
                .find("p.yaml:2: api_tokens[0].token_sha256: expected 64 hex digits"),
            std::string::npos);
  EXPECT_NE(error_of("api_tokens:\n  - {id: x, token_sha256: " + h + ", scope: root}\n")
                .find("api_tokens[0].scope: \"root\" is not one of admin, viewer"),
            std::string::npos);
  EXPECT_NE(error_of("api_tokens:\n  - {id: x, token_sha256: " + h + "}\n").find("api_tokens[0].scope: missing"),
            std::string::npos);
  EXPECT_NE(error_of("api_tokens:\n  - {id: x, token_sha256: " + h +
                     ", scope: viewer, restrict: {tema: [a]}}\n")
                .find("api_tokens[0].restrict.tema"),
            std::string::npos);
  EXPECT_NE(error_of("api_tokens:\n  - {id: x, token_sha256: " + h +
                     ", scope: admin, restrict: {team: [a]}}\n")
                .find("restrict a viewer token instead"),
            std::string::npos);
  EXPECT_NE(error_of("api_tokens:\n  - {id: x, token_sha256: " + h + ", scope: viewer}\n" +
                     "  - {id: x, token_sha256: " + std::string(64, 'd') + ", scope: viewer}\n")
                .find("p.yaml:3: api_tokens[1].id: \"x\" is the id of another token"),
            std::string::npos);
  EXPECT_NE(error_of("api_tokens:\n  - {id: x, token_sha256: " + h + ", scope: viewer, extra: 1}\n")
                .find("unknown key"),
            std::string::npos);
}

}  // namespace
}  // namespace aifinops::config
