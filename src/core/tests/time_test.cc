#include <gtest/gtest.h>

#include "core/time.h"

namespace aifinops {
namespace {

TEST(TimestampTest, ParsesRfc3339WithZoneAndOffsets) {
  TimestampStyle style;
  EXPECT_EQ(parse_timestamp("2024-10-01T00:00:00Z", &style), 1727740800);
  EXPECT_EQ(style, TimestampStyle::kRfc3339);
  EXPECT_EQ(parse_timestamp("2024-10-01T02:00:00+02:00"), 1727740800);
  EXPECT_EQ(parse_timestamp("2024-09-30T19:00:00-05:00"), 1727740800);
  EXPECT_EQ(parse_timestamp("2024-10-01T00:00:00.123Z"), 1727740800);
  EXPECT_EQ(parse_timestamp("2024-10-01T00:00Z"), 1727740800);
}

TEST(TimestampTest, ReadsZonelessAndSpaceSeparatedAsUtc) {
  TimestampStyle style;
  EXPECT_EQ(parse_timestamp("2024-10-01 00:00:00", &style), 1727740800);
  EXPECT_EQ(style, TimestampStyle::kNoZone);
  EXPECT_EQ(parse_timestamp("2024-10-01", &style), 1727740800);
  EXPECT_EQ(style, TimestampStyle::kDateOnly);
}

TEST(TimestampTest, RejectsGarbage) {
  EXPECT_FALSE(parse_timestamp(""));
  EXPECT_FALSE(parse_timestamp("yesterday"));
  EXPECT_FALSE(parse_timestamp("2024-13-01T00:00:00Z"));
  EXPECT_FALSE(parse_timestamp("2024-10-01T25:00:00Z"));
  EXPECT_FALSE(parse_timestamp("2024-10-01T00:00:00Q"));
}

TEST(TimestampTest, FloorsToDayWeekAndMonth) {
  EpochSeconds t = *parse_timestamp("2024-10-03T13:45:00Z");  // a Thursday
  EXPECT_EQ(format_timestamp(floor_day(t)), "2024-10-03T00:00:00Z");
  EXPECT_EQ(format_date(floor_week(t)), "2024-09-30");  // Monday
  EXPECT_EQ(format_month(floor_month(t)), "2024-10");
  EXPECT_EQ(format_date(next_month(*parse_timestamp("2024-12-15"))), "2025-01-01");
}

}  // namespace
}  // namespace aifinops
