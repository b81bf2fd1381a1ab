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
  EXPECT_EQ(team_of(*policy, R"({"Squad":"alpha"})"), "alpha");
  EXPECT_EQ(team_of(*policy, R"({"Team":"beta"})"), "beta");  // built-in aliases stay
  ASSERT_NE(policy->find_custom("owner"), nullptr);
  EXPECT_EQ(policy->find_custom("owner")->aliases, (std::vector<std::string>{"Owner", "owner-email"}));
  for (const allocate::DimensionRule& rule : policy->rules()) {
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
