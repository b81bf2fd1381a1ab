// The self-hosted kind on a ledger built so that the right answer is known: two inference
// clusters (GPU instance bills, DCGM-style telemetry, vLLM token records), API traffic, and
// a catalog with the same model at an API, a cheaper better model, and a worse one.
#include "optimize/self_hosted.h"

#include <gtest/gtest.h>

#include "optimize/model_fit.h"
#include "optimize/recommend.h"
#include "tests/testing/ledger_builder.h"

namespace aifinops::optimize {
namespace {

Decimal usd(const char* text) { return *parse_decimal(text); }

pricing::ModelPrice price(const char* model, const char* provider, const char* in,
                          const char* out) {
  pricing::ModelPrice p;
  p.model = model;
  p.provider = provider;
  p.mode = "chat";
  p.prices.input = usd(in);
  p.prices.output = usd(out);
  return p;
}

constexpr int64_t kDayMs = 86'400'000;

class SelfHostedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Ten covered days, 2025-09-10 .. 2025-09-19.
    for (int d = 10; d <= 19; ++d) {
      const std::string day = "2025-09-" + std::to_string(d) + "T00:00:00Z";
      // Cluster "summarizer": two one-GPU instances at $20 a day each.
      for (const char* node : {"llama-node-1", "llama-node-2"}) {
        b_.add({{Attr::kProviderName, "AWS"},
                {Attr::kServiceCategory, "Compute"},
                {Attr::kChargeCategory, "Usage"},
                {Attr::kResourceId, std::string("arn:aws:ec2:us-east-1:1:instance/") + node},
                {Attr::kResourceName, node},
                {Attr::kProject, "summarizer"}},
               day, "20", [](UsageFacts& f) { f.gpu_milliseconds = kDayMs; });
        // Its telemetry: 25% busy all day.
        b_.add({{Attr::kResourceId, node},
                {Attr::kResourceType, "GPU"},
                {Attr::kServiceName, "GPU telemetry"}},
               day, "0", [](UsageFacts& f) {
                 f.gpu_observed_milliseconds = kDayMs;
                 f.gpu_busy_milliseconds = kDayMs / 4;
               });
      }
      // vLLM's spans: 9M input and 1M output tokens a day, at price 0 (the cost is the bill).
      b_.add({{Attr::kProviderName, "vllm"},
              {Attr::kModel, "llama-3.1-8b-instruct"},
              {Attr::kProject, "summarizer"},
              {Attr::kChargeCategory, "Usage"}},
             day, "0", [](UsageFacts& f) {
               f.input_tokens = 9'000'000;
               f.output_tokens = 1'000'000;
               f.requests = 3'000;
             });
      // Cluster "cheap": one instance at $1 a day, 20% busy, 10M input tokens a day through a
      // gateway upstream named after vLLM.
      b_.add({{Attr::kProviderName, "AWS"},
              {Attr::kServiceCategory, "Compute"},
              {Attr::kChargeCategory, "Usage"},
              {Attr::kResourceId, "cheap-node"},
              {Attr::kProject, "cheap"}},
             day, "1", [](UsageFacts& f) { f.gpu_milliseconds = kDayMs; });
      b_.add({{Attr::kResourceId, "cheap-node"}, {Attr::kResourceType, "GPU"}}, day, "0",
             [](UsageFacts& f) {
               f.gpu_observed_milliseconds = kDayMs;
               f.gpu_busy_milliseconds = kDayMs / 5;
             });
      b_.add({{Attr::kProviderName, "openai"},
              {Attr::kModel, "llama-3.1-8b-instruct"},
              {Attr::kProject, "cheap"},
              {Attr::kResourceType, "Virtual key"},
              {Attr::kExtra,
               "{\"upstream\":\"vllm-cheap\",\"status\":\"200\",\"cache_hit\":\"false\"}"}},
             day, "0", [](UsageFacts& f) { f.input_tokens = 10'000'000; });
      // API traffic: gpt-3.5-turbo (MMLU 70, below llama 3.1 8B's 73) 5M tokens for $4 a day,
      // and gpt-4o (88.7: better, so not moved) for $50 a day.
      b_.add({{Attr::kProviderName, "openai"},
              {Attr::kModel, "gpt-3.5-turbo"},
              {Attr::kProject, "chat"}},
             day, "4", [](UsageFacts& f) { f.input_tokens = 5'000'000; });
      b_.add({{Attr::kProviderName, "openai"}, {Attr::kModel, "gpt-4o"}, {Attr::kProject, "chat"}},
             day, "50", [](UsageFacts& f) { f.input_tokens = 20'000'000; });
    }
    // Outside the covered days: a bill without tokens, tokens without a bill.
    b_.add({{Attr::kProviderName, "AWS"},
            {Attr::kResourceId, "llama-node-1"},
            {Attr::kProject, "summarizer"}},
           "2025-09-09T00:00:00Z", "20", [](UsageFacts& f) { f.gpu_milliseconds = kDayMs; });
    b_.add({{Attr::kProviderName, "vllm"},
            {Attr::kModel, "llama-3.1-8b-instruct"},
            {Attr::kProject, "summarizer"}},
           "2025-09-20T00:00:00Z", "0", [](UsageFacts& f) { f.input_tokens = 50'000'000; });
    b_.commit();

    catalog_.add(
        price("meta.llama3-1-8b-instruct-v1:0", "bedrock", "0.22", "0.22"));  // the same model
    catalog_.add(price("gpt-4o-mini", "openai", "0.15", "0.6"));              // MMLU 82
    catalog_.add(price("gpt-3.5-turbo", "openai", "0.5", "1.5"));             // 70: not comparable
    catalog_.add(price("gpt-4o", "openai", "2.5", "10"));
    // The self-hosted model registered at price 0: never an offer to move to.
    catalog_.add(price("llama-3.1-8b-instruct", "self-hosted", "0", "0"));
    auto t = builtin_rate_tables();
    ASSERT_TRUE(t.has_value()) << t.error().message;
    rates_ = *t;
    context_.ledger = &b_.ledger();
    context_.catalog = &catalog_;
    context_.business = &business_;
    context_.rates = &rates_;
    context_.as_of = *parse_timestamp("2025-10-01");
    context_.window_days = 30;
  }

  std::vector<Recommendation> run() {
    auto r = recommend_self_hosted(context_);
    EXPECT_TRUE(r.has_value()) << r.error().message;
    return r ? *r : std::vector<Recommendation>{};
  }

  static const Recommendation* find(const std::vector<Recommendation>& recs,
                                    const std::string& id) {
    for (const Recommendation& r : recs)
      if (r.id == id) return &r;
    return nullptr;
  }

  static std::string evidence(const Recommendation& r, const std::string& label) {
    for (const Evidence& e : r.evidence)
      if (e.label == label) return e.value;
    return "";
  }

  testing::LedgerBuilder b_;
  pricing::Catalog catalog_;
  analyze::BusinessInputs business_;
  RateTables rates_;
  RecommendContext context_;
};

TEST(SelfHostedProviderTest, RecognisesServingEnginesAndUpstreamsNamedAfterThem) {
  EXPECT_TRUE(is_self_hosted_provider("vllm"));
  EXPECT_TRUE(is_self_hosted_provider("vLLM"));
  EXPECT_TRUE(is_self_hosted_provider("self-hosted"));
  EXPECT_TRUE(is_self_hosted_provider("vllm-llama"));
  EXPECT_TRUE(is_self_hosted_provider("ollama/llama3"));
  EXPECT_TRUE(is_self_hosted_provider("text-generation-inference"));
  EXPECT_FALSE(is_self_hosted_provider("openai"));
  EXPECT_FALSE(is_self_hosted_provider("vllmx"));
  EXPECT_FALSE(is_self_hosted_provider(""));
}

TEST_F(SelfHostedTest, ClusterCostCoversOnlyDaysWithBothBillAndTokens) {
  auto clusters = load_inference_clusters(context_);
  ASSERT_TRUE(clusters.has_value()) << clusters.error().message;
  ASSERT_EQ(clusters->size(), 2u);
  const InferenceCluster& c = (*clusters)[1];
  EXPECT_EQ(c.name, "summarizer");
  EXPECT_EQ(c.days.size(), 10u);
  EXPECT_EQ(c.days.front(), "2025-09-10");
  EXPECT_EQ(c.gpu_cost, usd("400").nanos);
  EXPECT_EQ(c.gpu_hours, 480 * kNanosPerUnit);
  EXPECT_EQ(c.input_tokens, 90'000'000);
  EXPECT_EQ(c.output_tokens, 10'000'000);
  ASSERT_TRUE(c.utilization.has_value());
  EXPECT_EQ(*c.utilization, 250'000'000);  // 25%, telemetry joined by the instances' names
  EXPECT_EQ(cost_per_million_tokens(c.gpu_cost, c.input_tokens + c.output_tokens), usd("4").nanos);
  EXPECT_EQ((*clusters)[0].name, "cheap");  // found through the gateway upstream's name
}

TEST_F(SelfHostedTest, RecommendsTheCheapestComparableApiWhenTheClusterCostsMore) {
  auto recs = run();
  const Recommendation* r = find(recs, "self-hosted:summarizer/llama-3.1-8b-instruct");
  ASSERT_NE(r, nullptr);
  // At API prices: gpt-4o-mini 90 × 0.15 + 10 × 0.6 = $19.50 (the same model at Bedrock:
  // $22; the zero-priced self-hosted entry and gpt-3.5-turbo, MMLU 70 < 73, do not count).
  // Saving: (400 - 19.50) over 10 days = $1,141.50 a month.
  EXPECT_EQ(r->monthly_saving, usd("1141.5"));
  EXPECT_EQ(r->confidence, Confidence::kMedium);
  EXPECT_NE(
      r->title.find("through gpt-4o-mini (openai): $0.195 per 1M tokens against $4.00 self-hosted"),
      std::string::npos)
      << r->title;
  EXPECT_EQ(evidence(*r, "self-hosted cost"), "$4.00 per 1M tokens");
  EXPECT_NE(
      evidence(*r, "API: meta.llama3-1-8b-instruct-v1:0 (bedrock)").find("$0.22 per 1M tokens"),
      std::string::npos);
  EXPECT_NE(evidence(*r, "API: meta.llama3-1-8b-instruct-v1:0 (bedrock)").find("the same model"),
            std::string::npos);
  EXPECT_EQ(evidence(*r, "API: gpt-3.5-turbo (openai)"), "");
  EXPECT_EQ(evidence(*r, "API: llama-3.1-8b-instruct (self-hosted)"), "");
  EXPECT_NE(evidence(*r, "mean GPU utilisation").find("25.0%"), std::string::npos);
  // $40 a day buys 40 / 0.195 = 205,128,205 tokens at gpt-4o-mini's rate for this mix.
  EXPECT_NE(evidence(*r, "break-even volume").find("205,128,205 tokens a day"), std::string::npos)
      << evidence(*r, "break-even volume");
  ASSERT_EQ(r->dimensions.size(), 1u);
  EXPECT_EQ(r->dimensions[0], (std::pair<std::string, std::string>{"project", "summarizer"}));
}

TEST_F(SelfHostedTest, FillsACheaperClusterWithApiTrafficItMatches) {
  auto recs = run();
  // cheap: $10 for 100M tokens ($0.10 per 1M) against gpt-4o-mini's $15: no move away. At 20%
  // utilisation it can serve 4× its tokens at 80%: 300M spare tokens take all of
  // gpt-3.5-turbo's 50M ($40 over 10 days = $120 a month); gpt-4o scores higher: not moved.
  EXPECT_EQ(find(recs, "self-hosted:cheap/llama-3.1-8b-instruct"), nullptr);
  const Recommendation* fill = find(recs, "self-hosted:cheap/llama-3.1-8b-instruct/fill");
  ASSERT_NE(fill, nullptr);
  EXPECT_EQ(fill->monthly_saving, usd("120"));
  EXPECT_EQ(fill->confidence, Confidence::kLow);
  EXPECT_NE(
      evidence(*fill, "traffic to move").find("gpt-3.5-turbo (openai): 50,000,000 of 50,000,000"),
      std::string::npos)
      << evidence(*fill, "traffic to move");
  EXPECT_EQ(evidence(*fill, "traffic to move").find("gpt-4o "), std::string::npos);
}

TEST_F(SelfHostedTest, TheClusterDimensionIsAChoice) {
  // Joined by workload, which no record carries: no cluster.
  context_.cluster_dimension = Attr::kWorkload;
  EXPECT_TRUE(run().empty());
}

TEST_F(SelfHostedTest, ZeroPricedSelfHostedModelsAreNoOfferForModelFit) {
  const std::vector<ScoredModel> offers = scored_api_models(context_, "MMLU");
  for (const ScoredModel& m : offers) EXPECT_NE(m.model, "llama-3.1-8b-instruct");
  bool bedrock = false;
  for (const ScoredModel& m : offers) bedrock |= m.model == "meta.llama3-1-8b-instruct-v1:0";
  EXPECT_TRUE(bedrock);
}

TEST_F(SelfHostedTest, UnitEconomicsListsEveryClusterWithItsApiPrices) {
  auto rows = unit_economics(context_);
  ASSERT_TRUE(rows.has_value()) << rows.error().message;
  ASSERT_EQ(rows->size(), 2u);
  // Listed whether or not a recommendation follows: "cheap" is cheaper than any API.
  const UnitEconomicsRow& cheap = (*rows)[0];
  EXPECT_EQ(cheap.cluster, "cheap");
  EXPECT_EQ(cheap.self_hosted_per_million, usd("0.1").nanos);
  EXPECT_EQ(cheap.cheapest_api, "gpt-4o-mini (openai)");
  EXPECT_EQ(cheap.cheapest_api_per_million, usd("0.15").nanos);  // input tokens only
  const UnitEconomicsRow& s = (*rows)[1];
  EXPECT_EQ(s.cluster, "summarizer");
  EXPECT_EQ(s.days, 10);
  EXPECT_EQ(s.self_hosted_per_million, usd("4").nanos);
  EXPECT_EQ(s.cheapest_api_per_million, usd("0.195").nanos);
  EXPECT_EQ(s.same_model_api, "meta.llama3-1-8b-instruct-v1:0 (bedrock)");
  EXPECT_EQ(s.same_model_api_per_million, usd("0.22").nanos);
  ASSERT_TRUE(s.score.has_value());
  EXPECT_EQ(*s.score, usd("73"));
  ASSERT_TRUE(s.utilization.has_value());
  EXPECT_EQ(*s.utilization, 250'000'000);
}

TEST_F(SelfHostedTest, IsAKindOfRecommend) {
  auto kind = find_recommendation_kind("self-hosted");
  ASSERT_TRUE(kind.has_value());
  auto recs = recommend(context_, {*kind});
  ASSERT_TRUE(recs.has_value());
  ASSERT_EQ(recs->size(), 2u);
  EXPECT_EQ((*recs)[0].id, "self-hosted:summarizer/llama-3.1-8b-instruct");  // largest saving first
}

}  // namespace
}  // namespace aifinops::optimize
