#include "optimize/commitment.h"

#include <gtest/gtest.h>

#include <random>

#include "tests/testing/ledger_builder.h"

namespace aifinops::optimize {
namespace {

/// The best level by trying every level from 0 to past the largest usage.
CommitmentSolution brute_force(const CommitmentProblem& p) {
  CommitmentSolution best;
  __int128 top = 0;
  for (__int128 u : p.usage) top = std::max(top, u);
  int64_t last = (int64_t)(top / p.unit_coverage) + 2 * p.increment + p.minimum_units + 2;
  for (int64_t n = p.minimum_units; n <= last; n += p.increment) {
    __int128 s = commitment_savings(p, n);
    if (s > best.savings) {
      best.savings = s;
      best.units = n;
    }
  }
  return best;
}

TEST(CommitmentSolverTest, OptimumIsTheQuantileOfTheSortedHistory) {
  // 10 hours of 0..9 instances at $1/instance-hour, 40% discount: break-even 60%, so a level
  // pays while at least 6 of 10 hours use it. 3 instances (used 7 hours) and 4 (used 6 hours)
  // both save $6: covered 0+1+2+3×7 = 24 for 18, or 0+1+2+3+4×6 = 30 for 24. Ties take the
  // smaller level (less lock-in); 5 saves only 0+1+2+3+4+5×5 = 35 - 30 = $5.
  CommitmentProblem p;
  for (int i = 0; i < 10; ++i) p.usage.push_back((__int128)i * kNanosPerUnit);
  p.unit_coverage = kNanosPerUnit;
  p.unit_cost = 600'000'000;
  CommitmentSolution s = optimal_commitment(p);
  EXPECT_EQ(s.units, 3);
  EXPECT_EQ(s.savings, (__int128)6 * kNanosPerUnit);
  EXPECT_EQ(s.covered, (__int128)24 * kNanosPerUnit);
  EXPECT_EQ(commitment_savings(p, 4), (__int128)6 * kNanosPerUnit);
  EXPECT_EQ(commitment_savings(p, 5), (__int128)5 * kNanosPerUnit);
}

TEST(CommitmentSolverTest, NothingWhenNoLevelPays) {
  CommitmentProblem p;
  p.usage = {0, 0, 0, (__int128)5 * kNanosPerUnit};  // busy one hour in four
  p.unit_coverage = kNanosPerUnit;
  p.unit_cost = 500'000'000;  // break-even 50%
  EXPECT_EQ(optimal_commitment(p).units, 0);
  EXPECT_EQ(optimal_commitment(p).savings, 0);
}

TEST(CommitmentSolverTest, MatchesBruteForceOnRandomHistories) {
  std::mt19937_64 rng(20251128);
  for (int round = 0; round < 400; ++round) {
    CommitmentProblem p;
    size_t hours = 1 + rng() % 300;
    // Usage in nano-dollars, from spiky to flat, sometimes whole instances, sometimes not.
    int64_t scale = 1 + (int64_t)(rng() % 50);
    for (size_t h = 0; h < hours; ++h) {
      int64_t base = (int64_t)(rng() % (uint64_t)scale);
      if (rng() % 5 == 0) base *= 3;
      __int128 u = (__int128)base * kNanosPerUnit + (round % 2 == 0 ? (__int128)(rng() % 1000) * 1'000'000 : 0);
      p.usage.push_back(u);
    }
    p.unit_coverage = (__int128)(1 + rng() % 4) * kNanosPerUnit / (1 + (round % 3));
    int64_t discount_permille = 50 + (int64_t)(rng() % 800);
    p.unit_cost = mul_div_round(p.unit_coverage, 1000 - discount_permille, 1000);
    if (round % 4 == 1) {  // PTU-like: tokens valued at a price, minimum and increment
      p.value_num = 3 + (int64_t)(rng() % 7);
      p.value_den = 2 + (int64_t)(rng() % 5);
      p.minimum_units = 1 + (int64_t)(rng() % 6);
      p.increment = 1 + (int64_t)(rng() % 5);
    }
    CommitmentSolution fast = optimal_commitment(p), slow = brute_force(p);
    ASSERT_EQ(fast.savings, slow.savings) << "round " << round << ": units " << fast.units << " vs " << slow.units;
    if (slow.savings > 0) {
      EXPECT_GT(fast.units, 0);
    }
  }
}

TEST(CommitmentSolverTest, PtuLevelsHonourMinimumAndIncrement) {
  CommitmentProblem p;
  // 100 buckets of 12 units of throughput; units cover 1 each at 0.5 per bucket;
  // the minimum is 15, so 12 units of demand cannot fill even the smallest deployment.
  p.usage.assign(100, 12);
  p.unit_coverage = 1;
  p.unit_cost = 1;
  p.value_num = 2;
  p.value_den = 1;
  p.minimum_units = 15;
  p.increment = 5;
  // At 15 units: value 2 × 12 × 100 = 2400, cost 15 × 100 = 1500: saves 900.
  CommitmentSolution s = optimal_commitment(p);
  EXPECT_EQ(s.units, 15);
  EXPECT_EQ(s.savings, 900);
  p.unit_cost = 2;  // 15 × 2 × 100 = 3000 > 2400: nothing pays
  EXPECT_EQ(optimal_commitment(p).units, 0);
}

/// A ledger with known on-demand usage of one instance type: 4 instances all day every day
/// plus 4 more on 10 of 30 days, at $10/hour, on AWS in us-east-1.
class CommitmentKindTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int day = 1; day <= 30; ++day) {
      char when[32];
      std::snprintf(when, sizeof when, "2025-09-%02dT00:00:00Z", day);
      int instances = day <= 10 ? 8 : 4;
      b_.add({{Attr::kProviderName, "Amazon Web Services"}, {Attr::kServiceCategory, "Compute"},
              {Attr::kChargeCategory, "Usage"}, {Attr::kPricingCategory, "Standard"},
              {Attr::kConsumedUnit, "Hours"}, {Attr::kSkuId, "USEAST-BoxUsage:p5.48xlarge"},
              {Attr::kRegionId, "us-east-1"}, {Attr::kGpuType, "H100 80GB"}},
             when, std::to_string(instances * 24 * 10), [&](UsageFacts& f) {
               f.consumed_quantity = Decimal::from_units(instances * 24);
             });
    }
    b_.commit();
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

  testing::LedgerBuilder b_;
  pricing::Catalog catalog_;
  analyze::BusinessInputs business_;
  RateTables rates_;
  RecommendContext context_;
};

TEST_F(CommitmentKindTest, ReservedInstancesCoverTheBaseAndThreeYearsSavesMost) {
  auto recs = recommend_commitments(context_);
  ASSERT_TRUE(recs.has_value()) << recs.error().message;
  const Recommendation* ri = nullptr;
  for (const Recommendation& r : *recs)
    if (r.id == "commitment:aws/USEAST-BoxUsage:p5.48xlarge/us-east-1/reserved_instance") ri = &r;
  ASSERT_NE(ri, nullptr);
  // 3-year at 72% (break-even 28%): 8 instances are used 10/30 = 33% of days, so 8 pay.
  // Saving: covered 8×24×10×10 + 4×24×20×10 = 19,200 + 19,200 = $38,400 of on-demand, cost
  // 8 × 240 × 0.28 × 30 = $16,128: $22,272 over the 30-day window = per month.
  EXPECT_EQ(ri->title, "Commit to 8 instance(s) of p5.48xlarge (H100 80GB) reserved instances for 3 years");
  EXPECT_EQ(ri->monthly_saving, Decimal::from_units(22272));
  EXPECT_EQ(ri->confidence, Confidence::kMedium);  // the 1-year rate is a planning default
  bool saw_one_year = false;
  for (const Evidence& e : ri->evidence)
    if (e.label == "1y optimal level") {
      // 1-year at 30% (break-even 70%): only the base 4 is used 100% of days.
      EXPECT_EQ(e.value, "4 instance(s)");
      saw_one_year = true;
    }
  EXPECT_TRUE(saw_one_year);
}

TEST_F(CommitmentKindTest, UserRatesReplaceTheShippedOnes) {
  ASSERT_TRUE(parse_rate_tables_yaml("commitments:\n"
                                     "  - {provider: aws, type: reserved_instance, term: 3y, discount: 0.5,\n"
                                     "     basis: published rate, source: contract}\n"
                                     "  - {provider: aws, type: reserved_instance, term: 1y, discount: 0.4,\n"
                                     "     basis: published rate, source: contract}\n",
                                     "mine.yaml", rates_)
                  .has_value());
  auto recs = recommend_commitments(context_);
  ASSERT_TRUE(recs.has_value());
  const Recommendation* ri = nullptr;
  for (const Recommendation& r : *recs)
    if (r.id.find("reserved_instance") != std::string::npos) ri = &r;
  ASSERT_NE(ri, nullptr);
  // 3-year at 50%: 8 used 33% < 50%, so 4: covered 4×24×30×10 = 28,800, cost 4×240×0.5×30 =
  // 14,400: saves $14,400.
  EXPECT_EQ(ri->monthly_saving, Decimal::from_units(14400));
  EXPECT_EQ(ri->confidence, Confidence::kHigh);
}

TEST(RateTablesTest, ErrorsNameFileLineAndKey) {
  RateTables t;
  auto r = parse_rate_tables_yaml("commitments:\n  - {provider: aws, type: reserved, term: 1y, discount: 0.3, source: x}\n",
                                  "rates.yaml", t);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("rates.yaml:2"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("commitments[0].type"), std::string::npos) << r.error().message;
  r = parse_rate_tables_yaml("batch_discounts:\n  - {provider: openai, discount: 1.5, source: x}\n", "rates.yaml", t);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("discount"), std::string::npos);
}

TEST(RateTablesTest, ShippedTablesHaveSourcesAndFindModelsBySpelling) {
  auto t = builtin_rate_tables();
  ASSERT_TRUE(t.has_value()) << t.error().message;
  EXPECT_FALSE(t->commitments.empty());
  for (const ModelScore& s : t->model_scores) EXPECT_NE(s.source.find("http"), std::string::npos) << s.model;
  const ModelScore* s = t->find_score("gpt-4o-2024-08-06", "mmlu");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->model, "gpt-4o");
  s = t->find_score("meta.llama3-1-70b-instruct-v1:0", "MMLU");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->model, "llama-3.1-70b-instruct");
  const ThroughputOffer* o = t->find_throughput_offer("gpt-4o-mini");
  ASSERT_NE(o, nullptr);
  EXPECT_EQ(o->model, "gpt-4o-mini");
  EXPECT_EQ(t->find_batch_discount("openai")->discount, Decimal{500'000'000});
}

}  // namespace
}  // namespace aifinops::optimize
