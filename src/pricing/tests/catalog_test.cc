#include "pricing/catalog.h"

#include <gtest/gtest.h>

namespace aifinops::pricing {
namespace {

EpochSeconds date(std::string_view text) { return *parse_timestamp(text); }

ModelPrice model(std::string name, std::string_view from, std::string_view input) {
  ModelPrice p;
  p.model = std::move(name);
  p.provider = "openai";
  p.effective_from = date(from);
  p.prices.input = *parse_decimal(input);
  return p;
}

GpuInstancePrice gpu(std::string sku, std::string_view from, std::string_view hourly) {
  GpuInstancePrice p;
  p.sku = std::move(sku);
  p.provider = "aws";
  p.effective_from = date(from);
  p.on_demand = *parse_decimal(hourly);
  return p;
}

class CatalogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Added out of order on purpose: look-ups must not depend on insertion order.
    catalog_.add(model("gpt-4o", "2024-10-01", "2.5"));
    catalog_.add(model("gpt-4o", "2024-05-13", "5"));
    catalog_.add(model("gpt-4o-2024-08-06", "2024-08-06", "2.5"));
    catalog_.add(model("azure/gpt-4o", "2024-06-01", "5.5"));
    catalog_.add(model("claude-3-5-sonnet", "2024-06-20", "3"));
    catalog_.add(gpu("p5.48xlarge", "2024-01-01", "98.32"));
  }
  Catalog catalog_;
};

TEST_F(CatalogTest, PicksTheVersionInEffectAtTheTime) {
  EXPECT_EQ(catalog_.find_model("gpt-4o", date("2024-05-12")), nullptr);  // before both
  const ModelPrice* first = catalog_.find_model("gpt-4o", date("2024-05-13"));
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->prices.input, *parse_decimal("5"));
  const ModelPrice* between = catalog_.find_model("gpt-4o", date("2024-09-30T23:59:59Z"));
  ASSERT_NE(between, nullptr);
  EXPECT_EQ(between->prices.input, *parse_decimal("5"));
  const ModelPrice* after = catalog_.find_model("gpt-4o", date("2030-01-01"));
  ASSERT_NE(after, nullptr);
  EXPECT_EQ(after->prices.input, *parse_decimal("2.5"));
}

TEST_F(CatalogTest, VersionAddedLastWinsOnTheSameDate) {
  catalog_.add(model("gpt-4o", "2024-10-01", "2.25"));
  EXPECT_EQ(catalog_.find_model("gpt-4o", date("2025-01-01"))->prices.input, *parse_decimal("2.25"));
  EXPECT_EQ(catalog_.model_versions("gpt-4o").size(), 3u);
}

TEST_F(CatalogTest, NormalisesCommonSpellings) {
  EpochSeconds at = date("2025-01-01");
  EXPECT_EQ(catalog_.find_model("GPT-4o", at)->model, "gpt-4o");
  EXPECT_EQ(catalog_.find_model("openai/gpt-4o", at)->model, "gpt-4o");
  EXPECT_EQ(catalog_.find_model("bedrock/eu/claude-3-5-sonnet", at)->model, "claude-3-5-sonnet");
  // An exact entry beats the provider-less spelling.
  EXPECT_EQ(catalog_.find_model("azure/gpt-4o", at)->model, "azure/gpt-4o");
  // A listed snapshot is used as is; an unlisted one falls back to the undated name.
  EXPECT_EQ(catalog_.find_model("gpt-4o-2024-08-06", at)->model, "gpt-4o-2024-08-06");
  EXPECT_EQ(catalog_.find_model("gpt-4o-2024-11-20", at)->model, "gpt-4o");
  EXPECT_EQ(catalog_.find_model("claude-3-5-sonnet-20241022", at)->model, "claude-3-5-sonnet");
  EXPECT_EQ(catalog_.find_model("anthropic/claude-3-5-sonnet-20241022", at)->model,
            "claude-3-5-sonnet");
  EXPECT_EQ(catalog_.find_model("gpt-5", at), nullptr);
  EXPECT_EQ(catalog_.find_model("", at), nullptr);
}

TEST_F(CatalogTest, DoesNotTakeNumbersThatAreNotDatesForSnapshots) {
  EXPECT_EQ(model_name_candidates("gpt-4-1106"), std::vector<std::string>{"gpt-4-1106"});
  EXPECT_EQ(model_name_candidates("model-20001399"), std::vector<std::string>{"model-20001399"});
  EXPECT_EQ(model_name_candidates("OpenAI/GPT-4o-2024-08-06"),
            (std::vector<std::string>{"openai/gpt-4o-2024-08-06", "gpt-4o-2024-08-06",
                                      "openai/gpt-4o", "gpt-4o"}));
}

TEST_F(CatalogTest, FirstSpellingPresentDecidesEvenWhenNotYetInEffect) {
  // azure/gpt-4o exists from 2024-06-01: before that it has no price, and the openai
  // price of plain gpt-4o must not be borrowed for it.
  EXPECT_EQ(catalog_.find_model("azure/gpt-4o", date("2024-05-20")), nullptr);
  EXPECT_EQ(catalog_.model_versions("azure/gpt-4o").size(), 1u);
  EXPECT_TRUE(catalog_.model_versions("gpt-5").empty());
}

TEST_F(CatalogTest, FindsGpuInstancesCaseInsensitively) {
  const GpuInstancePrice* p5 = catalog_.find_gpu_instance("P5.48XLarge", date("2025-01-01"));
  ASSERT_NE(p5, nullptr);
  EXPECT_EQ(p5->on_demand, *parse_decimal("98.32"));
  EXPECT_EQ(catalog_.find_gpu_instance("p5.48xlarge", date("2023-12-31")), nullptr);
  EXPECT_EQ(catalog_.find_gpu_instance("p4d.24xlarge", date("2025-01-01")), nullptr);
  EXPECT_EQ(catalog_.gpu_instance_versions("P5.48XLARGE").size(), 1u);
}

TEST_F(CatalogTest, ListsEveryVersionGroupedByNameInDateOrder) {
  EXPECT_EQ(catalog_.size(), 6u);
  EXPECT_EQ(catalog_.model_count(), 5u);
  EXPECT_EQ(catalog_.gpu_instance_count(), 1u);
  std::vector<std::string> seen;
  for (const ModelPrice* p : catalog_.model_prices())
    seen.push_back(p->model + "@" + format_date(p->effective_from));
  EXPECT_EQ(seen, (std::vector<std::string>{"azure/gpt-4o@2024-06-01",
                                            "claude-3-5-sonnet@2024-06-20", "gpt-4o@2024-05-13",
                                            "gpt-4o@2024-10-01", "gpt-4o-2024-08-06@2024-08-06"}));
  ASSERT_EQ(catalog_.gpu_instance_prices().size(), 1u);
}

}  // namespace
}  // namespace aifinops::pricing
