#include "allocate/compliance.h"

#include <gtest/gtest.h>

#include "tests/testing/ledger_builder.h"

namespace aifinops::allocate {
namespace {

constexpr int64_t kUnit = kNanosPerUnit;

TEST(ComplianceTest, PatternsMatchWithStarsAndOtherwiseExactly) {
  EXPECT_TRUE(matches_pattern("team-*", "team-search"));
  EXPECT_TRUE(matches_pattern("team-*", "team-"));
  EXPECT_FALSE(matches_pattern("team-*", "Team-search"));  // case matters
  EXPECT_FALSE(matches_pattern("team-*", "my-team-x"));
  EXPECT_TRUE(matches_pattern("*", ""));
  EXPECT_TRUE(matches_pattern("a*b*c", "aXXbYYbZc"));
  EXPECT_FALSE(matches_pattern("a*b*c", "aXXbYY"));
  EXPECT_TRUE(matches_pattern("*-prod", "eu-prod"));
  EXPECT_TRUE(matches_pattern("production", "production"));
  EXPECT_FALSE(matches_pattern("production", "production-2"));
  EXPECT_FALSE(matches_pattern("", "x"));
  EXPECT_TRUE(value_allowed({}, "anything"));
  EXPECT_TRUE(value_allowed({"alpha", "team-*"}, "team-7"));
  EXPECT_FALSE(value_allowed({"alpha", "team-*"}, "Alpha"));
}

TEST(ComplianceTest, AuditsAllocatedShareCoverageViolationsAndUntaggedResources) {
  TagPolicy policy = TagPolicy::defaults();
  ASSERT_TRUE(policy.extend("team", {}, {"alpha", "beta", "team-*"}, true));
  ASSERT_TRUE(policy.extend("environment", {}, {"production", "staging"}, true));
  ASSERT_TRUE(policy.extend("cost_center", {}, {"CC-*"}, false));
  testing::LedgerBuilder b;
  b.add({{Attr::kTeam, "alpha"}, {Attr::kEnvironment, "production"}, {Attr::kResourceId, "vm-1"}},
        "2025-10-01", "50");
  b.add({{Attr::kTeam, "team-x"}, {Attr::kEnvironment, "staging"}, {Attr::kCostCenter, "CC-1"}},
        "2025-10-01", "10");
  b.add({{Attr::kTeam, "Alpha"}, {Attr::kEnvironment, "production"}, {Attr::kResourceId, "vm-2"}},
        "2025-10-01", "20");
  b.add({{Attr::kTeam, "beta"},
         {Attr::kResourceId, "vm-3"},
         {Attr::kResourceName, "db"},
         {Attr::kServiceName, "Compute"},
         {Attr::kProviderName, "AWS"}},
        "2025-10-01", "15");
  b.add({{Attr::kTeam, "beta"}, {Attr::kEnvironment, "prod"}, {Attr::kCostCenter, "finance"}},
        "2025-10-01", "4");
  b.add({{Attr::kServiceName, "Egress"}}, "2025-10-01", "1");
  b.add({{Attr::kTeam, "alpha"}, {Attr::kEnvironment, "production"}}, "2025-11-01",
        "1000");  // outside
  ledger::Ledger& l = b.commit();
  AuditRequest request;
  request.from = *parse_timestamp("2025-10-01");
  request.to = *parse_timestamp("2025-11-01");
  auto r = audit_tags(l, policy, request);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->total, 100 * kUnit);
  EXPECT_EQ(r->allocated, 60 * kUnit);  // alpha/production and team-x/staging
  EXPECT_EQ(r->required, (std::vector<std::string>{"team", "environment"}));
  EXPECT_FALSE(r->required_by_default);
  ASSERT_GE(r->dimensions.size(), 3u);
  const DimensionCoverage& team = r->dimensions[0];
  EXPECT_EQ(team.dimension, "team");
  EXPECT_TRUE(team.required);
  EXPECT_EQ(team.tagged, 99 * kUnit);
  EXPECT_EQ(team.valid, 79 * kUnit);
  const DimensionCoverage& environment = r->dimensions[2];
  EXPECT_EQ(environment.dimension, "environment");
  EXPECT_EQ(environment.tagged, 84 * kUnit);
  EXPECT_EQ(environment.valid, 80 * kUnit);
  ASSERT_EQ(r->violations.size(), 3u);
  EXPECT_EQ(r->violations[0].dimension, "team");
  EXPECT_EQ(r->violations[0].value, "Alpha");
  EXPECT_EQ(r->violations[0].cost, 20 * kUnit);
  // Equal costs: by dimension name, then value.
  EXPECT_EQ(r->violations[1].dimension, "cost_center");
  EXPECT_EQ(r->violations[1].value, "finance");
  EXPECT_EQ(r->violations[2].value, "prod");
  ASSERT_EQ(r->untagged_count, 4);
  ASSERT_EQ(r->untagged.size(), 4u);
  EXPECT_EQ(r->untagged[0].resource, "vm-2");
  EXPECT_EQ(r->untagged[0].problems, std::vector<std::string>{"team=Alpha not allowed"});
  EXPECT_EQ(r->untagged[1].resource, "vm-3");
  EXPECT_EQ(r->untagged[1].resource_name, "db");
  EXPECT_EQ(r->untagged[1].service, "Compute");
  EXPECT_EQ(r->untagged[1].provider, "AWS");
  EXPECT_EQ(r->untagged[1].problems, std::vector<std::string>{"environment missing"});
  EXPECT_EQ(r->untagged[3].service, "Egress");
  EXPECT_EQ(r->untagged[3].problems,
            (std::vector<std::string>{"team missing", "environment missing"}));

  request.top_resources = 2;
  r = audit_tags(l, policy, request);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->untagged.size(), 2u);
  EXPECT_EQ(r->untagged_count, 4);
}

TEST(ComplianceTest, APolicyThatRequiresNothingIsAuditedForTeam) {
  testing::LedgerBuilder b;
  b.add({{Attr::kTeam, "alpha"}}, "2025-10-01", "3");
  b.add({{Attr::kProject, "p"}}, "2025-10-01", "1");
  ledger::Ledger& l = b.commit();
  auto r = audit_tags(l, TagPolicy::defaults(), AuditRequest{});
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->required_by_default);
  EXPECT_EQ(r->required, std::vector<std::string>{"team"});
  EXPECT_EQ(r->allocated, 3 * kUnit);
  EXPECT_TRUE(r->violations.empty());
}

TEST(ComplianceTest, CustomDimensionsAreReadFromRawTags) {
  TagPolicy policy = TagPolicy::defaults();
  ASSERT_TRUE(policy.add_custom({"owner", {"Owner", "owner-email"}, {"*@example.com"}, true}));
  testing::LedgerBuilder b;
  b.add({{Attr::kTeam, "a"}, {Attr::kTags, R"({"Owner":"ann@example.com"})"}}, "2025-10-01", "5");
  b.add({{Attr::kTeam, "a"}, {Attr::kTags, R"({"owner-email":"bob@elsewhere.org"})"}}, "2025-10-01",
        "2");
  b.add({{Attr::kTeam, "a"}}, "2025-10-01", "1");
  ledger::Ledger& l = b.commit();
  auto r = audit_tags(l, policy, AuditRequest{});
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_FALSE(r->required_by_default);
  EXPECT_EQ(r->required, std::vector<std::string>{"owner"});
  EXPECT_EQ(r->allocated, 5 * kUnit);
  const DimensionCoverage& owner = r->dimensions.back();
  EXPECT_EQ(owner.dimension, "owner");
  EXPECT_EQ(owner.tagged, 7 * kUnit);
  EXPECT_EQ(owner.valid, 5 * kUnit);
  ASSERT_EQ(r->violations.size(), 1u);
  EXPECT_EQ(r->violations[0].value, "bob@elsewhere.org");
}

}  // namespace
}  // namespace aifinops::allocate
