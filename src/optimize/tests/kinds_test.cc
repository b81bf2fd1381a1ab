// Each recommendation kind on a ledger built so that the right answer is known.
#include <gtest/gtest.h>

#include "optimize/batch.h"
#include "optimize/cache.h"
#include "optimize/commitment.h"
#include "optimize/model_fit.h"
#include "optimize/recommend.h"
#include "optimize/waste.h"
#include "tests/testing/ledger_builder.h"

namespace aifinops::optimize {
namespace {

Decimal usd(const char* text) { return *parse_decimal(text); }

pricing::ModelPrice price(const char* model, const char* provider, const char* in, const char* out) {
  pricing::ModelPrice p;
  p.model = model;
  p.provider = provider;
  p.mode = "chat";
  p.prices.input = usd(in);
  p.prices.output = usd(out);
  return p;
}

class KindsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string day = "2025-09-15T03:00:00Z";
    using A = std::initializer_list<std::pair<Attr, std::string>>;
    auto ai = [](A extra) {
      std::vector<std::pair<Attr, std::string>> v = {{Attr::kServiceCategory, "AI and Machine Learning"},
                                                     {Attr::kChargeCategory, "Usage"}};
      v.insert(v.end(), extra.begin(), extra.end());
      return v;
    };
    auto add = [&](const std::vector<std::pair<Attr, std::string>>& attrs, const std::string& when,
                   const std::string& cost, std::function<void(UsageFacts&)> more = {}) {
      // LedgerBuilder takes an initializer list: add attributes through a record copy.
      Record r;
      for (const auto& [a, v] : attrs) r[a] = v;
      b_.add({{Attr::kProviderName, r[Attr::kProviderName]}, {Attr::kServiceCategory, r[Attr::kServiceCategory]},
              {Attr::kChargeCategory, r[Attr::kChargeCategory]}, {Attr::kModel, r[Attr::kModel]},
              {Attr::kProject, r[Attr::kProject]}, {Attr::kPurpose, r[Attr::kPurpose]},
              {Attr::kOperation, r[Attr::kOperation]}, {Attr::kResourceType, r[Attr::kResourceType]},
              {Attr::kResourceId, r[Attr::kResourceId]}, {Attr::kExtra, r[Attr::kExtra]},
              {Attr::kSkuMeter, r[Attr::kSkuMeter]}, {Attr::kRegionId, r[Attr::kRegionId]},
              {Attr::kConsumedUnit, r[Attr::kConsumedUnit]}, {Attr::kResourceName, r[Attr::kResourceName]}},
             when, cost, more);
    };
    // batch: a nightly evaluation tagged batch_processing ($300: saves $150), a chat app (no),
    // and traffic already sent as batch (no).
    add(ai({{Attr::kProviderName, "openai"}, {Attr::kModel, "gpt-4o-mini"}, {Attr::kProject, "nightly-eval"},
            {Attr::kPurpose, "batch_processing"}}),
        day, "300");
    add(ai({{Attr::kProviderName, "openai"}, {Attr::kModel, "gpt-4o-mini"}, {Attr::kProject, "chat"},
            {Attr::kPurpose, "customer_facing"}}),
        day, "900");
    add(ai({{Attr::kProviderName, "openai"}, {Attr::kModel, "gpt-4o-mini"}, {Attr::kProject, "bulk"},
            {Attr::kPurpose, "batch_processing"}, {Attr::kOperation, "batch"}}),
        day, "100");
    // cache: key vk-a has the cache on (25 hits in 100 requests of gpt-4o); vk-b does not:
    // $200 of gpt-4o on vk-b at a 25% repeat rate saves $50.
    auto gateway = [&](const char* key, bool hit, int requests, const char* cost) {
      add(ai({{Attr::kProviderName, "openai"}, {Attr::kModel, "gpt-4o"}, {Attr::kResourceType, "Virtual key"},
              {Attr::kResourceId, key},
              {Attr::kExtra, std::string("{\"upstream\":\"openai\",\"status\":\"200\",\"cache_hit\":\"") +
                                 (hit ? "true" : "false") + "\"}"}}),
          day, cost, [requests](UsageFacts& f) { f.requests = requests; });
    };
    gateway("vk-a", true, 25, "0");
    gateway("vk-a", false, 75, "75");
    gateway("vk-b", false, 100, "200");
    // model-fit: workload sentiment (required MMLU 80) on gpt-4o: 10M input, 1M output tokens.
    add(ai({{Attr::kProviderName, "openai"}, {Attr::kModel, "gpt-4o-2024-08-06"}, {Attr::kProject, "sentiment"}}),
        day, "35", [](UsageFacts& f) {
          f.input_tokens = 10'000'000;
          f.output_tokens = 1'000'000;
        });
    // PTU: Azure gpt-4o, 180M input tokens a day for 30 days at $2.50/M ($450 a day).
    for (int d = 1; d <= 30; ++d) {
      char when[32];
      std::snprintf(when, sizeof when, "2025-09-%02dT12:00:00Z", d);
      add(ai({{Attr::kProviderName, "Microsoft"}, {Attr::kModel, "gpt-4o"}, {Attr::kConsumedUnit, "Tokens"}}), when,
          "450", [](UsageFacts& f) { f.input_tokens = 180'000'000; });
    }
    // waste: inter-region transfer ($120), internet egress (not waste), a hot bucket with no
    // access ($1,000: S3 Standard-IA saves 45.6%), a hot bucket that is read, an endpoint with
    // no traffic ($500) and one with traffic.
    std::vector<std::pair<Attr, std::string>> transfer = {
        {Attr::kProviderName, "Amazon Web Services"}, {Attr::kServiceCategory, "Networking"},
        {Attr::kChargeCategory, "Usage"}, {Attr::kSkuMeter, "Inter-Region Data Transfer Out"},
        {Attr::kRegionId, "us-east-1"}};
    add(transfer, day, "120", [](UsageFacts& f) { f.consumed_quantity = Decimal::from_units(6000); });
    transfer[3].second = "Data Transfer Out to Internet";
    add(transfer, day, "80");
    auto storage = [&](const char* bucket, const char* meter, const char* cost) {
      add({{Attr::kProviderName, "Amazon Web Services"}, {Attr::kServiceCategory, "Storage"},
           {Attr::kChargeCategory, "Usage"}, {Attr::kSkuMeter, meter}, {Attr::kResourceId, bucket}},
          day, cost);
    };
    storage("training-data-archive", "S3 Standard", "1000");
    storage("feature-store", "S3 Standard", "1000");
    storage("feature-store", "Requests-Tier1", "50");
    add(ai({{Attr::kProviderName, "Amazon Web Services"}, {Attr::kResourceId, "endpoint-x"},
            {Attr::kResourceName, "sagemaker-llama-x"}, {Attr::kConsumedUnit, "Hours"}}),
        day, "500");
    add(ai({{Attr::kProviderName, "Amazon Web Services"}, {Attr::kResourceId, "endpoint-y"},
            {Attr::kResourceName, "sagemaker-llama-y"}, {Attr::kConsumedUnit, "Hours"}}),
        day, "400");
    add(ai({{Attr::kProviderName, "self-hosted"}, {Attr::kResourceId, "endpoint-y"}, {Attr::kModel, "llama"}}), day,
        "0", [](UsageFacts& f) { f.input_tokens = 1000; });
    b_.commit();

    catalog_.add(price("gpt-4o", "openai", "2.5", "10"));
    catalog_.add(price("gpt-4o-mini", "openai", "0.15", "0.6"));
    catalog_.add(price("gpt-3.5-turbo", "openai", "0.5", "1.5"));      // MMLU 70: below 80
    catalog_.add(price("claude-3-haiku-20240307", "anthropic", "0.25", "1.25"));  // 75.2
    catalog_.add(price("o1", "openai", "15", "60"));
    ASSERT_TRUE(analyze::parse_business_yaml("workloads:\n"
                                             "  - {name: sentiment, required_quality: 80}\n"
                                             "  - {name: legal, scope: {project: legal}, required_quality: 85,\n"
                                             "     benchmark: MMLU}\n",
                                             "business.yaml", business_)
                    .has_value());
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

  std::vector<Recommendation> run(RecommendFunction f) {
    auto r = f(context_);
    EXPECT_TRUE(r.has_value()) << r.error().message;
    return r ? *r : std::vector<Recommendation>{};
  }

  static const Recommendation* find(const std::vector<Recommendation>& recs, const std::string& id) {
    for (const Recommendation& r : recs)
      if (r.id == id) return &r;
    return nullptr;
  }

  testing::LedgerBuilder b_;
  pricing::Catalog catalog_;
  analyze::BusinessInputs business_;
  RateTables rates_;
  RecommendContext context_;
};

TEST_F(KindsTest, BatchFindsTaggedNonRealtimeTrafficAtHalfPrice) {
  auto recs = run(&recommend_batch);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].id, "batch:openai/gpt-4o-mini/nightly-eval/batch_processing");
  EXPECT_EQ(recs[0].monthly_saving, usd("150"));
  EXPECT_EQ(recs[0].confidence, Confidence::kHigh);
}

TEST_F(KindsTest, BatchAtHourlyGrainAlsoFindsOffHoursBulkTraffic) {
  context_.grain = ledger::Grain::kHour;
  auto recs = run(&recommend_batch);
  // Everything runs at 03:00 UTC: the chat project is off-hours bulk now too (low confidence).
  const Recommendation* chat = find(recs, "batch:openai/gpt-4o-mini/chat/customer_facing");
  ASSERT_NE(chat, nullptr);
  EXPECT_EQ(chat->monthly_saving, usd("450"));
  EXPECT_EQ(chat->confidence, Confidence::kLow);
}

TEST_F(KindsTest, CacheAppliesTheMeasuredRepeatRateToKeysWithoutTheCache) {
  auto recs = run(&recommend_cache);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].id, "cache:vk-b/gpt-4o");
  EXPECT_EQ(recs[0].monthly_saving, usd("50"));
  EXPECT_EQ(recs[0].confidence, Confidence::kLow);
}

TEST_F(KindsTest, ModelFitPicksTheCheapestModelThatMeetsTheRequiredScore) {
  auto recs = run(&recommend_model_fit);
  ASSERT_EQ(recs.size(), 1u);  // legal has no traffic
  EXPECT_EQ(recs[0].id, "model-fit:sentiment/gpt-4o-2024-08-06");
  EXPECT_EQ(recs[0].title, "Move workload sentiment from gpt-4o-2024-08-06 to gpt-4o-mini");
  // gpt-4o: 10 × 2.5 + 1 × 10 = $35; gpt-4o-mini: 10 × 0.15 + 1 × 0.6 = $2.10.
  EXPECT_EQ(recs[0].monthly_saving, usd("32.9"));
}

TEST_F(KindsTest, ModelFitRespectsTheOrganisationsOwnScores) {
  // Our own evaluation says gpt-4o-mini scores 79 on this benchmark: nothing cheaper qualifies.
  business_.model_quality["gpt-4o-mini"] = usd("79");
  EXPECT_TRUE(run(&recommend_model_fit).empty());
}

TEST_F(KindsTest, ModelFitUsesTheWorkloadsOwnBenchmark) {
  EXPECT_EQ(business_.workloads[1].benchmark, "MMLU");  // read from business.yaml
  // No shipped scores on this benchmark: no model can be shown to qualify.
  business_.workloads[0].benchmark = "GPQA";
  EXPECT_TRUE(run(&recommend_model_fit).empty());
  business_.workloads[0].benchmark = "mmlu";  // case does not matter
  EXPECT_EQ(run(&recommend_model_fit).size(), 1u);
}

TEST_F(KindsTest, PtuSizingCoversFlatTrafficWithAnnualReservation) {
  auto recs = run(&recommend_commitments);
  const Recommendation* ptu = find(recs, "commitment:ptu/gpt-4o");
  ASSERT_NE(ptu, nullptr);
  // 180M tokens a day = 125,000 per minute = 50 PTUs of 2,500. Annual: $221 per PTU-month;
  // the traffic is worth $450 a day at pay-as-you-go: 13,500 - 50 × 221 = $2,450 a month
  // (less half a nano-dollar per bucket of rounding in the daily PTU price).
  EXPECT_EQ(ptu->title, "Reserve 50 PTUs for gpt-4o (annual reservation)");
  EXPECT_EQ(ptu->monthly_saving, Decimal{2'449'999'999'500});
  EXPECT_EQ(ptu->confidence, Confidence::kMedium);
}

TEST_F(KindsTest, WasteFindsTransferStorageAndIdleEndpoints) {
  auto recs = run(&recommend_waste);
  ASSERT_EQ(recs.size(), 3u);
  const Recommendation* transfer =
      find(recs, "waste:cross-region/Amazon Web Services/us-east-1/Inter-Region Data Transfer Out/(none)");
  ASSERT_NE(transfer, nullptr);
  EXPECT_EQ(transfer->monthly_saving, usd("120"));
  const Recommendation* storage = find(recs, "waste:hot-storage/Amazon Web Services/training-data-archive");
  ASSERT_NE(storage, nullptr);
  EXPECT_EQ(storage->monthly_saving, usd("456"));
  const Recommendation* endpoint = find(recs, "waste:idle-endpoint/Amazon Web Services/endpoint-x");
  ASSERT_NE(endpoint, nullptr);
  EXPECT_EQ(endpoint->monthly_saving, usd("500"));
}

TEST_F(KindsTest, RecommendRunsTheChosenKindsLargestSavingFirst) {
  std::vector<const RecommendationKind*> kinds = {*find_recommendation_kind("batch"),
                                                  *find_recommendation_kind("waste")};
  auto recs = recommend(context_, kinds);
  ASSERT_TRUE(recs.has_value());
  ASSERT_EQ(recs->size(), 4u);
  EXPECT_EQ((*recs)[0].id, "waste:idle-endpoint/Amazon Web Services/endpoint-x");
  EXPECT_EQ((*recs)[3].id, "waste:cross-region/Amazon Web Services/us-east-1/Inter-Region Data Transfer Out/(none)");
  EXPECT_FALSE(find_recommendation_kind("nope").has_value());
  std::string json = recommendation_json((*recs)[0]);
  EXPECT_NE(json.find("\"monthly_saving\":\"500.00\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"confidence\":\"medium\""), std::string::npos) << json;
}

TEST(WasteClassifierTest, RecognisesProviderMeters) {
  EXPECT_TRUE(is_cross_region_transfer("USE1-USW2-AWS-Out-Bytes inter-region", ""));
  EXPECT_TRUE(is_cross_region_transfer("Inter Region Data Transfer Out", ""));
  EXPECT_FALSE(is_cross_region_transfer("Data Transfer Out to Internet", ""));
  EXPECT_EQ(hot_storage_tier("Microsoft", "Storage", "Hot LRS Data Stored", ""), "azure-hot");
  EXPECT_EQ(hot_storage_tier("Google Cloud", "Cloud Storage", "Standard Storage US Multi-region", ""),
            "gcs-standard");
  // S3's meter says "Standard storage" too: the provider decides the tier it moves to.
  EXPECT_EQ(hot_storage_tier("AWS", "Amazon Simple Storage Service", "Standard storage", ""), "s3-standard");
  EXPECT_EQ(hot_storage_tier("AWS", "Amazon Simple Storage Service", "S3 Standard-Infrequent Access", ""), "");
  EXPECT_EQ(hot_storage_tier("AWS", "Amazon Elastic Block Store", "gp3 storage", ""), "");
  EXPECT_TRUE(is_storage_access_charge("Requests-Tier1", ""));
}

}  // namespace
}  // namespace aifinops::optimize
