#include <gtest/gtest.h>

#include "core/prometheus_text.h"

namespace aifinops {
namespace {

TEST(PrometheusTextTest, EscapesBackslashQuoteAndLineBreakOnly) {
  EXPECT_EQ(prometheus_label_value("team-a"), "team-a");
  EXPECT_EQ(prometheus_label_value(R"(a\b"c)"), R"(a\\b\"c)");
  EXPECT_EQ(prometheus_label_value("x\ny"), "x\\ny");
  EXPECT_EQ(prometheus_label_value("研究\t"), "研究\t");
}

}  // namespace
}  // namespace aifinops
