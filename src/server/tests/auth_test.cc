#include "server/auth.h"

#include <gtest/gtest.h>

namespace aifinops::server {
namespace {

config::Policy policy_with_tokens() {
  auto policy = config::parse_policy_yaml(
      "dimensions:\n"
      "  team: {allowed: [team-a, team-b, \"lab-*\"]}\n"
      "budgets:\n"
      "  - {name: org, amount_usd: 100, scope: {environment: production}}\n"
      "  - {name: a-month, amount_usd: 10, scope: {team: team-a}}\n"
      "  - {name: b-month, amount_usd: 10, scope: {team: team-b}}\n"
      "shared_costs:\n"
      "  - {name: pool, match: {service: GPU pool}, by: team}\n"
      "api_tokens:\n"
      "  - {id: ops, token_sha256: \"" +
          sha256_hex("admin-secret") +
          "\", scope: admin}\n"
          "  - {id: fin, token_sha256: \"" +
          sha256_hex("viewer-secret") +
          "\", scope: viewer}\n"
          "  - {id: lead, token_sha256: \"" +
          sha256_hex("lead-secret") + "\", scope: viewer, restrict: {team: [team-c, team-a]}}\n",
      "policy.yaml");
  EXPECT_TRUE(policy.has_value()) << policy.error().message;
  return *policy;
}

TEST(AuthTest, Sha256HexMatchesTheKnownDigest) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(AuthTest, NewTokensAreLongRandomAndDistinct) {
  std::string a = new_api_token(), b = new_api_token();
  EXPECT_EQ(a.size(), 47u);
  EXPECT_EQ(a.rfind("aif_", 0), 0u);
  EXPECT_NE(a, b);
}

TEST(AuthTest, FindsThePrincipalOfAPresentedTokenByItsHash) {
  config::Policy policy = policy_with_tokens();
  auto principals = principals_from_policy(policy);
  ASSERT_TRUE(principals.has_value()) << principals.error().message;
  TokenTable table(policy, *principals);
  ASSERT_EQ(table.size(), 3u);
  const Principal* ops = table.find("admin-secret");
  ASSERT_NE(ops, nullptr);
  EXPECT_EQ(ops->id, "ops");
  EXPECT_EQ(ops->scope, config::ApiScope::kAdmin);
  EXPECT_FALSE(ops->restricted());
  const Principal* lead = table.find("lead-secret");
  ASSERT_NE(lead, nullptr);
  EXPECT_TRUE(lead->restricted());
  EXPECT_EQ(lead->restriction_key, "team=team-a|team-c;");  // sorted values
  EXPECT_EQ(table.find("admin-secreT"), nullptr);
  EXPECT_EQ(table.find(""), nullptr);
  // The hash is not a token: presenting the stored digest does not authenticate.
  EXPECT_EQ(table.find(sha256_hex("admin-secret")), nullptr);
}

TEST(AuthTest, RestrictedPolicyKeepsOnlyBudgetsInsideTheRestrictionAndNoSharedRules) {
  config::Policy policy = policy_with_tokens();
  auto principals = principals_from_policy(policy);
  ASSERT_TRUE(principals.has_value());
  config::Policy lead = restrict_policy(policy, (*principals)[2]);
  ASSERT_EQ(lead.budgets.size(), 1u);
  EXPECT_EQ(lead.budgets[0].name, "a-month");
  EXPECT_TRUE(lead.shared_costs.empty());
  for (const allocate::DimensionRule& rule : lead.tags.rules()) {
    if (rule.attribute == Attr::kTeam) {
      EXPECT_EQ(rule.allowed, (std::vector<std::string>{"team-a", "lab-*"}));
    }
  }
  config::Policy viewer = restrict_policy(policy, (*principals)[1]);
  EXPECT_EQ(viewer.budgets.size(), 3u);
  EXPECT_EQ(viewer.shared_costs.size(), 1u);
}

}  // namespace
}  // namespace aifinops::server
