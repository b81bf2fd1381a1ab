// The batch kind on a ledger with gateway records (hour-level) and day-level bill rows, built
// so that the off-hours traffic, the weekend traffic and the Bedrock discount are known.
#include "optimize/batch.h"

#include <gtest/gtest.h>

#include "optimize/recommend.h"
#include "tests/testing/temp_dir.h"

namespace aifinops::optimize {
namespace {

Decimal usd(const char* text) { return *parse_decimal(text); }

class BatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = ledger::open_ledger(dir_.file("ledger.db"));
    ASSERT_TRUE(opened.has_value()) << opened.error().message;
    ledger_ = std::move(*opened);
    // The bill: day-level rows (they start at 00:00).
    begin("bill.csv", "focus");
    for (int d = 15; d <= 19; ++d)  // Monday .. Friday: a day's traffic in one row
      add({{Attr::kProviderName, "openai"},
           {Attr::kModel, "gpt-4o-mini"},
           {Attr::kProject, "daily"}},
          day(d, 0), "30");
    for (int d = 20; d <= 21; ++d)  // Saturday and Sunday only
      add({{Attr::kProviderName, "openai"},
           {Attr::kModel, "gpt-4o-mini"},
           {Attr::kProject, "weekend"}},
          day(d, 0), "20");
    // Bedrock bills under AWS; its batch inference is half price.
    add({{Attr::kProviderName, "AWS"},
         {Attr::kServiceName, "Amazon Bedrock"},
         {Attr::kModel, "claude-3-haiku"},
         {Attr::kProject, "enrich"},
         {Attr::kPurpose, "batch_processing"}},
        day(16, 0), "100");
    commit();
    // The gateway: a record per request hour.
    begin("gateway.spool", "gateway");
    for (int d = 15; d <= 19; ++d) {
      for (int h = 1; h <= 3; ++h)  // a nightly job, 01:00-04:00 UTC
        add({{Attr::kProviderName, "openai"},
             {Attr::kModel, "gpt-4o-mini"},
             {Attr::kProject, "nightly"}},
            day(d, h), "10");
      for (int h = 10; h <= 16; ++h)  // office hours
        add({{Attr::kProviderName, "openai"},
             {Attr::kModel, "gpt-4o-mini"},
             {Attr::kProject, "daytime"}},
            day(d, h), "10");
    }
    commit();
    rates_ = *builtin_rate_tables();
    context_.ledger = ledger_.get();
    context_.business = &business_;
    context_.rates = &rates_;
    context_.as_of = *parse_timestamp("2025-09-22");  // a Monday
    context_.window_days = 30;
  }

  static std::string day(int d, int hour) {
    char text[32];
    std::snprintf(text, sizeof text, "2025-09-%02dT%02d:00:00Z", d, hour);
    return text;
  }

  void begin(const std::string& path, const std::string& kind) {
    auto b = ledger_->begin_batch(ledger::BatchInfo{path, kind, {}, 0});
    ASSERT_TRUE(b.has_value()) << b.error().message;
    batch_ = *b;
    rows_ = 0;
  }

  void add(std::initializer_list<std::pair<Attr, std::string>> attributes, const std::string& when,
           const char* cost) {
    Record r;
    std::string text;
    for (const auto& [a, v] : attributes) {
      r[a] = v;
      text += std::to_string((int)a) + "=" + v + ";";
    }
    r[Attr::kChargeCategory] = "Usage";
    auto id = ledger_->intern_attributes(r.views(),
                                         ledger::Fingerprint{std::hash<std::string>()(text), 7});
    ASSERT_TRUE(id.has_value()) << id.error().message;
    UsageFacts f;
    f.charge_period_start = *parse_timestamp(when);
    f.charge_period_end = f.charge_period_start + 3600;
    f.effective_cost = f.billed_cost = usd(cost);
    ASSERT_TRUE(ledger_->append(*id, f, Lineage{batch_, ++rows_}).has_value());
  }

  void commit() {
    ledger::BatchSummary s;
    s.fingerprint_hex = "batch-" + std::to_string(batch_);
    s.rows_read = s.rows_ingested = rows_;
    ASSERT_TRUE(ledger_->commit_batch(s).has_value());
  }

  std::vector<Recommendation> run() {
    auto r = recommend_batch(context_);
    EXPECT_TRUE(r.has_value()) << r.error().message;
    return r ? *r : std::vector<Recommendation>{};
  }

  static const Recommendation* find(const std::vector<Recommendation>& recs,
                                    const std::string& project) {
    for (const Recommendation& r : recs)
      for (const auto& [name, value] : r.dimensions)
        if (name == "project" && value == project) return &r;
    return nullptr;
  }

  testing::TempDir dir_;
  std::unique_ptr<ledger::Ledger> ledger_;
  int64_t batch_ = 0, rows_ = 0;
  analyze::BusinessInputs business_;
  RateTables rates_;
  RecommendContext context_;
};

TEST_F(BatchTest, BedrockTrafficGetsBedrocksBatchDiscount) {
  const std::vector<Recommendation> recs = run();
  const Recommendation* r = find(recs, "enrich");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->monthly_saving, usd("50"));
  EXPECT_EQ(r->confidence, Confidence::kHigh);
  EXPECT_NE(r->title.find("Amazon Bedrock batch API"), std::string::npos) << r->title;
  bool source = false;
  for (const Evidence& e : r->evidence)
    source |= e.value.find("aws.amazon.com/bedrock/pricing") != std::string::npos;
  EXPECT_TRUE(source);
}

TEST_F(BatchTest, OffHoursTrafficIsFoundFromHourlyRecordsAtDayGrain) {
  ASSERT_EQ(context_.grain, ledger::Grain::kDay);
  const std::vector<Recommendation> recs = run();
  // The nightly job ($150) runs off-hours: half of it saved. Office-hours traffic is not
  // listed, nor day-level rows on weekdays (00:00 is where a day's row starts, not when it ran).
  const Recommendation* nightly = find(recs, "nightly");
  ASSERT_NE(nightly, nullptr);
  EXPECT_EQ(nightly->monthly_saving, usd("75"));
  EXPECT_EQ(nightly->confidence, Confidence::kLow);
  EXPECT_EQ(find(recs, "daytime"), nullptr);
  EXPECT_EQ(find(recs, "daily"), nullptr);
  bool share = false;
  for (const Evidence& e : nightly->evidence)
    share |= e.label == "off-hours share" && e.value.starts_with("100.0%");
  EXPECT_TRUE(share);
}

TEST_F(BatchTest, WeekendOnlyTrafficIsFoundAtDayLevel) {
  const std::vector<Recommendation> recs = run();
  const Recommendation* weekend = find(recs, "weekend");
  ASSERT_NE(weekend, nullptr);
  EXPECT_EQ(weekend->monthly_saving, usd("20"));  // $40 at half price
  EXPECT_EQ(weekend->confidence, Confidence::kLow);
}

TEST_F(BatchTest, MistralHasABatchDiscountToo) {
  const BatchDiscount* mistral = rates_.find_batch_discount(provider_key("Mistral AI"));
  ASSERT_NE(mistral, nullptr);
  EXPECT_EQ(mistral->discount, usd("0.5"));
}

}  // namespace
}  // namespace aifinops::optimize
