#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "pricing/catalog.h"

namespace aifinops::pricing {
namespace {

Decimal d(std::string_view text) { return *parse_decimal(text); }

const EpochSeconds kSnapshot = *parse_timestamp("2026-07-24");

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// The real LiteLLM snapshot in the shared data folder, parsed once for all tests.
const Catalog& shared_catalog() {
  static const Catalog catalog = [] {
    std::string json = read_file(AIFINOPS_SHARED_DIR "/data/prices/litellm_model_prices.json");
    EXPECT_FALSE(json.empty());
    auto prices = parse_litellm_json(json, kSnapshot, "LiteLLM 2026-07-24");
    EXPECT_TRUE(prices.has_value()) << (prices ? "" : prices.error().message);
    Catalog c;
    if (prices) {
      for (ModelPrice& p : *prices) c.add(std::move(p));
    }
    return c;
  }();
  return catalog;
}

TEST(LitellmImportTest, KeepsEveryEntryWithTokenPrices) {
  // 2,984 keys: 2,982 models (plus sample_spec and fallback_generalizations), of which
  // 2,521 have input_cost_per_token or output_cost_per_token.
  EXPECT_EQ(shared_catalog().model_count(), 2521u);
  EXPECT_EQ(shared_catalog().find_model("sample_spec", kSnapshot), nullptr);
  EXPECT_EQ(shared_catalog().find_model("fallback_generalizations", kSnapshot), nullptr);
}

TEST(LitellmImportTest, ConvertsPerTokenToPerMillionExactly) {
  const ModelPrice* p = shared_catalog().find_model("gpt-4o-mini", kSnapshot);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->prices.input, d("0.15"));
  EXPECT_EQ(p->prices.cached_input, d("0.075"));
  EXPECT_EQ(p->prices.output, d("0.60"));
  EXPECT_FALSE(p->prices.cache_write.has_value());
  EXPECT_FALSE(p->prices.reasoning.has_value());
  EXPECT_EQ(p->provider, "openai");
  EXPECT_EQ(p->mode, "chat");
  EXPECT_EQ(p->max_output_tokens, 16384);
  EXPECT_EQ(p->effective_from, kSnapshot);
  EXPECT_EQ(p->source, "LiteLLM 2026-07-24");
  EXPECT_TRUE(p->tiers.empty());
}

TEST(LitellmImportTest, ReadsTiersAboveAnInputSize) {
  const ModelPrice* p = shared_catalog().find_model("claude-sonnet-4-5", kSnapshot);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->prices.input, d("3"));
  EXPECT_EQ(p->prices.cache_write, d("3.75"));
  ASSERT_EQ(p->tiers.size(), 1u);
  EXPECT_EQ(p->tiers[0].above_input_tokens, 200000);
  EXPECT_EQ(p->tiers[0].prices.input, d("6"));
  EXPECT_EQ(p->tiers[0].prices.output, d("22.5"));
  EXPECT_EQ(p->tiers[0].prices.cached_input, d("0.6"));
  EXPECT_EQ(p->tiers[0].prices.cache_write, d("7.5"));
}

TEST(LitellmImportTest, DerivesTheBatchDiscount) {
  const ModelPrice* p = shared_catalog().find_model("gpt-4o", kSnapshot);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->batch_discount, d("0.5"));
  // Embeddings: output is free in both, the input ratio decides.
  EXPECT_EQ(shared_catalog().find_model("text-embedding-3-small", kSnapshot)->batch_discount,
            d("0.5"));
  EXPECT_FALSE(shared_catalog().find_model("claude-sonnet-4-5", kSnapshot)->batch_discount);
}

TEST(LitellmImportTest, ReadsReasoningPrices) {
  const ModelPrice* p = shared_catalog().find_model("dashscope/qwen-turbo", kSnapshot);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->prices.output, d("0.2"));
  EXPECT_EQ(p->prices.reasoning, d("0.5"));
}

TEST(LitellmImportTest, RoundsFloatArtefactsAtTheNinthDecimal) {
  // Written as 1.9999700000000004e-06 per token in the file.
  const ModelPrice* p = shared_catalog().find_model("databricks/databricks-gpt-5-mini", kSnapshot);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->prices.output, d("1.99997"));
}

TEST(LitellmImportTest, SkipsOddFieldsWithoutFailing) {
  std::string json = R"({
    "sample_spec": {"input_cost_per_token": 0.0, "mode": "one of: chat"},
    "odd": {"input_cost_per_token": null, "output_cost_per_token": "2e-6",
            "cache_read_input_token_cost": {"a": 1}, "max_tokens": "lots", "mode": 7},
    "half": {"input_cost_per_token": null, "output_cost_per_token": 2E-6,
             "input_cost_per_token_batches": 1e-6, "output_cost_per_token_batches": 1e-6,
             "input_cost_per_token_above_1hr_above_200k_tokens": 5e-6,
             "input_cost_per_token_above_272k_tokens_priority": 5e-6,
             "output_cost_per_token_above_128k_tokens": 4e-6, "max_tokens": 4096.0,
             "litellm_provider": ["x"]},
    "negative": {"input_cost_per_token": -1e-6},
    "plain": {"input_cost_per_token": 0.0000025, "output_cost_per_token": 1,
              "input_cost_per_token_batches": 1.25e-6, "output_cost_per_token_batches": 0.6},
    "not_an_object": 3,
    "fallback_generalizations": {"rules": []}
  })";
  auto prices = parse_litellm_json(json, 0, "test");
  ASSERT_TRUE(prices.has_value()) << prices.error().message;
  ASSERT_EQ(prices->size(), 2u);
  const ModelPrice& half = (*prices)[0];
  EXPECT_EQ(half.model, "half");
  EXPECT_FALSE(half.prices.input.has_value());
  EXPECT_EQ(half.prices.output, d("2"));
  EXPECT_FALSE(half.batch_discount.has_value());  // no normal input price to compare with
  ASSERT_EQ(half.tiers.size(), 1u);
  EXPECT_EQ(half.tiers[0].above_input_tokens, 128000);
  EXPECT_EQ(half.tiers[0].prices.output, d("4"));
  EXPECT_EQ(half.max_output_tokens, 4096);
  EXPECT_EQ(half.provider, "");
  const ModelPrice& plain = (*prices)[1];
  EXPECT_EQ(plain.prices.input, d("2.5"));
  EXPECT_EQ(plain.prices.output, d("1000000"));
  // 1.25/2.5 and 0.6/1 disagree: no single discount, so none.
  EXPECT_FALSE(plain.batch_discount.has_value());
}

TEST(LitellmImportTest, MalformedJsonIsAnErrorNotACrash) {
  for (std::string_view json :
       {std::string_view(""), std::string_view("{"), std::string_view("[1, 2]"),
        std::string_view(R"({"m": {"input_cost_per_token": 1e-6,)"),
        std::string_view(R"({"m": {"input_cost_per_token": 1e-6, "x": tru}})"),
        std::string_view(R"({"m": {"input_cost_per_token": 1e-6}} trailing)"),
        std::string_view("\xff\xfe")}) {
    auto prices = parse_litellm_json(json, 0, "test");
    ASSERT_FALSE(prices.has_value()) << "accepted: " << json;
    EXPECT_EQ(prices.error().code, ErrorCode::kParse);
    EXPECT_NE(prices.error().message.find("LiteLLM"), std::string::npos) << prices.error().message;
  }
}

}  // namespace
}  // namespace aifinops::pricing
