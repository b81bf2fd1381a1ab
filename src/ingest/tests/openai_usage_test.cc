#include "ingest/openai_usage.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "ingest/formats.h"
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

/// Nanos of tokens * price-per-million, exact for the test's prices.
__int128 cost_nanos(int64_t tokens, int64_t nano_price_per_million) {
  return (__int128)tokens * nano_price_per_million / 1'000'000;
}

class OpenAiUsageTest : public testing_support::LedgerFixture {
 protected:
  pricing::Catalog make_catalog() override {
    pricing::Catalog c;
    c.add(model_price("gpt-5", "openai", "1.25", "0.125", nullptr, "10"));
    c.add(model_price("gpt-5-mini", "openai", "0.25", "0.025", nullptr, "2"));
    pricing::ModelPrice mini = model_price("gpt-4o-mini", "openai", "0.15", "0.075", nullptr, "0.6");
    mini.batch_discount = *parse_decimal("0.5");
    c.add(mini);
    return c;
  }
};

TEST_F(OpenAiUsageTest, PricesTheRealCompletionsPageFromTheCatalogWithCachedTokensSplit) {
  std::string path = fixture("openai/real_usage_completions_group_by_model.json");
  auto s = ingest(path);  // auto-detected
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(s->format, "OpenAI Usage API");
  EXPECT_EQ(s->rows_read, 4);
  EXPECT_EQ(s->rows_ingested, 4);
  EXPECT_EQ(s->rows_priced, 4);
  // The page's numbers: (input, cached, output) per bucket result.
  struct Row { int64_t in, cached, out; bool mini; };
  const Row rows[] = {{14350791, 12464896, 96969, false},
                      {18449801, 17526528, 138957, false},
                      {1233391, 1091584, 7754, true},
                      {13718197, 12887680, 121397, false}};
  int64_t input = 0, cached = 0, output = 0;
  __int128 cost = 0;
  for (const Row& r : rows) {
    input += r.in;
    cached += r.cached;
    output += r.out;
    // nano-USD per million tokens: gpt-5 1.25 / 0.125 / 10; gpt-5-mini 0.25 / 0.025 / 2.
    cost += cost_nanos(r.in - r.cached, r.mini ? 250'000'000 : 1'250'000'000) +
            cost_nanos(r.cached, r.mini ? 25'000'000 : 125'000'000) +
            cost_nanos(r.out, r.mini ? 2'000'000'000 : 10'000'000'000);
  }
  EXPECT_EQ(input, 47752180);
  EXPECT_EQ(total(Metric::kInputTokens), input);
  EXPECT_EQ(total(Metric::kCachedTokens), cached);
  EXPECT_EQ(total(Metric::kOutputTokens), output);
  EXPECT_EQ(total(Metric::kRequests), 270 + 364 + 29 + 321);
  EXPECT_EQ(cost, (__int128)13'560'973'600);  // 13.5609736 USD, by hand
  EXPECT_EQ(total(Metric::kBilledCost), cost);
  EXPECT_EQ(total(Metric::kEffectiveCost), cost);
  EXPECT_EQ(s->billed_cost, cost);
  // Provider and model as the catalog and the other sources spell them.
  EXPECT_EQ(total(Metric::kBilledCost, {{"provider", "OpenAI"}, {"model", "gpt-5-mini"}}),
            cost_nanos(1233391 - 1091584, 250'000'000) + cost_nanos(1091584, 25'000'000) +
                cost_nanos(7754, 2'000'000'000));
  EXPECT_EQ(grouped(Metric::kRequests, {"day"}).size(), 3u);
}

TEST_F(OpenAiUsageTest, ADirectoryOfSpecPagesKeepsNonTokenUsageAndQuarantinesUnpricedTokens) {
  std::string dir = fixture("openai/usage_pages");
  auto s = ingest(dir, "openai-usage");
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(s->format, "OpenAI Usage API (10 pages)");
  // completions, embeddings and moderations have "model": null: no price, so quarantined.
  EXPECT_EQ(s->rows_read, 10);
  EXPECT_EQ(s->rows_quarantined, 3);
  EXPECT_EQ(s->rows_ingested, 7);
  EXPECT_EQ(s->rows_read, s->rows_ingested + s->rows_quarantined);
  for (const ledger::QuarantinedRow& q : s->quarantined_sample) {
    EXPECT_EQ(q.column, "model");
    EXPECT_NE(q.reason.find("no model"), std::string::npos) << q.reason;
    EXPECT_NE(q.reason.find("group_by=model"), std::string::npos);
    EXPECT_NE(q.reason.find("spec_usage_"), std::string::npos);  // names the page
    EXPECT_EQ(q.line, 9);  // the result object's line in its page
  }
  // Quantities of the other kinds, in their units; no money from this API.
  EXPECT_EQ(total(Metric::kQuantity, {{"operation", "image"}}), (__int128)2 * kNanosPerUnit);
  EXPECT_EQ(total(Metric::kQuantity, {{"operation", "vector_store"}}), (__int128)1024 * kNanosPerUnit);
  EXPECT_EQ(total(Metric::kQuantity, {{"operation", "code_interpreter"}}), (__int128)kNanosPerUnit);
  EXPECT_EQ(total(Metric::kQuantity, {{"operation", "file_search"}}), (__int128)2 * kNanosPerUnit);
  EXPECT_EQ(total(Metric::kQuantity, {{"operation", "audio"}}), (__int128)(45 + 20) * kNanosPerUnit);
  EXPECT_EQ(total(Metric::kRequests), 2 + 1 + 1 + 2 + 2);  // images, audio x2, file, web
  EXPECT_EQ(total(Metric::kBilledCost), 0);
  EXPECT_FALSE(s->conformance.empty());
}

TEST_F(OpenAiUsageTest, NewerTokenFieldsBatchFlagAndDimensions) {
  // The spec's completions result with a model, a project, a key and the batch flag.
  std::string page = read_text(fixture("openai/usage_pages/spec_usage_completions.json"));
  auto replace = [&](const std::string& from, const std::string& to) {
    size_t at = page.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    page.replace(at, from.size(), to);
  };
  replace("\"model\": null", "\"model\": \"gpt-4o-mini\"");
  replace("\"batch\": null", "\"batch\": true");
  replace("\"project_id\": null", "\"project_id\": \"proj_abc\"");
  replace("\"api_key_id\": null", "\"api_key_id\": \"key_123\"");
  auto s = ingest(dir_.write("page.json", page));
  ASSERT_TRUE(s.has_value()) << s.error().message;
  ASSERT_EQ(s->rows_ingested, 1) << (s->quarantined_sample.empty() ? "" : s->quarantined_sample[0].reason);
  // input_tokens (1000) already counts cached (400), cache writes (100) and audio/image.
  EXPECT_EQ(total(Metric::kInputTokens), 1000);
  EXPECT_EQ(total(Metric::kCachedTokens), 400);
  EXPECT_EQ(total(Metric::kOutputTokens), 500);
  EXPECT_EQ(total(Metric::kRequests), 5);
  // Uncached 500 (+100 written, at the input price) at 0.15, 400 at 0.075, 500 at 0.6; the
  // batch API halves it.
  __int128 full = cost_nanos(600, 150'000'000) + cost_nanos(400, 75'000'000) + cost_nanos(500, 600'000'000);
  EXPECT_EQ(total(Metric::kBilledCost), full / 2);
  EXPECT_EQ(total(Metric::kBilledCost, {{"project", "proj_abc"}}), full / 2);
  EXPECT_EQ(total(Metric::kBilledCost, {{"resource", "key_123"}}), full / 2);
  EXPECT_EQ(total(Metric::kBilledCost, {{"tag:batch", "true"}}), full / 2);
}

TEST_F(OpenAiUsageTest, CostPagesAreBilledCostExactly) {
  auto s = ingest(fixture("openai/spec_costs.json"));
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(s->format, "OpenAI Costs API");
  EXPECT_EQ(s->rows_ingested, 1);
  EXPECT_EQ(total(Metric::kBilledCost), (__int128)60'000'000);  // 0.06, not 0.059999...
  EXPECT_EQ(total(Metric::kEffectiveCost), (__int128)60'000'000);
  EXPECT_EQ(total(Metric::kListCost), (__int128)60'000'000);
  EXPECT_EQ(total(Metric::kBilledCost, {{"provider", "OpenAI"}}), (__int128)60'000'000);
  // No line_item in the page: still described, which marks the row as billed for reconcile.
  EXPECT_EQ(total(Metric::kBilledCost, {{"charge_description", "OpenAI API costs"}}), (__int128)60'000'000);
}

TEST_F(OpenAiUsageTest, CostLineItemsNameTheModelAndCurrencyIsUpperCased) {
  std::string page = R"({"object":"page","data":[{"object":"bucket","start_time":1730419200,
    "end_time":1730505600,"results":[
      {"object":"organization.costs.result","amount":{"value":1.2345678901,"currency":"usd"},
       "line_item":"gpt-4o-mini, input","project_id":"proj_1","quantity":null},
      {"object":"organization.costs.result","amount":{"value":"2.5","currency":"usd"},
       "line_item":"gpt-4o-mini, output","project_id":"proj_1"}]}],"has_more":false})";
  auto s = ingest(dir_.write("costs.json", page), "openai-costs");
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(s->rows_ingested, 2);
  // 1.2345678901 has ten decimals: rounded half-to-even to nanos.
  EXPECT_EQ(total(Metric::kBilledCost, {{"model", "gpt-4o-mini"}}), (__int128)3'734'567'890);
  EXPECT_EQ(total(Metric::kBilledCost, {{"billing_currency", "USD"}}), (__int128)3'734'567'890);
  EXPECT_EQ(total(Metric::kBilledCost, {{"project", "proj_1"}}), (__int128)3'734'567'890);
}

TEST_F(OpenAiUsageTest, MalformedResultsAndTornPagesAreQuarantinedWithTheReason) {
  std::string page = R"({"object":"page","data":[{"object":"bucket","start_time":1730419200,"end_time":1730505600,
"results":[
{"object":"organization.usage.completions.result","input_tokens":"abc","output_tokens":1,"model":"gpt-5"},
{"object":"organization.usage.completions.result","input_tokens":10,"output_tokens":1,"model":"no-such-model"},
{"object":"organization.usage.completions.result","input_tokens":10,"input_cached_tokens":20,"output_tokens":1,"model":"gpt-5"},
{"object":"organization.costs.result","amount":{"value":1,"currency":"usd"}},
{"object":"organization.usage.completions.result","input_tokens":10,"output_tokens":1,"model":"gpt-5"}
]}]})";
  auto s = ingest(dir_.write("page.json", page), "openai-usage");
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(s->rows_read, 5);
  EXPECT_EQ(s->rows_ingested, 1);
  EXPECT_EQ(s->rows_quarantined, 4);
  ASSERT_EQ(s->quarantined_sample.size(), 4u);
  EXPECT_EQ(s->quarantined_sample[0].line, 3);
  EXPECT_EQ(s->quarantined_sample[0].column, "input_tokens");
  EXPECT_NE(s->quarantined_sample[0].reason.find("\"abc\""), std::string::npos);
  EXPECT_NE(s->quarantined_sample[1].reason.find("not in the price catalog"), std::string::npos);
  EXPECT_NE(s->quarantined_sample[2].reason.find("exceed input_tokens"), std::string::npos);
  EXPECT_NE(s->quarantined_sample[3].reason.find("--format openai-costs"), std::string::npos);
  EXPECT_EQ(s->quarantined_sample[3].line, 6);
  EXPECT_EQ(total(Metric::kInputTokens), 10);

  // A torn page is one quarantined row; nothing of it is ingested.
  auto torn = ingest(dir_.write("torn.json", page.substr(0, page.size() / 2)), "openai-usage");
  ASSERT_TRUE(torn.has_value()) << torn.error().message;
  EXPECT_EQ(torn->rows_read, 1);
  EXPECT_EQ(torn->rows_quarantined, 1);
  EXPECT_NE(torn->quarantined_sample[0].reason.find("not an OpenAI usage or costs page"), std::string::npos);
}

TEST_F(OpenAiUsageTest, TheSamePagesTwiceAreIngestedOnce) {
  std::string dir = fixture("openai/usage_pages");
  auto first = ingest(dir, "openai-usage");
  ASSERT_TRUE(first.has_value()) << first.error().message;
  auto again = ingest(dir, "openai-usage");
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(again->duplicate_of, first->batch_id);
  EXPECT_EQ(total(Metric::kQuantity, {{"operation", "image"}}), (__int128)2 * kNanosPerUnit);
}

TEST(OpenAiDetectTest, UsageAndCostPagesAreTellApart) {
  std::string usage = read_text(std::string(AIFINOPS_SOURCE_DIR) +
                                "/tests/fixtures/openai/real_usage_completions_group_by_model.json");
  std::string costs = read_text(std::string(AIFINOPS_SOURCE_DIR) + "/tests/fixtures/openai/spec_costs.json");
  EXPECT_TRUE(looks_like_openai_usage(usage));
  EXPECT_FALSE(looks_like_openai_costs(usage));
  EXPECT_TRUE(looks_like_openai_costs(costs));
  EXPECT_FALSE(looks_like_openai_usage(costs));
  for (const std::string* head : {&usage, &costs}) {
    int takers = 0;
    for (const Format& f : formats()) takers += f.detect(*head, "x.json") ? 1 : 0;
    EXPECT_EQ(takers, 1);
  }
}

}  // namespace
}  // namespace aifinops::ingest
