// The cache recommendation on gateway records with and without the gateway's repeat count:
// exact where it counted, the older extrapolation only where it did not.
#include "optimize/cache.h"

#include <gtest/gtest.h>

#include "optimize/recommend.h"
#include "tests/testing/ledger_builder.h"

namespace aifinops::optimize {
namespace {

Decimal usd(const char* text) { return *parse_decimal(text); }

enum class Mark { kUncounted, kFirst, kRepeat };

class CacheRecommendationTest : public ::testing::Test {
 protected:
  /// `requests` gateway records of `model` on `key`, costing `cost` together.
  void gateway(const char* key, const char* model, bool hit, Mark mark, int requests,
               const char* cost) {
    std::string extra =
        std::string("{\"upstream\":\"openai\",\"status\":\"200\",\"cache_hit\":\"") +
        (hit ? "true" : "false") + "\"";
    if (mark != Mark::kUncounted)
      extra += mark == Mark::kRepeat ? ",\"repeat\":\"true\"" : ",\"repeat\":\"false\"";
    extra += "}";
    b_.add({{Attr::kProviderName, "OpenAI"},
            {Attr::kServiceCategory, "AI and Machine Learning"},
            {Attr::kChargeCategory, "Usage"},
            {Attr::kModel, model},
            {Attr::kResourceType, "Virtual key"},
            {Attr::kResourceId, key},
            {Attr::kProject, "helpdesk"},
            {Attr::kExtra, extra}},
           "2025-09-15T03:00:00Z", cost, [requests, hit, mark](UsageFacts& f) {
             f.requests = requests;
             if (hit) f.flags |= kFlagCacheHit;
             if (mark == Mark::kRepeat) f.flags |= kFlagRepeat;
           });
  }

  std::vector<Recommendation> run() {
    b_.commit();
    RecommendContext c;
    c.ledger = &b_.ledger();
    c.catalog = &catalog_;
    c.business = &business_;
    c.as_of = *parse_timestamp("2025-10-01");
    c.window_days = 30;
    auto r = recommend_cache(c);
    EXPECT_TRUE(r.has_value()) << r.error().message;
    return r ? *r : std::vector<Recommendation>{};
  }

  static std::string evidence(const Recommendation& r, const std::string& label) {
    for (const auto& e : r.evidence)
      if (e.label == label) return e.value;
    return "(missing " + label + ")";
  }

  testing::LedgerBuilder b_;
  pricing::Catalog catalog_;
  analyze::BusinessInputs business_;
};

TEST_F(CacheRecommendationTest, CountedRepeatsWithTheCacheOffGiveTheExactRateAndSaving) {
  gateway("vk-a", "gpt-4o", false, Mark::kFirst, 60, "120");
  gateway("vk-a", "gpt-4o", false, Mark::kRepeat, 40, "30");  // shorter answers: cost, not count
  auto recs = run();
  ASSERT_EQ(recs.size(), 1u);
  const Recommendation& r = recs[0];
  EXPECT_EQ(r.id, "cache:vk-a/gpt-4o");
  EXPECT_EQ(r.monthly_saving, usd("30"));
  EXPECT_EQ(r.confidence, Confidence::kMedium);
  EXPECT_EQ(evidence(r, "repeat rate"), "40.0% (40 repeats in 100 requests in window)");
  EXPECT_EQ(evidence(r, "repeats not answered from the cache"), "40 requests costing $30.00");
  EXPECT_EQ(r.title, "Turn on the gateway's response cache for gpt-4o on key vk-a");
  for (const std::string& a : r.assumptions)
    EXPECT_EQ(a.find("no repeat count"), std::string::npos) << a;
}

TEST_F(CacheRecommendationTest, NoCountedRepeatsMeansNoRecommendationEvenWhereOtherKeysHaveHits) {
  gateway("vk-a", "gpt-4o", false, Mark::kFirst, 100, "200");
  gateway("vk-b", "gpt-4o", true, Mark::kRepeat, 50, "0");
  gateway("vk-b", "gpt-4o", false, Mark::kFirst, 50, "100");
  EXPECT_TRUE(run().empty());  // counted: no duplicates on vk-a, and vk-b's cache missed none
}

TEST_F(CacheRecommendationTest, WithTheCacheOnWhatItDidNotAnswerRemains) {
  gateway("vk-a", "gpt-4o", true, Mark::kRepeat, 30, "0");
  gateway("vk-a", "gpt-4o", false, Mark::kRepeat, 10, "25");  // e.g. temperature above 0
  gateway("vk-a", "gpt-4o", false, Mark::kFirst, 60, "150");
  auto recs = run();
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].monthly_saving, usd("25"));
  EXPECT_EQ(recs[0].confidence, Confidence::kMedium);
  EXPECT_EQ(evidence(recs[0], "repeat rate"), "40.0% (40 repeats in 100 requests in window)");
  EXPECT_EQ(evidence(recs[0], "cache hits"), "30");
  EXPECT_EQ(recs[0].title, "Answer the 10 repeated gpt-4o requests the cache missed on key vk-a");
}

TEST_F(CacheRecommendationTest, OlderRecordsOfACountedKeyTakeItsOwnRateAndSaySo) {
  gateway("vk-a", "gpt-4o", false, Mark::kFirst, 50, "75");
  gateway("vk-a", "gpt-4o", false, Mark::kRepeat, 50, "25");  // a quarter of the counted cost
  gateway("vk-a", "gpt-4o", false, Mark::kUncounted, 100, "200");
  auto recs = run();
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].monthly_saving, usd("75"));  // 25 counted + 200 × 25/100 estimated
  EXPECT_EQ(evidence(recs[0], "estimated on uncounted records"), "$50.00");
  bool said = false;
  for (const std::string& a : recs[0].assumptions)
    said |= a.find("before the gateway counted") != std::string::npos;
  EXPECT_TRUE(said);
}

TEST_F(CacheRecommendationTest, AKeyWithoutACountBorrowsTheCountedRateOfItsModelWithLowConfidence) {
  gateway("vk-a", "gpt-4o", false, Mark::kFirst, 80, "160");
  gateway("vk-a", "gpt-4o", false, Mark::kRepeat, 20, "40");
  gateway("vk-old", "gpt-4o", false, Mark::kUncounted, 10, "100");
  auto recs = run();
  ASSERT_EQ(recs.size(), 2u);
  const Recommendation& old = recs[0].id == "cache:vk-old/gpt-4o" ? recs[0] : recs[1];
  EXPECT_EQ(old.id, "cache:vk-old/gpt-4o");
  EXPECT_EQ(old.monthly_saving, usd("20"));
  EXPECT_EQ(old.confidence, Confidence::kLow);
  EXPECT_EQ(evidence(old, "measured repeat rate for gpt-4o"),
            "20.0% (20 repeats in 100 requests on 1 key(s))");
  EXPECT_NE(old.assumptions[0].find("no repeat count"), std::string::npos);
}

}  // namespace
}  // namespace aifinops::optimize
