#include "allocate/tag_policy.h"

#include <gtest/gtest.h>

namespace aifinops::allocate {
namespace {

std::string dimension(const AttributeViews& v, Attr a) { return std::string(v[(size_t)a]); }

TEST(TagPolicyTest, MapsCommonRawSpellingsToCanonicalDimensions) {
  TagPolicy policy = TagPolicy::defaults();
  std::array<std::string, kAttrCount> storage;
  AttributeViews views{};
  ASSERT_TRUE(policy.apply(
      R"({"owner-team":"search","env":"prod","Cost-Center":"CC-1","Project":"rag","ShutdownEligible":true,"Other":"x"})",
      storage, views));
  EXPECT_EQ(dimension(views, Attr::kTeam), "search");
  EXPECT_EQ(dimension(views, Attr::kEnvironment), "prod");
  EXPECT_EQ(dimension(views, Attr::kCostCenter), "CC-1");
  EXPECT_EQ(dimension(views, Attr::kProject), "rag");
  EXPECT_EQ(dimension(views, Attr::kShutdownEligible), "true");
  EXPECT_EQ(dimension(views, Attr::kWorkload), "");
}

TEST(TagPolicyTest, ExtendedAliasesApplyAndUnknownDimensionsAreRefused) {
  TagPolicy policy = TagPolicy::defaults();
  EXPECT_TRUE(policy.extend("team", {"squad-name"}, {"alpha", "team-*"}, true));
  EXPECT_FALSE(policy.extend("colour", {"Colour"}, {}, false));
  std::array<std::string, kAttrCount> storage;
  AttributeViews views{};
  ASSERT_TRUE(policy.apply(R"({"Squad Name":"alpha"})", storage, views));
  EXPECT_EQ(dimension(views, Attr::kTeam), "alpha");
}

TEST(TagPolicyTest, CustomDimensionsAreNamedOnceAndChangeTheFingerprint) {
  TagPolicy policy = TagPolicy::defaults();
  std::string before = policy.fingerprint();
  EXPECT_TRUE(policy.add_custom({"owner", {"Owner", "owner-email"}, {}, false}));
  EXPECT_FALSE(policy.add_custom({"owner", {"x"}, {}, false}));
  EXPECT_FALSE(policy.add_custom({"team", {"x"}, {}, false}));
  EXPECT_FALSE(policy.add_custom({"product", {}, {}, false}));
  ASSERT_NE(policy.find_custom("owner"), nullptr);
  EXPECT_EQ(policy.find_custom("owner")->aliases[1], "owner-email");
  EXPECT_EQ(before, policy.fingerprint());  // custom dimensions are read at query time
  policy.extend("team", {"crew"}, {}, false);
  EXPECT_NE(before, policy.fingerprint());
}

TEST(TagPolicyTest, RejectsTagsThatAreNotAJsonObject) {
  TagPolicy policy = TagPolicy::defaults();
  std::array<std::string, kAttrCount> storage;
  AttributeViews views{};
  EXPECT_FALSE(policy.apply("team=alpha", storage, views));
  EXPECT_FALSE(policy.apply("[1,2]", storage, views));
  EXPECT_TRUE(policy.apply("", storage, views));
  EXPECT_EQ(dimension(views, Attr::kTeam), "");
}

}  // namespace
}  // namespace aifinops::allocate
