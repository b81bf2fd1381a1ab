#include "analyze/maturity.h"

#include <gtest/gtest.h>

#include "tests/testing/ledger_builder.h"

namespace aifinops::analyze {
namespace {

config::Policy policy(const std::string& yaml = "") {
  auto p = config::parse_policy_yaml(yaml, "policy.yaml");
  EXPECT_TRUE(p.has_value()) << p.error().message;
  return p ? *p : config::Policy{};
}

/// A backtest that reports a chosen error, so that these tests do not depend on the
/// forecaster's tuning (forecast_test.cc tests that).
Backtester backtest_with(double mape, int origins = 3) {
  return [=](std::span<const double>, EpochSeconds) {
    BacktestResult r;
    r.origins = origins;
    r.monthly_total_mape = mape;
    r.coverage = 0.8;
    return r;
  };
}

struct Scored {
  MaturityScorecard card;
  const MaturityCriterion& operator[](const std::string& id) const {
    for (const MaturityCriterion& c : card.criteria)
      if (c.id == id) return c;
    static const MaturityCriterion kNone;
    ADD_FAILURE() << "no criterion " << id;
    return kNone;
  }
};

Scored assess(ledger::Ledger& l, const config::Policy& p, const Clock& clock,
              Backtester backtest = backtest_with(0.05), const BusinessInputs* business = nullptr) {
  MaturityContext context;
  context.policy = &p;
  context.clock = &clock;
  context.backtest = std::move(backtest);
  context.business = business;
  auto card = assess_maturity(l, context);
  EXPECT_TRUE(card.has_value()) << card.error().message;
  return Scored{card ? *card : MaturityScorecard{}};
}

/// Ninety days of spend: `tagged` dollars a day with a team, `untagged` without.
void add_days(testing::LedgerBuilder& b, const std::string& tagged, const std::string& untagged) {
  EpochSeconds start = *parse_timestamp("2025-08-01");
  for (int d = 0; d < 92; ++d) {
    std::string day = format_date(start + (EpochSeconds)d * 86400);
    b.add({{Attr::kTeam, "alpha"}, {Attr::kModel, "gpt-4o"}}, day, tagged,
          [](UsageFacts& f) { f.input_tokens = 1000; });
    if (untagged != "0") b.add({{Attr::kServiceName, "S3"}}, day, untagged);
  }
}

ManualClock clock_now() { return ManualClock(SystemClock().now_ms()); }

TEST(MaturityTest, AllocationCoverageLevelsFollowTheShareOfSpendWithEveryRequiredDimension) {
  ManualClock clock = clock_now();
  config::Policy p = policy();
  {
    testing::LedgerBuilder b;
    add_days(b, "96", "4");
    Scored s = assess(b.commit(), p, clock);
    EXPECT_EQ(s["allocation_coverage"].level, MaturityLevel::kRun)
        << s["allocation_coverage"].evidence;
    EXPECT_NE(s["allocation_coverage"].evidence.find("96.0% of $9,200.00"), std::string::npos)
        << s["allocation_coverage"].evidence;
    EXPECT_EQ(s.card.from, *parse_timestamp("2025-08-01"));
    EXPECT_EQ(s.card.to, *parse_timestamp("2025-11-01"));
  }
  {
    testing::LedgerBuilder b;
    add_days(b, "85", "15");
    EXPECT_EQ(assess(b.commit(), p, clock)["allocation_coverage"].level, MaturityLevel::kWalk);
  }
  {
    testing::LedgerBuilder b;
    add_days(b, "50", "50");
    Scored s = assess(b.commit(), p, clock);
    EXPECT_EQ(s["allocation_coverage"].level, MaturityLevel::kCrawl);
    EXPECT_NE(s["allocation_coverage"].next_step.find("tags audit"), std::string::npos);
  }
}

TEST(MaturityTest, BudgetsNeedCoverageAForecastThresholdAndAlertsSentToRun) {
  ManualClock clock = clock_now();
  testing::LedgerBuilder b;
  add_days(b, "90", "10");
  ledger::Ledger& l = b.commit();
  EXPECT_EQ(assess(l, policy(), clock)["budgets"].level, MaturityLevel::kCrawl);
  config::Policy narrow = policy("budgets:\n  - {scope: {team: nobody}, amount_usd: 100}\n");
  EXPECT_EQ(assess(l, narrow, clock)["budgets"].level, MaturityLevel::kCrawl);
  config::Policy budgeted = policy(
      "budgets:\n"
      "  - {scope: {team: alpha}, amount_usd: 3000, alert_at: [\"80%\", \"forecast 100%\"]}\n"
      "  - {scope: {service: S3}, amount_usd: 500}\n");
  Scored walk = assess(l, budgeted, clock);
  EXPECT_EQ(walk["budgets"].level, MaturityLevel::kWalk);
  EXPECT_NE(walk["budgets"].evidence.find("2 budgets cover 100.0% of spend"), std::string::npos)
      << walk["budgets"].evidence;
  EXPECT_NE(walk["budgets"].next_step.find("budgets alert"), std::string::npos);
  ASSERT_TRUE(l.note("budget_alert", "team=alpha (month)|80%|2025-10", "{}").has_value());
  EXPECT_EQ(assess(l, budgeted, clock)["budgets"].level, MaturityLevel::kRun);
}

TEST(MaturityTest, AnomalyDetectionIsRunWhenItRanThisWeekAndWalkWhenLongerAgo) {
  ManualClock clock = clock_now();
  testing::LedgerBuilder b;
  add_days(b, "100", "0");
  ledger::Ledger& l = b.commit();
  config::Policy p = policy();
  EXPECT_EQ(assess(l, p, clock)["anomaly_detection"].level, MaturityLevel::kCrawl);
  ASSERT_TRUE(l.note("anomalies_run", "last", "{}").has_value());
  EXPECT_EQ(assess(l, p, clock)["anomaly_detection"].level, MaturityLevel::kRun);
  clock.advance_ms(10LL * 86'400'000 + 43'200'000);  // ten and a half days
  Scored later = assess(l, p, clock);
  EXPECT_EQ(later["anomaly_detection"].level, MaturityLevel::kWalk);
  EXPECT_NE(later["anomaly_detection"].evidence.find("10 days ago"), std::string::npos);
}

TEST(MaturityTest, ForecastAccuracyLevelsFollowTheBacktestError) {
  ManualClock clock = clock_now();
  testing::LedgerBuilder b;
  add_days(b, "100", "0");
  ledger::Ledger& l = b.commit();
  config::Policy p = policy();
  size_t history = 0;
  Backtester spy = [&](std::span<const double> days, EpochSeconds start) {
    history = days.size();
    EXPECT_EQ(start, *parse_timestamp("2025-08-01"));
    return backtest_with(0.05)(days, start);
  };
  Scored good = assess(l, p, clock, spy);
  EXPECT_EQ(history, 92u);
  EXPECT_EQ(good["forecast_accuracy"].level, MaturityLevel::kRun);
  EXPECT_NE(good["forecast_accuracy"].evidence.find("missed by 5.0%"), std::string::npos)
      << good["forecast_accuracy"].evidence;
  EXPECT_EQ(assess(l, p, clock, backtest_with(0.15))["forecast_accuracy"].level,
            MaturityLevel::kWalk);
  EXPECT_EQ(assess(l, p, clock, backtest_with(0.35))["forecast_accuracy"].level,
            MaturityLevel::kCrawl);
  Scored short_history = assess(l, p, clock, backtest_with(0, 0));
  EXPECT_EQ(short_history["forecast_accuracy"].level, MaturityLevel::kCrawl);
  EXPECT_NE(short_history["forecast_accuracy"].evidence.find("not enough history"),
            std::string::npos);
}

TEST(MaturityTest, GatewayCoverageComparesMeteredWithBilledLlmSpendPerModel) {
  ManualClock clock = clock_now();
  config::Policy p = policy();
  auto tokens = [](UsageFacts& f) { f.input_tokens = 1000; };
  {
    testing::LedgerBuilder b;
    b.add({{Attr::kModel, "gpt-4o"}, {Attr::kServiceName, "OpenAI API"}}, "2025-10-01", "100",
          tokens);
    b.add({{Attr::kModel, "gpt-4o"}, {Attr::kResourceType, "Virtual key"}}, "2025-10-01", "90",
          tokens);
    b.add({{Attr::kModel, "o3"}, {Attr::kServiceName, "OpenAI API"}}, "2025-10-01", "100", tokens);
    Scored s = assess(b.commit(), p, clock);
    // gpt-4o: 90 of its 100 metered; o3: none of 100.
    EXPECT_EQ(s["gateway_coverage"].level, MaturityLevel::kWalk) << s["gateway_coverage"].evidence;
    EXPECT_NE(s["gateway_coverage"].evidence.find("45.0% of $200.00"), std::string::npos)
        << s["gateway_coverage"].evidence;
    EXPECT_NE(s["gateway_coverage"].next_step.find("o3 ($100.00)"), std::string::npos);
  }
  {
    testing::LedgerBuilder b;  // gateway only: everything it metered is all there is
    b.add({{Attr::kModel, "gpt-4o"}, {Attr::kResourceType, "Virtual key"}}, "2025-10-01", "90",
          tokens);
    EXPECT_EQ(assess(b.commit(), p, clock)["gateway_coverage"].level, MaturityLevel::kRun);
  }
  {
    testing::LedgerBuilder b;
    b.add({{Attr::kModel, "gpt-4o"}, {Attr::kServiceName, "OpenAI API"}}, "2025-10-01", "100",
          tokens);
    EXPECT_EQ(assess(b.commit(), p, clock)["gateway_coverage"].level, MaturityLevel::kCrawl);
  }
}

TEST(MaturityTest, AutomationIsCrawlForOneManualIngest) {
  ManualClock clock = clock_now();
  testing::LedgerBuilder b;
  add_days(b, "100", "0");
  Scored s = assess(b.commit(), policy(), clock);
  EXPECT_EQ(s["automation"].level, MaturityLevel::kCrawl);
  EXPECT_NE(s["automation"].evidence.find("1 batch"), std::string::npos)
      << s["automation"].evidence;
}

TEST(MaturityTest, ValueTrackingCountsTheSpendOfProjectsWithValue) {
  ManualClock clock = clock_now();
  testing::LedgerBuilder b;
  b.add({{Attr::kProject, "chat"}}, "2025-10-01", "60");
  b.add({{Attr::kProject, "other"}}, "2025-10-01", "40");
  ledger::Ledger& l = b.commit();
  config::Policy p = policy();
  EXPECT_EQ(assess(l, p, clock)["value_tracking"].level, MaturityLevel::kCrawl);
  BusinessInputs in;
  ASSERT_TRUE(
      parse_business_yaml("projects:\n  chat: {value_usd: {2025-10: 500}}\n", "business.yaml", in)
          .has_value());
  in.files.push_back("business.yaml");
  Scored s = assess(l, p, clock, backtest_with(0.05), &in);
  EXPECT_EQ(s["value_tracking"].level, MaturityLevel::kRun);
  EXPECT_NE(s["value_tracking"].evidence.find("60.0% of spend"), std::string::npos)
      << s["value_tracking"].evidence;
}

TEST(MaturityTest, OverallIsTheLowestLevelAndJsonListsEveryCriterion) {
  ManualClock clock = clock_now();
  testing::LedgerBuilder b;
  add_days(b, "100", "0");
  Scored s = assess(b.commit(), policy(), clock);
  EXPECT_EQ(s.card.criteria.size(), 7u);
  EXPECT_EQ(s.card.overall, MaturityLevel::kCrawl);  // no budgets, no detection, one ingest
  EXPECT_EQ(s.card.max_score, 21);
  int score = 0;
  for (const MaturityCriterion& c : s.card.criteria) {
    score += (int)c.level;
    EXPECT_FALSE(c.evidence.empty()) << c.id;
    EXPECT_FALSE(c.next_step.empty()) << c.id;
  }
  EXPECT_EQ(s.card.score, score);
  std::string json = maturity_json(s.card);
  for (const char* id : {"allocation_coverage", "budgets", "anomaly_detection", "forecast_accuracy",
                         "gateway_coverage", "automation", "value_tracking"})
    EXPECT_NE(json.find(std::string("\"id\":\"") + id + "\""), std::string::npos) << id;
  EXPECT_NE(json.find("\"overall\":\"crawl\""), std::string::npos);
  EXPECT_NE(json.find("\"window\":{\"from\":\"2025-08-01\",\"to\":\"2025-11-01\"}"),
            std::string::npos)
      << json;
}

TEST(MaturityTest, AnEmptyLedgerIsCrawlEverywhereItCanTell) {
  ManualClock clock = clock_now();
  testing::LedgerBuilder b;
  Scored s = assess(b.commit(), policy(), clock);
  EXPECT_EQ(s.card.overall, MaturityLevel::kCrawl);
  EXPECT_FALSE(s.card.from.has_value());
  EXPECT_EQ(s["allocation_coverage"].level, MaturityLevel::kCrawl);
}

}  // namespace
}  // namespace aifinops::analyze
