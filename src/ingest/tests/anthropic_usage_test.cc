#include "ingest/anthropic_usage.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "ingest/tests/ledger_fixture.h"

namespace aifinops::ingest {
namespace {

using ledger::Metric;
using testing_support::model_price;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class AnthropicUsageTest : public testing_support::LedgerFixture {
 protected:
  pricing::Catalog make_catalog() override {
    pricing::Catalog c;
    pricing::ModelPrice sonnet = model_price("claude-sonnet-4-20250514", "anthropic", "3", "0.3", "3.75", "15");
    pricing::PriceTier tier;
    tier.above_input_tokens = 200000;
    tier.prices.input = *parse_decimal("6");
    tier.prices.cached_input = *parse_decimal("0.6");
    tier.prices.cache_write = *parse_decimal("7.5");
    tier.prices.output = *parse_decimal("22.5");
    sonnet.tiers.push_back(tier);
    sonnet.batch_discount = *parse_decimal("0.5");
    c.add(sonnet);
    return c;
  }
  std::string example() { return read_text(fixture("anthropic/docs_admin_usage_report_messages_example.json")); }
};

TEST_F(AnthropicUsageTest, NormalisesTheDocumentedExampleToOpenAiTokenSemanticsAndPricesIt) {
  auto s = ingest(fixture("anthropic/docs_admin_usage_report_messages_example.json"));  // auto
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(s->format, "Anthropic usage report");
  EXPECT_EQ(s->rows_ingested, 1);
  EXPECT_EQ(s->rows_priced, 1);
  // uncached 1500 + cache creation (1000 1h + 500 5m) + cache read 200.
  EXPECT_EQ(total(Metric::kInputTokens), 1500 + 1500 + 200);
  EXPECT_EQ(total(Metric::kCachedTokens), 200);
  EXPECT_EQ(total(Metric::kOutputTokens), 500);
  // Per million: uncached 1500 x 3, 5m writes 500 x 3.75, 1h writes 1000 x 6 (twice input),
  // reads 200 x 0.3, output 500 x 15 = 19,935 micro-dollars.
  EXPECT_EQ(total(Metric::kBilledCost), (__int128)19'935'000);
  EXPECT_EQ(total(Metric::kBilledCost, {{"provider", "Anthropic"}, {"model", "claude-sonnet-4-20250514"}}),
            (__int128)19'935'000);
  // Workspace as project, API key as resource, raw fields in tags.
  EXPECT_EQ(total(Metric::kBilledCost, {{"project", "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ"}}), (__int128)19'935'000);
  EXPECT_EQ(total(Metric::kBilledCost, {{"resource", "apikey_01Rj2N8SVvo6BePZj99NhmiT"}}), (__int128)19'935'000);
  EXPECT_EQ(total(Metric::kBilledCost, {{"tag:service_tier", "standard"}}), (__int128)19'935'000);
  // The web search requests are kept, without a price, and said so.
  ASSERT_FALSE(s->conformance.empty());
  EXPECT_EQ(s->conformance[0].column, "server_tool_use.web_search_requests");
}

TEST_F(AnthropicUsageTest, LongContextRowsUseTheTierAndBatchRowsTheDiscount) {
  std::string page = example();
  page.replace(page.find("0-200k"), 6, "200k-1M");
  ASSERT_TRUE(ingest(dir_.write("long.json", page), "anthropic-usage").has_value());
  // 1500 x 6 + 500 x 7.5 + 1000 x 12 + 200 x 0.6 + 500 x 22.5 = 36,120 micro-dollars.
  EXPECT_EQ(total(Metric::kBilledCost), (__int128)36'120'000);

  std::string batch = example();
  batch.replace(batch.find("\"standard\""), 10, "\"batch\"");
  ASSERT_TRUE(ingest(dir_.write("batch.json", batch), "anthropic-usage").has_value());
  EXPECT_EQ(total(Metric::kBilledCost, {{"tag:service_tier", "batch"}}), (__int128)19'935'000 / 2);
}

TEST_F(AnthropicUsageTest, MissingOrUnknownModelsAndBadCountsAreQuarantined) {
  std::string page = R"({"data":[{"starting_at":"2025-08-01T00:00:00Z","ending_at":"2025-08-02T00:00:00Z",
"results":[
{"uncached_input_tokens":10,"output_tokens":1,"model":null},
{"uncached_input_tokens":10,"output_tokens":1,"model":"claude-unknown-9"},
{"uncached_input_tokens":-4,"output_tokens":1,"model":"claude-sonnet-4-20250514"},
{"uncached_input_tokens":10,"cache_creation":{"ephemeral_5m_input_tokens":"x"},"output_tokens":1,"model":"claude-sonnet-4-20250514"},
{"uncached_input_tokens":1000000,"output_tokens":0,"model":"claude-sonnet-4-20250514"}
]}],"has_more":false})";
  auto s = ingest(dir_.write("page.json", page), "anthropic-usage");
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(s->rows_read, 5);
  EXPECT_EQ(s->rows_ingested, 1);
  EXPECT_EQ(s->rows_quarantined, 4);
  EXPECT_NE(s->quarantined_sample[0].reason.find("no model"), std::string::npos);
  EXPECT_NE(s->quarantined_sample[1].reason.find("claude-unknown-9"), std::string::npos);
  EXPECT_EQ(s->quarantined_sample[2].column, "uncached_input_tokens");
  EXPECT_EQ(s->quarantined_sample[3].column, "cache_creation.ephemeral_5m_input_tokens");
  EXPECT_EQ(s->quarantined_sample[3].line, 6);
  // A bucket sums many requests: its 1M input tokens are priced at the base tier.
  EXPECT_EQ(total(Metric::kBilledCost), (__int128)3 * kNanosPerUnit);
}

TEST_F(AnthropicUsageTest, CostReportAmountsAreCentsConvertedExactly) {
  std::string page = R"({"data":[{"starting_at":"2025-08-01T00:00:00Z","ending_at":"2025-08-02T00:00:00Z",
"results":[
{"amount":"123.45","currency":"USD","cost_type":"tokens","description":"Claude Sonnet 4 Usage - Input Tokens","model":"claude-sonnet-4-20250514","service_tier":"standard","token_type":"uncached_input_tokens","workspace_id":"wrkspc_1","context_window":"0-200k"},
{"amount":"0.5","currency":"USD","cost_type":"web_search","description":"Web Search Usage","model":null,"service_tier":null,"token_type":null,"workspace_id":"wrkspc_1","context_window":null}
]}],"has_more":false,"next_page":null})";
  std::string path = dir_.write("cost.json", page);
  auto s = ingest(path);  // auto-detected as a cost report
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(s->format, "Anthropic cost report");
  EXPECT_EQ(s->rows_ingested, 2);
  EXPECT_EQ(total(Metric::kBilledCost), (__int128)1'239'500'000);  // $1.2345 + $0.005
  EXPECT_EQ(total(Metric::kBilledCost, {{"model", "claude-sonnet-4-20250514"}}), (__int128)1'234'500'000);
  EXPECT_EQ(total(Metric::kBilledCost, {{"operation", "web_search"}}), (__int128)5'000'000);
  EXPECT_EQ(total(Metric::kBilledCost, {{"project", "wrkspc_1"}}), (__int128)1'239'500'000);
  EXPECT_EQ(total(Metric::kBilledCost, {{"charge_description", "Web Search Usage"}}), (__int128)5'000'000);
  auto again = ingest(path);
  ASSERT_TRUE(again.has_value());
  EXPECT_TRUE(again->duplicate);
}

}  // namespace
}  // namespace aifinops::ingest
