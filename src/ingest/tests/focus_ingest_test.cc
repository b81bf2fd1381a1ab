#include <gtest/gtest.h>
#include <zlib.h>

#include <fstream>
#include <sstream>

#include "allocate/tag_policy.h"
#include "ingest/ingest.h"
#include "ledger/ledger.h"
#include "tests/testing/temp_dir.h"

namespace aifinops::ingest {
namespace {

using ledger::Dimension;
using ledger::Metric;
using ledger::QuerySpec;

pricing::Catalog test_catalog() {
  pricing::Catalog catalog;
  pricing::ModelPrice m;
  m.model = "gpt-4o-mini";
  m.provider = "openai";
  m.effective_from = *parse_timestamp("2024-01-01");
  m.prices.input = *parse_decimal("0.15");
  m.prices.cached_input = *parse_decimal("0.075");
  m.prices.output = *parse_decimal("0.6");
  catalog.add(m);
  pricing::GpuInstancePrice g;
  g.sku = "p5.48xlarge";
  g.provider = "aws";
  g.gpu_type = "H100 80GB";
  g.gpus = 8;
  g.effective_from = *parse_timestamp("2024-01-01");
  g.on_demand = *parse_decimal("98.32");
  catalog.add(g);
  return catalog;
}

class FocusIngestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = ledger::open_ledger(dir_.file("ledger.db"));
    ASSERT_TRUE(opened.has_value()) << opened.error().message;
    ledger_ = std::move(*opened);
    std::vector<pricing::ModelPrice> models;
    std::vector<pricing::GpuInstancePrice> gpus;
    pricing::Catalog seed = test_catalog();
    for (auto* m : seed.model_prices()) models.push_back(*m);
    for (auto* g : seed.gpu_instance_prices()) gpus.push_back(*g);
    ASSERT_TRUE(ledger_->store_prices(models, gpus).has_value());
    catalog_ = *ledger_->load_catalog();
  }

  Result<IngestSummary> ingest(const std::string& path, IngestOptions options = {}) {
    IngestContext context{*ledger_, catalog_, policy_};
    return ingest_file(context, path, options);
  }

  __int128 total(Metric metric, std::vector<std::string> by = {}, std::vector<ledger::Filter> filters = {}) {
    QuerySpec spec;
    spec.metric = metric;
    for (auto& b : by) spec.group_by.push_back(*ledger::parse_dimension(b));
    spec.filters = std::move(filters);
    auto r = ledger_->query(spec);
    EXPECT_TRUE(r.has_value()) << r.error().message;
    return r->total;
  }

  testing::TempDir dir_;
  std::unique_ptr<ledger::Ledger> ledger_;
  pricing::Catalog catalog_;
  allocate::TagPolicy policy_ = allocate::TagPolicy::defaults();
};

const char* kHeader =
    "BilledCost,ChargePeriodStart,ChargePeriodEnd,EffectiveCost,ServiceName,ProviderName,Tags,"
    "x_Custom,ConsumedQuantity,ConsumedUnit,SkuId\n";

TEST_F(FocusIngestTest, ReadsAnyColumnOrderNullsTimestampsAndKeepsUnknownColumns) {
  std::string csv = std::string(kHeader) +
                    "1.50,2025-01-01T00:00:00Z,2025-01-01T01:00:00Z,1.25,Compute,AWS,"
                    "\"{\"\"Team\"\": \"\"alpha\"\", \"\"env\"\": \"\"prod\"\"}\",keep me,,,\n"
                    "NULL,2025-01-01 02:00:00,NULL,0.75,\"Storage, hot\",AWS,NULL,,,,\n"
                    "2,2025-01-01T03:00:00+01:00,,,Compute,Azure,{},,,,\n";
  auto s = ingest(dir_.write("a.csv", csv));
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(s->rows_read, 3);
  EXPECT_EQ(s->rows_ingested, 3);
  EXPECT_EQ(s->rows_quarantined, 0);
  EXPECT_EQ(format_decimal(s->billed_cost), "3.5");
  EXPECT_EQ(format_decimal(s->effective_cost), "2");
  EXPECT_EQ(format_decimal(total(Metric::kBilledCost, {"team"}, {{*ledger::parse_dimension("team"), "alpha"}})), "1.5");
  EXPECT_EQ(format_decimal(total(Metric::kEffectiveCost, {}, {{*ledger::parse_dimension("environment"), "prod"}})), "1.25");
  EXPECT_EQ(format_decimal(total(Metric::kBilledCost, {}, {{*ledger::parse_dimension("service"), "Storage, hot"}})), "0");
  // The x_ column is kept in `extra`; the literal NULLs and the zoneless time are reported.
  bool null_reported = false, zone_reported = false;
  for (const ConformanceIssue& c : s->conformance) {
    if (c.column == "BilledCost" && c.problem.find("NULL") != std::string::npos) null_reported = c.count == 1;
    if (c.column == "ChargePeriodStart" && c.problem.find("time zone") != std::string::npos) zone_reported = true;
  }
  EXPECT_TRUE(null_reported);
  EXPECT_TRUE(zone_reported);
}

TEST_F(FocusIngestTest, QuarantinesUnreadableRowsWithLineColumnAndReason) {
  std::string csv = std::string(kHeader) +
                    "1,2025-01-01T00:00:00Z,,1,A,AWS,,,,,\n"
                    "\"1,2\",2025-01-01T00:00:00Z,,1,A,AWS,,,,,\n"  // line 3: bad number
                    "1,yesterday,,1,A,AWS,,,,,\n"                   // line 4: bad date
                    "1,,,1,A,AWS,,,,,\n"                            // line 5: no start
                    ",2025-01-01T00:00:00Z,,,A,AWS,,,,,\n"          // line 6: no cost at all
                    "1,2025-01-01T00:00:00Z,,1,A\n"                 // line 7: too few fields
                    "2,2025-01-02T00:00:00Z,,2,B,AWS,,,,,\n";
  auto s = ingest(dir_.write("q.csv", csv));
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(s->rows_read, 7);
  EXPECT_EQ(s->rows_ingested, 2);
  EXPECT_EQ(s->rows_quarantined, 5);
  EXPECT_EQ(s->rows_read, s->rows_ingested + s->rows_quarantined);
  EXPECT_EQ(format_decimal(s->billed_cost), "3");
  auto rows = ledger_->quarantined_rows(s->batch_id);
  ASSERT_TRUE(rows.has_value());
  ASSERT_EQ(rows->size(), 5u);
  EXPECT_EQ((*rows)[0].line, 3);
  EXPECT_EQ((*rows)[0].column, "BilledCost");
  EXPECT_EQ((*rows)[0].reason, "column BilledCost: \"1,2\" is not a decimal number");
  EXPECT_EQ((*rows)[0].raw, "\"1,2\",2025-01-01T00:00:00Z,,1,A,AWS,,,,,");
  EXPECT_EQ((*rows)[1].line, 4);
  EXPECT_NE((*rows)[1].reason.find("ISO 8601"), std::string::npos);
  EXPECT_EQ((*rows)[2].line, 5);
  EXPECT_NE((*rows)[2].reason.find("no ChargePeriodStart"), std::string::npos);
  EXPECT_NE((*rows)[3].reason.find("no cost"), std::string::npos);
  EXPECT_EQ((*rows)[4].reason, "has 5 fields, the header has 11");
}

TEST_F(FocusIngestTest, StrictModeWritesNothingWhenARowIsQuarantined) {
  std::string csv = std::string(kHeader) + "1,2025-01-01T00:00:00Z,,1,A,AWS,,,,,\nx,2025-01-01T00:00:00Z,,1,A,AWS,,,,,\n";
  IngestOptions options;
  options.strict = true;
  auto s = ingest(dir_.write("s.csv", csv), options);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->batch_id, 0);
  EXPECT_EQ(s->rows_quarantined, 1);
  EXPECT_EQ(total(Metric::kBilledCost), 0);
}

TEST_F(FocusIngestTest, FailsWithoutTheColumnsNeededToPlaceAndCostARow) {
  auto s = ingest(dir_.write("bad.csv", "ServiceName,Foo\nA,1\n"));
  ASSERT_FALSE(s.has_value());
  EXPECT_NE(s.error().message.find("ChargePeriodStart"), std::string::npos);
  EXPECT_NE(s.error().message.find("BilledCost"), std::string::npos);
  auto batches = ledger_->batches();
  EXPECT_TRUE(batches->empty());
}

TEST_F(FocusIngestTest, SameContentTwiceIsIngestedOnceEvenGzipped) {
  std::string csv = std::string(kHeader) + "1.10,2025-01-01T00:00:00Z,,1.10,A,AWS,,,,,\n";
  std::string path = dir_.write("once.csv", csv);
  ASSERT_FALSE(ingest(path)->duplicate);
  auto again = ingest(path);
  ASSERT_TRUE(again.has_value());
  EXPECT_TRUE(again->duplicate);
  std::string gz_path = dir_.file("once.csv.gz");
  gzFile gz = gzopen(gz_path.c_str(), "wb");
  gzwrite(gz, csv.data(), (unsigned)csv.size());
  gzclose(gz);
  auto gzipped = ingest(gz_path);
  ASSERT_TRUE(gzipped.has_value()) << gzipped.error().message;
  EXPECT_TRUE(gzipped->duplicate);
  EXPECT_EQ(format_decimal(total(Metric::kBilledCost)), "1.1");
}

TEST_F(FocusIngestTest, ReadsGzipCompressedFiles) {
  std::string csv = std::string(kHeader) + "4.25,2025-03-01T00:00:00Z,,4.25,A,AWS,,,,,\n";
  std::string gz_path = dir_.file("bill.csv.gz");
  gzFile gz = gzopen(gz_path.c_str(), "wb");
  gzwrite(gz, csv.data(), (unsigned)csv.size());
  gzclose(gz);
  auto s = ingest(gz_path);
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(s->rows_ingested, 1);
  EXPECT_EQ(format_decimal(total(Metric::kEffectiveCost)), "4.25");
}

TEST_F(FocusIngestTest, ChangedFileNeedsReplaceAndReplacingDoesNotDoubleCount) {
  std::string path = dir_.write("m.csv", std::string(kHeader) + "10,2025-01-01T00:00:00Z,,10,A,AWS,,,,,\n");
  ASSERT_TRUE(ingest(path).has_value());
  dir_.write("m.csv", std::string(kHeader) + "10,2025-01-01T00:00:00Z,,10,A,AWS,,,,,\n5,2025-01-02T00:00:00Z,,5,A,AWS,,,,,\n");
  auto refused = ingest(path);
  ASSERT_FALSE(refused.has_value());
  EXPECT_NE(refused.error().message.find("--replace"), std::string::npos);
  EXPECT_EQ(format_decimal(total(Metric::kBilledCost)), "10");
  IngestOptions options;
  options.replace = true;
  auto replaced = ingest(path, options);
  ASSERT_TRUE(replaced.has_value()) << replaced.error().message;
  EXPECT_EQ(replaced->replaced.size(), 1u);
  EXPECT_EQ(format_decimal(total(Metric::kBilledCost)), "15");
  EXPECT_EQ(format_decimal(total(Metric::kBilledCost, {"day"})), "15");
  EXPECT_EQ(format_decimal(total(Metric::kBilledCost, {"month"})), "15");
}

TEST_F(FocusIngestTest, DerivesTokensModelAndGpuHoursFromTheMeter) {
  std::string csv = std::string(kHeader) +
                    "0.15,2025-01-01T00:00:00Z,,0.15,OpenAI API,OpenAI,,,1000000,Tokens,gpt-4o-mini-2024-07-18-input-tokens\n"
                    "0.6,2025-01-01T00:00:00Z,,0.6,OpenAI API,OpenAI,,,1000000,Tokens,gpt-4o-mini-2024-07-18-output-tokens\n"
                    "196.64,2025-01-01T00:00:00Z,,196.64,EC2,AWS,,,2,Hours,USE1-BoxUsage:p5.48xlarge\n";
  auto s = ingest(dir_.write("ai.csv", csv));
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(total(Metric::kTokens), 2'000'000);
  EXPECT_EQ(total(Metric::kInputTokens), 1'000'000);
  EXPECT_EQ(total(Metric::kOutputTokens, {"model"}, {{*ledger::parse_dimension("model"), "gpt-4o-mini-2024-07-18"}}), 1'000'000);
  EXPECT_EQ(format_decimal(total(Metric::kGpuHours)), "16");  // 2 hours x 8 GPUs
}

TEST_F(FocusIngestTest, PricesUsageWithoutCostFromTheCatalogAndRemembersTheVersion) {
  std::string csv = std::string(kHeader) +
                    ",2025-01-01T00:00:00Z,,,OpenAI API,OpenAI,,,2000000,Tokens,gpt-4o-mini-input-tokens\n";
  auto s = ingest(dir_.write("p.csv", csv));
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(s->rows_priced, 1);
  EXPECT_EQ(s->rows_quarantined, 0);
  EXPECT_EQ(format_decimal(total(Metric::kEffectiveCost)), "0.3");
}

TEST_F(FocusIngestTest, RollupSumsPastInt64StayExact) {
  // Two records of the largest value a record holds: their day and month sums need more
  // than 64 bits of nano-units (a month of 10 billion tokens of one model does too).
  std::string csv = "ChargePeriodStart,BilledCost,ConsumedQuantity\n"
                    "2025-01-01T00:00:00Z,9223372036.854775807,9000000000\n"
                    "2025-01-01T01:00:00Z,9223372036.854775807,9000000000\n"
                    "2025-01-02T01:00:00Z,1,9000000000\n";
  auto s = ingest(dir_.write("big.csv", csv));
  ASSERT_TRUE(s.has_value()) << s.error().message;
  const __int128 two_max = (__int128)INT64_MAX * 2;
  EXPECT_EQ(total(Metric::kBilledCost), two_max + 1'000'000'000);  // month rollup
  EXPECT_EQ(total(Metric::kQuantity), (__int128)27'000'000'000 * 1'000'000'000);
  EXPECT_EQ(total(Metric::kBilledCost, {"day"}), two_max + 1'000'000'000);  // day rollup
}

TEST_F(FocusIngestTest, MillionRowsOfAMillionthSumExactly) {
  std::string path = dir_.file("micro.csv");
  {
    std::ofstream out(path);
    out << "ChargePeriodStart,BilledCost,EffectiveCost\n";
    for (int i = 0; i < 1'000'000; ++i) out << "2025-01-01T00:00:00Z,0.000001,0.000001\n";
  }
  auto s = ingest(path);
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(s->rows_ingested, 1'000'000);
  EXPECT_EQ(format_decimal(s->billed_cost), "1");
  EXPECT_EQ(format_decimal(total(Metric::kBilledCost)), "1");
  EXPECT_EQ(format_decimal(total(Metric::kEffectiveCost, {"day"})), "1");
}

}  // namespace
}  // namespace aifinops::ingest
