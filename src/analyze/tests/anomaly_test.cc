#include "analyze/anomaly.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "analyze/synthetic_series.h"
#include "tests/testing/ledger_builder.h"

namespace aifinops::analyze {
namespace {

/// A clean daily series: level 100, weekdays higher than weekends, a little noise from a
/// fixed pattern (deterministic without a generator).
std::vector<double> weekly_series(int days, double level = 100.0) {
  std::vector<double> v;
  for (int t = 0; t < days; ++t) {
    const double season = (t % 7) >= 5 ? 0.7 : 1.1;
    const double wobble = 1.0 + 0.03 * std::sin(t * 2.3);  // ~3% "noise"
    v.push_back(level * season * wobble);
  }
  return v;
}

// --- the detector ---------------------------------------------------------------------

TEST(AnomalyDetectorTest, FindsASpikeAndEstimatesWhatWasExpected) {
  std::vector<double> v = weekly_series(70);
  const double usual = v[50];
  v[50] *= 1.5;
  auto found = detect_anomalies(v, DetectorOptions{});
  ASSERT_EQ(found.size(), 1u);
  const PointAnomaly& a = found[0];
  EXPECT_EQ(a.index, 50u);
  EXPECT_NEAR(a.expected, usual, 0.05 * usual);
  EXPECT_DOUBLE_EQ(a.actual, v[50]);
  EXPECT_NEAR(a.impact, 0.5 * usual, 0.05 * usual);
  EXPECT_GT(a.score, DetectorOptions{}.threshold);
  EXPECT_LT(a.lower, a.expected);
  EXPECT_GT(a.upper, a.expected);
  EXPECT_LT(a.upper, a.actual);
}

TEST(AnomalyDetectorTest, AWeekendSpikeToAWeekdayLevelIsAnAnomaly) {
  // 110 on a Saturday is an ordinary weekday value, but 57% above a usual Saturday.
  std::vector<double> v = weekly_series(70);
  ASSERT_EQ(54 % 7, 5);
  v[54] = 110;
  auto found = detect_anomalies(v, DetectorOptions{});
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].index, 54u);
}

TEST(AnomalyDetectorTest, ReportsNothingOnARegularSeriesWithTrend) {
  std::vector<double> v = weekly_series(180);
  for (size_t t = 0; t < v.size(); ++t) v[t] *= std::pow(1.004, (double)t);  // +0.4% a day
  EXPECT_TRUE(detect_anomalies(v, DetectorOptions{}).empty());
}

TEST(AnomalyDetectorTest, ALevelShiftIsReportedOnceThenBecomesTheNewNormal) {
  std::vector<double> v = weekly_series(100);
  for (size_t t = 60; t < v.size(); ++t) v[t] *= 1.8;
  auto found = detect_anomalies(v, DetectorOptions{});
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].index, 60u);

  DetectorOptions never;
  never.level_shift_after = 0;
  EXPECT_GT(detect_anomalies(v, never).size(), 5u) << "without the rule, every day after is high";
}

TEST(AnomalyDetectorTest, AOneDaySpikeDoesNotMoveTheBaseline) {
  std::vector<double> v = weekly_series(100);
  v[50] *= 4;
  v[57] *= 1.4;  // a week later, a smaller spike on the same weekday is still seen
  auto found = detect_anomalies(v, DetectorOptions{});
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[1].index, 57u);
  EXPECT_NEAR(found[1].expected, v[57] / 1.4, 0.05 * v[57]);
}

TEST(AnomalyDetectorTest, NeedsThreeWeeksOfHistoryAfterTheFirstSpend) {
  std::vector<double> v(30, 0.0);
  std::vector<double> tail = weekly_series(40);
  v.insert(v.end(), tail.begin(), tail.end());
  // A spike 3 weeks after spend starts is scored; one at 2 weeks is history.
  v[30 + 14] *= 3;
  v[30 + 25] *= 3;
  auto found = detect_anomalies(v, DetectorOptions{});
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].index, 55u);
  EXPECT_TRUE(detect_anomalies(std::vector<double>(20, 5.0), DetectorOptions{}).empty());
  EXPECT_TRUE(detect_anomalies({}, DetectorOptions{}).empty());
}

TEST(AnomalyDetectorTest, FirstIndexOnlyLimitsWhatIsReported) {
  std::vector<double> v = weekly_series(100);
  v[40] *= 2;
  v[80] *= 2;
  auto all = detect_anomalies(v, DetectorOptions{});
  auto recent = detect_anomalies(v, DetectorOptions{}, 60);
  ASSERT_EQ(all.size(), 2u);
  ASSERT_EQ(recent.size(), 1u);
  EXPECT_EQ(recent[0].index, 80u);
  EXPECT_DOUBLE_EQ(recent[0].expected, all[1].expected);
}

TEST(AnomalyDetectorTest, MinImpactAndDirectionFilterWhatIsReported) {
  std::vector<double> v = weekly_series(100, 10.0);
  v[50] *= 2;    // +10ish
  v[70] *= 0.3;  // a drop
  DetectorOptions options;
  EXPECT_EQ(detect_anomalies(v, options).size(), 1u);
  options.min_impact = 50;
  EXPECT_TRUE(detect_anomalies(v, options).empty());
  options.min_impact = 0;
  options.direction = AnomalyDirection::kDown;
  auto down = detect_anomalies(v, options);
  ASSERT_EQ(down.size(), 1u);
  EXPECT_EQ(down[0].index, 70u);
  EXPECT_LT(down[0].impact, 0);
  EXPECT_LT(down[0].score, 0);
  options.direction = AnomalyDirection::kBoth;
  EXPECT_EQ(detect_anomalies(v, options).size(), 2u);
}

TEST(AnomalyDetectorTest, AWeekdayOnlySeriesDoesNotFlagItsQuietWeekends) {
  std::vector<double> v;
  for (int t = 0; t < 120; ++t) v.push_back((t % 7) >= 5 ? 0.0 : 50.0 + (t % 3));
  EXPECT_TRUE(detect_anomalies(v, DetectorOptions{}).empty());
  v[96] = 40;  // a Saturday with spend
  auto found = detect_anomalies(v, DetectorOptions{});
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].index, 96u);
}

TEST(AnomalyDetectorTest, HourlySeriesUseADailySeason) {
  std::vector<double> v;
  for (int h = 0; h < 24 * 14; ++h)
    v.push_back(((h % 24) >= 9 && (h % 24) < 18 ? 200.0 : 20.0) + (h % 5));
  v[24 * 10 + 3] = 150;  // 3 am at a daytime level
  DetectorOptions options;
  options.season_length = 24;
  auto found = detect_anomalies(v, options);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].index, 24u * 10 + 3);
}

// --- the evaluation -------------------------------------------------------------------

TEST(AnomalyEvaluationTest, MeetsThePrecisionAndRecallTargetsOnLabelledSeries) {
  // The targets of docs/anomalies.md at a small size (bench/anomaly_eval runs 100,000).
  AnomalyEvaluationSpec spec;
  spec.series = 3000;
  spec.seed = 7;
  AnomalyEvaluation e = evaluate_anomaly_detector(spec);
  EXPECT_EQ(e.series, 3000u);
  EXPECT_EQ(e.points, 3000u * (180 - 28));
  EXPECT_GT(e.spikes, 5000u);
  EXPECT_GE(e.precision(), 0.9);
  EXPECT_GE(e.recall(0.3), 0.9);
  EXPECT_GE(e.f1(0.3), 0.9);
  // Bigger spikes are easier; small ones are mostly within the noise.
  ASSERT_EQ(e.buckets.size(), 5u);
  EXPECT_LT(e.buckets[0].recall(), e.buckets[2].recall());
  EXPECT_GE(e.buckets[4].recall(), 0.95);
}

TEST(AnomalyEvaluationTest, GeneratorLabelsSpikesAndLevelShifts) {
  SyntheticSpec spec;
  spec.spike_probability = 0.1;
  spec.level_shift_probability = 0.05;
  LabelledSeries s = generate_series(spec, 3);
  ASSERT_EQ(s.values.size(), 180u);
  ASSERT_EQ(s.shift.size(), 180u);
  int spikes = 0, shifts = 0;
  for (size_t t = 0; t < s.values.size(); ++t) {
    if (s.spike[t] > 0) {
      ++spikes;
      EXPECT_GE(t, 28u);
    }
    if (s.shift[t] != 0) ++shifts;
  }
  EXPECT_GT(spikes, 5);
  EXPECT_GT(shifts, 2);
  // Same seed, same series.
  EXPECT_EQ(generate_series(spec, 3).values, s.values);
}

// --- on the ledger --------------------------------------------------------------------

/// Team alpha uses two models every day for ten weeks; on `spike_day` model "big" costs
/// four times as much. Team beta spends steadily.
class LedgerAnomalyTest : public ::testing::Test {
 protected:
  static constexpr int kDays = 70;
  static constexpr int kSpikeDay = 60;

  void SetUp() override {
    const EpochSeconds start = *parse_timestamp("2025-06-02");  // a Monday
    for (int d = 0; d < kDays; ++d) {
      const std::string day = format_date(start + d * 86400);
      const bool weekend = d % 7 >= 5;
      const double wobble = 1.0 + 0.04 * std::sin(d * 1.7);
      auto cost = [](double v) { return std::to_string(std::round(v * 100) / 100); };
      double big = (weekend ? 30 : 60) * wobble;
      if (d == kSpikeDay) big *= 4;
      b_.add({{Attr::kTeam, "alpha"}, {Attr::kModel, "big"}, {Attr::kResourceName, "chat-prod"}},
             day, cost(big));
      b_.add({{Attr::kTeam, "alpha"}, {Attr::kModel, "small"}, {Attr::kResourceName, "chat-prod"}},
             day, cost((weekend ? 10 : 20) * wobble));
      b_.add({{Attr::kTeam, "beta"}, {Attr::kModel, "small"}, {Attr::kResourceName, "batch"}}, day,
             cost(40 * wobble));
    }
    spike_time_ = start + kSpikeDay * 86400;
  }

  AnomalyQuery by_team() {
    AnomalyQuery q;
    q.group_by.push_back(*ledger::parse_dimension("team"));
    return q;
  }

  testing::LedgerBuilder b_;
  EpochSeconds spike_time_ = 0;
};

TEST_F(LedgerAnomalyTest, FindsTheSpikeInItsSeriesAndExplainsItByTheModel) {
  ledger::Ledger& l = b_.commit();
  auto run = run_anomaly_detection(l, by_team());
  ASSERT_TRUE(run.has_value()) << run.error().message;
  EXPECT_EQ(run->series, 2u);
  ASSERT_EQ(run->anomalies.size(), 1u);
  const Anomaly& a = run->anomalies[0];
  EXPECT_EQ(a.keys, std::vector<std::string>{"alpha"});
  EXPECT_EQ(a.time, spike_time_);
  EXPECT_GT(a.point.impact, 120);
  EXPECT_LT(a.point.impact, 200);
  ASSERT_FALSE(a.explained_by.empty());
  const Contributor& c = a.explained_by[0];
  EXPECT_EQ(c.dimension, "model");
  EXPECT_EQ(c.value, "big");
  EXPECT_GT(c.share, 0.9);
  EXPECT_NEAR(c.actual - c.expected, c.impact, 1e-9);
  // Only dimensions with a choice explain: resource_name is chat-prod throughout.
  for (const Contributor& e : a.explained_by) EXPECT_NE(e.dimension, "resource_name");
}

TEST_F(LedgerAnomalyTest, RecordsTheRunAsANote) {
  ledger::Ledger& l = b_.commit();
  ASSERT_TRUE(find_anomalies(l, by_team()).has_value());
  auto notes = l.notes("anomalies_run");
  ASSERT_TRUE(notes.has_value());
  ASSERT_EQ(notes->size(), 1u);
  const ledger::Note& n = (*notes)[0];
  EXPECT_EQ(n.key, "last");
  EXPECT_NE(n.detail.find("\"found\":1"), std::string::npos) << n.detail;
  EXPECT_NE(n.detail.find("\"by\":[\"team\"]"), std::string::npos) << n.detail;
  EXPECT_NE(n.detail.find("\"keys\":{\"team\":\"alpha\"}"), std::string::npos) << n.detail;
  EXPECT_EQ(n.detail.find("explained_by"), std::string::npos) << "the note is the summary";
  // A second run replaces it.
  ASSERT_TRUE(find_anomalies(l, AnomalyQuery{}).has_value());
  notes = l.notes("anomalies_run");
  ASSERT_EQ(notes->size(), 1u);
  EXPECT_NE((*notes)[0].detail.find("\"by\":[]"), std::string::npos);
}

TEST_F(LedgerAnomalyTest, SinceLimitAndMinImpactNarrowTheReport) {
  ledger::Ledger& l = b_.commit();
  AnomalyQuery q = by_team();
  q.since = spike_time_ + 86400;
  auto run = run_anomaly_detection(l, q);
  ASSERT_TRUE(run.has_value()) << run.error().message;
  EXPECT_TRUE(run->anomalies.empty());
  EXPECT_EQ(run->points, 2u * (kDays - kSpikeDay - 1));

  q.since.reset();
  q.min_impact = 500;
  EXPECT_TRUE(find_anomalies(l, q)->empty());

  q.min_impact = 0;
  q.filters.push_back({*ledger::parse_dimension("team"), "beta"});
  EXPECT_TRUE(find_anomalies(l, q)->empty());
}

TEST_F(LedgerAnomalyTest, RecurringChargesAreLeftOutUnlessAskedFor) {
  // A monthly fee on the first of each month: a spike every month, but an expected one.
  for (const char* month : {"2025-07-01", "2025-08-01"}) {
    b_.add({{Attr::kTeam, "beta"}, {Attr::kChargeFrequency, "Recurring"}}, month, "900");
  }
  ledger::Ledger& l = b_.commit();
  AnomalyQuery q = by_team();
  auto run = find_anomalies(l, q);
  ASSERT_TRUE(run.has_value());
  for (const Anomaly& a : *run) EXPECT_EQ(a.keys[0], "alpha");
  q.include_recurring = true;
  run = find_anomalies(l, q);
  ASSERT_TRUE(run.has_value());
  bool fee = false;
  for (const Anomaly& a : *run)
    fee |= a.keys[0] == "beta" && a.time == *parse_timestamp("2025-08-01");
  EXPECT_TRUE(fee);
}

TEST_F(LedgerAnomalyTest, JsonHasTheDocumentedShape) {
  ledger::Ledger& l = b_.commit();
  AnomalyQuery q = by_team();
  auto run = run_anomaly_detection(l, q);
  ASSERT_TRUE(run.has_value());
  const std::string json = anomaly_run_json(*run, q, true);
  for (const char* field :
       {"\"metric\":\"effective_cost\"", "\"grain\":\"day\"", "\"series\":2", "\"found\":1",
        "\"anomalies\":[{\"keys\":{\"team\":\"alpha\"},\"time\":\"2025-08-01T00:00:00Z\"",
        "\"expected\":", "\"lower\":", "\"upper\":", "\"actual\":", "\"impact\":", "\"score\":",
        "\"explained_by\":[{\"dimension\":\"model\",\"value\":\"big\"", "\"share\":"}) {
    EXPECT_NE(json.find(field), std::string::npos) << field << "\n" << json;
  }
}

TEST_F(LedgerAnomalyTest, RejectsATimeDimensionAsASeriesKey) {
  ledger::Ledger& l = b_.commit();
  AnomalyQuery q;
  q.group_by.push_back(*ledger::parse_dimension("month"));
  auto run = find_anomalies(l, q);
  ASSERT_FALSE(run.has_value());
  EXPECT_NE(run.error().message.find("month"), std::string::npos);
  q.group_by.clear();
  q.grain = ledger::Grain::kMonth;
  EXPECT_FALSE(find_anomalies(l, q).has_value());
}

TEST_F(LedgerAnomalyTest, RefusesHourlyGrainOnDailyData) {
  // Every record of the fixture starts at midnight: a bill with one row per day.
  ledger::Ledger& l = b_.commit();
  AnomalyQuery q = by_team();
  q.grain = ledger::Grain::kHour;
  auto run = find_anomalies(l, q);
  ASSERT_FALSE(run.has_value());
  EXPECT_NE(run.error().message.find("--grain day"), std::string::npos) << run.error().message;
}

TEST(LedgerAnomalyHourlyTest, ScoresHourlySeriesFromTheRecords) {
  testing::LedgerBuilder b;
  const EpochSeconds start = *parse_timestamp("2025-06-02");
  for (int h = 0; h < 24 * 10; ++h) {
    const bool day = (h % 24) >= 8 && (h % 24) < 20;
    double v = (day ? 12.0 : 2.0) * (1.0 + 0.05 * std::sin(h * 0.9));
    if (h == 24 * 8 + 2) v = 15;  // 2 am
    b.add({{Attr::kTeam, "night"}, {Attr::kModel, "m"}}, format_timestamp(start + h * 3600),
          std::to_string(v));
  }
  AnomalyQuery q;
  q.grain = ledger::Grain::kHour;
  auto run = find_anomalies(b.commit(), q);
  ASSERT_TRUE(run.has_value()) << run.error().message;
  ASSERT_EQ(run->size(), 1u);
  EXPECT_EQ((*run)[0].time, start + (24 * 8 + 2) * 3600);
}

TEST(LedgerAnomalyHourlyTest, ExplainsAnHourlyAnomalyFromTheSameHourOnEarlierDays) {
  testing::LedgerBuilder b;
  const EpochSeconds start = *parse_timestamp("2025-06-02");
  for (int h = 0; h < 24 * 10; ++h) {
    const bool day = (h % 24) >= 8 && (h % 24) < 20;
    const double wobble = 1.0 + 0.05 * std::sin(h * 0.9);
    const std::string when = format_timestamp(start + h * 3600);
    b.add({{Attr::kTeam, "web"}, {Attr::kModel, "chat"}}, when,
          std::to_string((day ? 10.0 : 2.0) * wobble));
    double embed = (day ? 4.0 : 1.0) * wobble;
    if (h == 24 * 9 + 14) embed *= 6;  // 2 pm on the last day
    b.add({{Attr::kTeam, "web"}, {Attr::kModel, "embed"}}, when, std::to_string(embed));
  }
  AnomalyQuery q;
  q.grain = ledger::Grain::kHour;
  q.group_by.push_back(*ledger::parse_dimension("team"));
  auto run = run_anomaly_detection(b.commit(), q);
  ASSERT_TRUE(run.has_value()) << run.error().message;
  ASSERT_EQ(run->anomalies.size(), 1u);
  const Anomaly& a = run->anomalies[0];
  EXPECT_EQ(a.time, start + (24 * 9 + 14) * 3600);
  ASSERT_FALSE(a.explained_by.empty());
  EXPECT_EQ(a.explained_by[0].dimension, "model");
  EXPECT_EQ(a.explained_by[0].value, "embed");
  EXPECT_GT(a.explained_by[0].share, 0.9);
  EXPECT_EQ(run->queries, 2u) << "one query for the series, one for the explanation";
}

}  // namespace
}  // namespace aifinops::analyze
