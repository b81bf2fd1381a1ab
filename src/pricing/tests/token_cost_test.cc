#include <gtest/gtest.h>

#include "pricing/catalog.h"

namespace aifinops::pricing {
namespace {

Decimal d(std::string_view text) { return *parse_decimal(text); }

ModelPrice gpt_4o_mini() {
  ModelPrice p;
  p.model = "gpt-4o-mini";
  p.prices.input = d("0.15");
  p.prices.cached_input = d("0.075");
  p.prices.output = d("0.60");
  return p;
}

ModelPrice claude_sonnet() {
  ModelPrice p;
  p.model = "claude-sonnet-4-5";
  p.prices.input = d("3");
  p.prices.cached_input = d("0.3");
  p.prices.cache_write = d("3.75");
  p.prices.output = d("15");
  TokenPrices above_200k;
  above_200k.input = d("6");
  above_200k.output = d("22.5");
  p.tiers.push_back(PriceTier{200000, above_200k});
  return p;
}

TEST(TokenCostTest, MillionInputTokensCostExactlyThePerMillionPrice) {
  EXPECT_EQ(token_cost(gpt_4o_mini(), TokenUsage{.input = 1'000'000}), d("0.15"));
}

TEST(TokenCostTest, TinyAmountsAreExactToTheNanoUnit) {
  // 7 cached tokens at 0.075 per million: 0.000000525, which a double would not hold.
  EXPECT_EQ(token_cost(gpt_4o_mini(), TokenUsage{.input = 7, .cached_input = 7}), d("0.000000525"));
  EXPECT_EQ(token_cost(gpt_4o_mini(), TokenUsage{.input = 123'456'789}), d("18.51851835"));
}

TEST(TokenCostTest, CachedInputIsPartOfInputAndChargedAtTheCachePrice) {
  // 600 uncached × 0.15 + 400 cached × 0.075 + 500 output × 0.60 = 420 per million.
  TokenUsage usage{.input = 1000, .cached_input = 400, .output = 500};
  EXPECT_EQ(token_cost(gpt_4o_mini(), usage), d("0.00042"));
}

TEST(TokenCostTest, CacheWritesHaveTheirOwnPrice) {
  // 5000 × 3 + 2000 × 0.3 + 3000 × 3.75 + 100 × 15 = 28350 per million.
  TokenUsage usage{.input = 10000, .cached_input = 2000, .cache_write = 3000, .output = 100};
  EXPECT_EQ(token_cost(claude_sonnet(), usage), d("0.02835"));
}

TEST(TokenCostTest, MissingCachePricesFallBackToInput) {
  ModelPrice p;
  p.prices.input = d("2");
  TokenUsage usage{.input = 1000, .cached_input = 300, .cache_write = 200};
  EXPECT_EQ(token_cost(p, usage), d("0.002"));
}

TEST(TokenCostTest, CacheCountsAboveInputDoNotMakeUncachedNegative) {
  TokenUsage usage{.input = 100, .cached_input = 150};
  EXPECT_EQ(token_cost(gpt_4o_mini(), usage), d("0.00001125"));  // 150 × 0.075
}

TEST(TokenCostTest, ReasoningUsesItsPriceOrElseOutput) {
  ModelPrice p;
  p.prices.output = d("10");
  TokenUsage usage{.output = 1000, .reasoning = 400};
  EXPECT_EQ(token_cost(p, usage), d("0.01"));
  p.prices.reasoning = d("12");
  EXPECT_EQ(token_cost(p, usage), d("0.0108"));  // 600 × 10 + 400 × 12
}

TEST(TokenCostTest, TierAppliesOnlyAboveItsThreshold) {
  ModelPrice p = claude_sonnet();
  EXPECT_EQ(token_cost(p, TokenUsage{.input = 200000}), d("0.6"));
  // 200001 × 6 + 1000 × 22.5
  EXPECT_EQ(token_cost(p, TokenUsage{.input = 200001, .output = 1000}), d("1.222506"));
  // The tier sets no cache price: the base cache price applies.
  EXPECT_EQ(token_cost(p, TokenUsage{.input = 250000, .cached_input = 1000}), d("1.4943"));
}

TEST(TokenCostTest, HighestMatchingTierWins) {
  ModelPrice p;
  p.prices.input = d("1");
  TokenPrices above_256k, above_128k;
  above_256k.input = d("4");
  above_128k.input = d("2");
  p.tiers.push_back(PriceTier{256000, above_256k});
  p.tiers.push_back(PriceTier{128000, above_128k});
  EXPECT_EQ(token_cost(p, TokenUsage{.input = 100000}), d("0.1"));
  EXPECT_EQ(token_cost(p, TokenUsage{.input = 200000}), d("0.4"));
  EXPECT_EQ(token_cost(p, TokenUsage{.input = 300000}), d("1.2"));
}

TEST(TokenCostTest, BatchDiscountAppliesOnlyToBatchUse) {
  ModelPrice p;
  p.prices.input = d("2.5");
  p.prices.output = d("10");
  p.batch_discount = d("0.5");
  EXPECT_EQ(token_cost(p, TokenUsage{.input = 1000, .output = 1000}), d("0.0125"));
  EXPECT_EQ(token_cost(p, TokenUsage{.input = 1000, .output = 1000, .batch = true}), d("0.00625"));
  p.batch_discount.reset();
  EXPECT_EQ(token_cost(p, TokenUsage{.input = 1000, .output = 1000, .batch = true}), d("0.0125"));
}

TEST(TokenCostTest, RoundsOnceAfterTheDiscount) {
  // 1 token at 0.0007 per million = 0.7 nano; 60 % of it = 0.42 nano -> 0. Rounding before
  // the discount would give 1 nano -> 0.6 -> 1.
  ModelPrice p;
  p.prices.input = d("0.0007");
  p.batch_discount = d("0.4");
  EXPECT_EQ(token_cost(p, TokenUsage{.input = 1, .batch = true}).nanos, 0);
  EXPECT_EQ(token_cost(p, TokenUsage{.input = 1}).nanos, 1);
}

TEST(TokenCostTest, NegativeCountsCostNothing) {
  EXPECT_EQ(token_cost(gpt_4o_mini(), TokenUsage{.input = -5, .output = -1}).nanos, 0);
}

}  // namespace
}  // namespace aifinops::pricing
