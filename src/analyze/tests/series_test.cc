#include "analyze/series.h"

#include <gtest/gtest.h>

#include "tests/testing/ledger_builder.h"

namespace aifinops::analyze {
namespace {

TEST(SeriesTest, LaysOutOneDenseSeriesPerGroupWithGapsAsZero) {
  testing::LedgerBuilder b;
  b.add({{Attr::kTeam, "alpha"}}, "2025-10-01T03:00:00Z", "1.50");
  b.add({{Attr::kTeam, "alpha"}}, "2025-10-01T09:00:00Z", "0.25");
  b.add({{Attr::kTeam, "alpha"}}, "2025-10-04", "2");
  b.add({{Attr::kTeam, "beta"}}, "2025-10-02", "10");
  ledger::Ledger& l = b.commit();
  SeriesSpec spec;
  spec.group_by.push_back(*ledger::parse_dimension("team"));
  auto set = load_series(l, spec);
  ASSERT_TRUE(set.has_value()) << set.error().message;
  EXPECT_EQ(set->start, *parse_timestamp("2025-10-01"));
  ASSERT_EQ(set->buckets, 4u);
  ASSERT_EQ(set->series.size(), 2u);
  EXPECT_EQ(set->series[0].keys, std::vector<std::string>{"beta"});  // larger total first
  EXPECT_EQ(set->series[1].values, (std::vector<double>{1.75, 0, 0, 2}));
  EXPECT_EQ(set->series[0].values, (std::vector<double>{0, 10, 0, 0}));

  spec.from = *parse_timestamp("2025-09-30");
  spec.to = *parse_timestamp("2025-10-03");
  set = load_series(l, spec);
  ASSERT_TRUE(set.has_value());
  ASSERT_EQ(set->buckets, 3u);
  EXPECT_EQ(set->series[1].values, (std::vector<double>{0, 1.75, 0}));
}

TEST(SeriesTest, ConvertsNanosAndCountsToDisplayUnits) {
  EXPECT_DOUBLE_EQ(metric_value_to_double(ledger::Metric::kEffectiveCost, 1'500'000'000), 1.5);
  EXPECT_DOUBLE_EQ(metric_value_to_double(ledger::Metric::kTokens, 42), 42.0);
}

}  // namespace
}  // namespace aifinops::analyze
