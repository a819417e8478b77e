// One rule for numbers in every CLI table (cli/number_format.h).
#include "cli/number_format.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace breakeven::cli {
namespace {

TEST(FormatNumber, ThreeSignificantDigitsByMagnitude) {
  EXPECT_EQ(FormatNumber(1.23456), "1.23");
  EXPECT_EQ(FormatNumber(12.3456), "12.3");
  EXPECT_EQ(FormatNumber(0.123456), "0.123");
  EXPECT_EQ(FormatNumber(0.0123456), "0.0123");
  EXPECT_EQ(FormatNumber(0.00123456), "0.00123");
  EXPECT_EQ(FormatNumber(-4.5678), "-4.57");
  EXPECT_EQ(FormatNumber(0.5), "0.500");
}

TEST(FormatNumber, NoDecimalsFromOneHundredUp) {
  EXPECT_EQ(FormatNumber(123.456), "123");
  EXPECT_EQ(FormatNumber(45678.9), "45679");
  EXPECT_EQ(FormatNumber(-250.4), "-250");
}

TEST(FormatNumber, RoundingIntoTheNextPowerOfTenKeepsThreeDigits) {
  EXPECT_EQ(FormatNumber(9.996), "10.0");
  EXPECT_EQ(FormatNumber(99.96), "100");
  EXPECT_EQ(FormatNumber(0.09996), "0.100");
}

TEST(FormatNumber, WholeNumbersAsIntegers) {
  EXPECT_EQ(FormatNumber(16.0), "16");
  EXPECT_EQ(FormatNumber(2048.0), "2048");
  EXPECT_EQ(FormatNumber(0.0), "0");
  EXPECT_EQ(FormatNumber(-0.0), "0");
  EXPECT_EQ(FormatNumber(-3.0), "-3");
  EXPECT_EQ(FormatNumber(1.2e9), "1200000000");
}

TEST(FormatNumber, TinyValuesUseAnExponent) {
  EXPECT_EQ(FormatNumber(0.0000421), "4.21e-05");
  EXPECT_EQ(FormatNumber(-0.0004), "-0.0004");
}

TEST(FormatNumber, DollarColumnsShowCents) {
  EXPECT_TRUE(IsMoneyColumn("usd_per_mtok"));
  EXPECT_TRUE(IsMoneyColumn("api_usd_per_hour"));
  EXPECT_FALSE(IsMoneyColumn("ttft_p95_ms"));
  EXPECT_EQ(FormatNumber(12.5, "usd_per_mtok"), "12.50");
  EXPECT_EQ(FormatNumber(2.0, "usd_per_hour"), "2.00");
  EXPECT_EQ(FormatNumber(1234.567, "usd_per_hour"), "1234.57");
  EXPECT_EQ(FormatNumber(0.0042, "usd_per_mtok"), "0.0042");
  EXPECT_EQ(FormatNumber(0.15, "usd_per_mtok"), "0.1500");
  EXPECT_EQ(FormatNumber(0.0, "usd_per_mtok"), "0.00");
  EXPECT_EQ(FormatNumber(0.0000123, "usd_per_mtok"), "1.23e-05");
}

TEST(FormatNumber, NotANumberAndInfinities) {
  EXPECT_EQ(FormatNumber(std::nan("")), "nan");
  EXPECT_EQ(FormatNumber(std::numeric_limits<double>::infinity()), "inf");
  EXPECT_EQ(FormatNumber(-std::numeric_limits<double>::infinity(), "usd_per_mtok"), "-inf");
}

TEST(FormatCell, EachKindOfCell) {
  v1::Cell number, integer, text, null;
  number.set_number(3.14159);
  integer.set_integer(123456789012);
  text.set_text("tiny-15m");
  EXPECT_EQ(FormatCell(number), "3.14");
  EXPECT_EQ(FormatCell(integer), "123456789012");
  EXPECT_EQ(FormatCell(integer, "usd_per_hour"), "123456789012");
  EXPECT_EQ(FormatCell(text), "tiny-15m");
  EXPECT_EQ(FormatCell(null), "-");
}

}  // namespace
}  // namespace breakeven::cli
