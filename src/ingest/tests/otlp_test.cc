#include "ingest/otlp.h"

#include <gtest/gtest.h>

#include <filesystem>
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

class OtlpTest : public testing_support::LedgerFixture {
 protected:
  pricing::Catalog make_catalog() override {
    pricing::Catalog c;
    c.add(model_price("gpt-4o-mini", "openai", "0.15", "0.075", nullptr, "0.6"));
    c.add(model_price("text-embedding-3-small", "openai", "0.02", nullptr, nullptr, "0"));
    c.add(model_price("claude-sonnet-4-20250514", "anthropic", "3", "0.3", "3.75", "15"));
    return c;
  }
  std::string genai() { return read_text(fixture("otlp/genai_traces.json")); }

  // Hand-computed from the fixture, per million tokens:
  //   gpt-4o-mini: 1000 uncached x 0.15 + 200 cached x 0.075 + 300 out x 0.6 = 345 micro-USD
  //   text-embedding-3-small: 5000 x 0.02 = 100 micro-USD
  //   claude-sonnet-4: 1500 uncached x 3 + 1000 read x 0.3 + 500 written x 3.75 + 700 x 15
  //                    = 17,175 micro-USD
  static constexpr int64_t kOpenAiChat = 345'000, kEmbedding = 100'000, kClaude = 17'175'000;
};

TEST_F(OtlpTest, PricesGenAiSpansAndMapsResourceAttributesToDimensions) {
  auto s = ingest(fixture("otlp/genai_traces.json"));  // auto-detected
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(s->format, "OTLP/JSON traces");
  EXPECT_EQ(s->rows_read, 5);
  EXPECT_EQ(s->rows_ingested, 3);
  EXPECT_EQ(s->rows_quarantined, 2);
  EXPECT_EQ(s->rows_skipped, 2);  // the HTTP span and the agent span without usage
  EXPECT_EQ(s->rows_priced, 3);
  EXPECT_EQ(total(Metric::kInputTokens), 1200 + 5000 + 3000);
  EXPECT_EQ(total(Metric::kCachedTokens), 200 + 1000);
  EXPECT_EQ(total(Metric::kOutputTokens), 300 + 700);
  EXPECT_EQ(total(Metric::kRequests), 3);
  EXPECT_EQ(total(Metric::kBilledCost), (__int128)(kOpenAiChat + kEmbedding + kClaude));
  // Provider and model spelled as the catalog and the gateway spell them.
  EXPECT_EQ(total(Metric::kBilledCost, {{"provider", "OpenAI"}, {"model", "gpt-4o-mini"}}), (__int128)kOpenAiChat);
  EXPECT_EQ(total(Metric::kBilledCost, {{"provider", "OpenAI"}, {"operation", "embedding"}}), (__int128)kEmbedding);
  EXPECT_EQ(total(Metric::kBilledCost, {{"provider", "Anthropic"}}), (__int128)kClaude);
  // service.name -> project, deployment.environment(.name) -> environment, aliases -> dims.
  EXPECT_EQ(total(Metric::kBilledCost, {{"project", "checkout-assistant"}}), (__int128)(kOpenAiChat + kEmbedding));
  EXPECT_EQ(total(Metric::kBilledCost, {{"environment", "prod"}}), (__int128)(kOpenAiChat + kEmbedding));
  EXPECT_EQ(total(Metric::kBilledCost, {{"environment", "staging"}}), (__int128)kClaude);
  EXPECT_EQ(total(Metric::kBilledCost, {{"team", "payments"}}), (__int128)(kOpenAiChat + kEmbedding));
  EXPECT_EQ(total(Metric::kBilledCost, {{"cost_center", "cc-42"}}), (__int128)kClaude);
  EXPECT_EQ(total(Metric::kBilledCost, {{"region", "us-east-1"}}), (__int128)(kOpenAiChat + kEmbedding));
  // Spans on two days.
  EXPECT_EQ(grouped(Metric::kRequests, {"day"}).size(), 2u);
}

TEST_F(OtlpTest, MalformedUsageAndUnknownModelsAreQuarantinedWithTheSpanId) {
  auto s = ingest(fixture("otlp/genai_traces.json"), "otlp");
  ASSERT_TRUE(s.has_value()) << s.error().message;
  ASSERT_EQ(s->quarantined_sample.size(), 2u);
  const ledger::QuarantinedRow& bad = s->quarantined_sample[0];
  EXPECT_EQ(bad.column, "gen_ai.usage.input_tokens");
  EXPECT_NE(bad.reason.find("span 00F067AA0BA902B8"), std::string::npos) << bad.reason;
  EXPECT_NE(bad.reason.find("\"many\""), std::string::npos);
  EXPECT_EQ(bad.line, 107);
  EXPECT_NE(bad.raw.find("00F067AA0BA902B8"), std::string::npos);
  EXPECT_EQ(bad.raw.find("00F067AA0BA902B9"), std::string::npos);  // just that span
  EXPECT_NE(s->quarantined_sample[1].reason.find("my-finetune-xyz"), std::string::npos);
  EXPECT_NE(s->quarantined_sample[1].reason.find("span 00F067AA0BA902B9"), std::string::npos);
}

TEST_F(OtlpTest, TheOfficialExampleHasNoGenAiSpansAndIngestsNothingWithoutError) {
  auto s = ingest(fixture("otlp/otlp_proto_example_trace.json"));
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(s->rows_read, 0);
  EXPECT_EQ(s->rows_skipped, 1);
  auto scan = scan_otlp_json(read_text(fixture("otlp/otlp_proto_example_trace.json")));
  ASSERT_TRUE(scan.has_value());
  EXPECT_EQ(scan->spans, 1);
  EXPECT_EQ(scan->genai_spans, 0);
}

TEST_F(OtlpTest, JsonLinesDirectoriesAndTornDocuments) {
  // One export per line, as the collector's file exporter writes: the fixture minified.
  std::string doc = genai();
  std::string minified;
  bool in_string = false;
  for (size_t i = 0; i < doc.size(); ++i) {
    char c = doc[i];
    if (c == '"' && (i == 0 || doc[i - 1] != '\\')) in_string = !in_string;
    if (!in_string && (c == ' ' || c == '\n')) continue;
    minified.push_back(c);
  }
  std::filesystem::create_directory(dir_.file("exports"));
  dir_.write("exports/a.jsonl", minified + "\n" + minified + "\n" + minified.substr(0, minified.size() / 3) + "\n");
  auto s = ingest(dir_.file("exports"), "otlp");
  ASSERT_TRUE(s.has_value()) << s.error().message;
  // Two whole exports, and a torn third whose spans before the tear are kept.
  EXPECT_GE(s->rows_ingested, 6);
  EXPECT_EQ(s->rows_read, s->rows_ingested + s->rows_quarantined);
  bool torn = false;
  for (const ledger::QuarantinedRow& q : s->quarantined_sample) {
    EXPECT_NE(q.reason.find("a.jsonl"), std::string::npos) << q.reason;
    torn = torn || q.reason.find("not an OTLP/JSON trace export") != std::string::npos;
  }
  EXPECT_TRUE(torn);
  EXPECT_GE(total(Metric::kBilledCost), (__int128)2 * (kOpenAiChat + kEmbedding + kClaude));
}

TEST_F(OtlpTest, ReceiverBodiesAreBatchesAndARetriedBodyIsNotCountedTwice) {
  IngestOptions options;
  std::string body = genai();
  auto first = ingest_otlp_json(context(), body, "otlp:serve", options);
  ASSERT_TRUE(first.has_value()) << first.error().message;
  EXPECT_EQ(first->rows_ingested, 3);
  OtlpResponse partial = otlp_response(first);
  EXPECT_EQ(partial.status, 200);
  EXPECT_NE(partial.body.find("\"partialSuccess\":{\"rejectedSpans\":2,\"errorMessage\":"), std::string::npos)
      << partial.body;

  auto retry = ingest_otlp_json(context(), body, "otlp:serve", options);
  ASSERT_TRUE(retry.has_value()) << retry.error().message;
  EXPECT_TRUE(retry->duplicate);
  EXPECT_EQ(total(Metric::kBilledCost), (__int128)(kOpenAiChat + kEmbedding + kClaude));

  // Another body under the same name is another batch, not a conflict.
  std::string only_chat = body;
  only_chat.replace(only_chat.find("\"1200\""), 6, "\"2200\"");
  auto second = ingest_otlp_json(context(), only_chat, "otlp:serve", options);
  ASSERT_TRUE(second.has_value()) << second.error().message;
  EXPECT_FALSE(second->duplicate);
  EXPECT_EQ(total(Metric::kInputTokens), 2 * 9200 + 1000);

  // Everything accepted: "{}".
  std::string clean = R"({"resourceSpans":[{"resource":{"attributes":[]},"scopeSpans":[{"spans":[
    {"spanId":"01","startTimeUnixNano":"1735689600000000000","endTimeUnixNano":"1735689600000000000",
     "attributes":[{"key":"gen_ai.provider.name","value":{"stringValue":"openai"}},
                   {"key":"gen_ai.request.model","value":{"stringValue":"gpt-4o-mini"}},
                   {"key":"gen_ai.usage.input_tokens","value":{"intValue":"10"}}]}]}]}]})";
  auto ok = ingest_otlp_json(context(), clean, "otlp:serve", options);
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_EQ(otlp_response(ok).body, "{}");
  EXPECT_EQ(otlp_response(ok).status, 200);

  // Not an export at all: 400 with a google.rpc.Status, nothing written.
  auto bad = ingest_otlp_json(context(), "{\"hello\":1}", "otlp:serve", options);
  ASSERT_FALSE(bad.has_value());
  OtlpResponse refused = otlp_response(bad);
  EXPECT_EQ(refused.status, 400);
  EXPECT_EQ(refused.body.rfind("{\"code\":3,\"message\":", 0), 0u);
}

TEST(OtlpScanTest, CountsSpansOfGeneratedExports) {
  std::string body = R"({"resourceSpans":[{"scopeSpans":[{"spans":[)";
  for (int i = 0; i < 100; ++i) {
    if (i > 0) body += ",";
    body += R"({"spanId":"x","startTimeUnixNano":"1","attributes":[{"key":"gen_ai.system","value":{"stringValue":"openai"}},)"
            R"({"key":"gen_ai.usage.input_tokens","value":{"intValue":")" +
            std::to_string(i) + R"("}},{"key":"gen_ai.usage.output_tokens","value":{"intValue":2}}]})";
  }
  body += "]}]}]}";
  auto scan = scan_otlp_json(body);
  ASSERT_TRUE(scan.has_value());
  EXPECT_EQ(scan->genai_spans, 100);
  EXPECT_EQ(scan->input_tokens, 99 * 100 / 2);
  EXPECT_EQ(scan->output_tokens, 200);
}

}  // namespace
}  // namespace aifinops::ingest
