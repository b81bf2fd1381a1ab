#include <gtest/gtest.h>

#include "core/money.h"

namespace aifinops {
namespace {

int64_t nanos(std::string_view s, bool round = false) {
  Decimal d;
  DecimalError e;
  EXPECT_TRUE(parse_decimal(s, d, &e, round)) << s;
  return d.nanos;
}

DecimalError error_of(std::string_view s) {
  Decimal d;
  DecimalError e = DecimalError::kEmpty;
  EXPECT_FALSE(parse_decimal(s, d, &e)) << s;
  return e;
}

TEST(DecimalTest, ParsesPlainDecimalsExactly) {
  EXPECT_EQ(nanos("0"), 0);
  EXPECT_EQ(nanos("12"), 12'000'000'000);
  EXPECT_EQ(nanos("-0.5"), -500'000'000);
  EXPECT_EQ(nanos("+3."), 3'000'000'000);
  EXPECT_EQ(nanos(".5"), 500'000'000);
  EXPECT_EQ(nanos("0.000000001"), 1);
  EXPECT_EQ(nanos("0.00000080000"), 800);  // 11 decimals, trailing zeros
  EXPECT_EQ(nanos("9223372036.854775807"), INT64_MAX);
}

TEST(DecimalTest, ParsesScientificNotationExactly) {
  EXPECT_EQ(nanos("1.5e-07"), 150);
  EXPECT_EQ(nanos("7.5E-08"), 75);
  EXPECT_EQ(nanos("2.5e3"), 2'500'000'000'000);
  EXPECT_EQ(nanos("1e-9"), 1);
}

TEST(DecimalTest, RejectsWhatIsNotADecimal) {
  EXPECT_EQ(error_of(""), DecimalError::kEmpty);
  EXPECT_EQ(error_of("1,2"), DecimalError::kSyntax);
  EXPECT_EQ(error_of("abc"), DecimalError::kSyntax);
  EXPECT_EQ(error_of("1e"), DecimalError::kSyntax);
  EXPECT_EQ(error_of("."), DecimalError::kSyntax);
  EXPECT_EQ(error_of("9223372036.854775808"), DecimalError::kOverflow);
  EXPECT_EQ(error_of("1e300"), DecimalError::kOverflow);
  EXPECT_EQ(error_of("0.0000000001"), DecimalError::kTooPrecise);
}

TEST(DecimalTest, RoundsHalfToEvenOnlyWhenAsked) {
  EXPECT_EQ(nanos("0.0000000015", true), 2);
  EXPECT_EQ(nanos("0.0000000025", true), 2);
  EXPECT_EQ(nanos("0.00000000251", true), 3);
  EXPECT_EQ(nanos("-0.0000000035", true), -4);
  EXPECT_EQ(nanos("1.23456789049", true), 1'234'567'890);
}

TEST(DecimalTest, FormatsFullPrecisionTrimmed) {
  EXPECT_EQ(format_decimal(int64_t{1'500'000'000}), "1.5");
  EXPECT_EQ(format_decimal(int64_t{1}), "0.000000001");
  EXPECT_EQ(format_decimal(int64_t{-3'000'000'000}), "-3");
  EXPECT_EQ(format_decimal(int64_t{0}), "0");
  __int128 big = (__int128)INT64_MAX * 1000;
  EXPECT_EQ(format_decimal(big), "9223372036854.775807");
}

TEST(DecimalTest, FormatsFixedPlacesRoundingHalfAwayFromZero) {
  EXPECT_EQ(format_decimal_fixed(12'345'000'000, 2), "12.35");
  EXPECT_EQ(format_decimal_fixed(-12'345'000'000, 2), "-12.35");
  EXPECT_EQ(format_decimal_fixed(4'000'000, 2), "0.00");
  EXPECT_EQ(format_decimal_fixed(-4'000'000, 2), "0.00");
  EXPECT_EQ(format_decimal_fixed(7'000'000'000, 0), "7");
}

TEST(DecimalTest, OneMillionMicroDollarsSumToExactlyOneDollar) {
  // Binary floating point gives 0.9999999999998...; fixed point gives 1.
  Decimal d = *parse_decimal("0.000001");
  __int128 sum = 0;
  for (int i = 0; i < 1'000'000; ++i) sum += d.nanos;
  EXPECT_EQ(format_decimal(sum), "1");
}

TEST(DecimalTest, MulDivRoundsHalfToEven) {
  EXPECT_EQ(mul_div_round(7, 75'000'000, 1'000'000), 525);  // 7 tokens at 0.075/M
  EXPECT_EQ(mul_div_round(1, 5, 10), 0);
  EXPECT_EQ(mul_div_round(3, 5, 10), 2);
  EXPECT_EQ(mul_div_round(-3, 5, 10), -2);
}

}  // namespace
}  // namespace aifinops
