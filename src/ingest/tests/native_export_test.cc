#include "ingest/native_export.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include "allocate/tag_policy.h"
#include "ingest/csv_reader.h"
#include "ingest/file_input.h"
#include "ingest/native_mappings.h"
#include "ledger/ledger.h"
#include "tests/testing/temp_dir.h"

namespace aifinops::ingest {
namespace {

using ledger::Metric;

std::string fixture(const std::string& name) {
  return std::string(AIFINOPS_SOURCE_DIR) + "/tests/fixtures/native/" + name;
}

Decimal dec(const char* text) { return *parse_decimal(text); }

/// The sum of one column of a CSV file, read on its own (not through the mappers), each
/// value rounded to 9 decimals as the ledger keeps it.
__int128 sum_column(const std::string& path, const std::string& column) {
  auto opened = FileInput::open(path);
  EXPECT_TRUE(opened.has_value());
  CsvReader reader{std::unique_ptr<FileInput>(*opened)};
  CsvRecord record;
  EXPECT_TRUE(*reader.next(record));
  int index = -1;
  for (size_t i = 0; i < record.fields.size(); ++i)
    if (record.fields[i] == column) index = (int)i;
  EXPECT_GE(index, 0) << column;
  __int128 sum = 0;
  while (*reader.next(record)) {
    std::string_view v = record.fields[(size_t)index];
    Decimal d;
    if (v.empty()) continue;
    EXPECT_TRUE(parse_decimal(v, d, nullptr, /*round=*/true)) << v;
    sum += d.nanos;
  }
  return sum;
}

std::vector<std::string_view> header_of(const std::string& path, std::vector<std::string>& storage) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  if (line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);
  storage.clear();
  for (auto& row : split_csv_text(line))
    for (auto& cell : row) storage.push_back(cell);
  return std::vector<std::string_view>(storage.begin(), storage.end());
}

class NativeExportTest : public ::testing::Test {
  public:
  void SetUp() override {
    auto opened = ledger::open_ledger(dir_.file("ledger.db"));
    ASSERT_TRUE(opened.has_value()) << opened.error().message;
    ledger_ = std::move(*opened);
    pricing::GpuInstancePrice g;
    g.sku = "p4d.24xlarge";
    g.provider = "aws";
    g.gpu_type = "A100 40GB";
    g.gpus = 8;
    g.effective_from = *parse_timestamp("2020-01-01");
    g.on_demand = dec("32.773");
    std::vector<pricing::ModelPrice> models;
    std::vector<pricing::GpuInstancePrice> gpus{g};
    ASSERT_TRUE(ledger_->store_prices(models, gpus).has_value());
    catalog_ = *ledger_->load_catalog();
  }

  Result<IngestSummary> ingest(const std::string& name, NativeFormat format) {
    IngestContext context{*ledger_, catalog_, policy_};
    IngestOptions options;
    return ingest_native(context, fixture(name), options, format);
  }

  __int128 total(Metric metric, std::vector<std::pair<std::string, std::string>> filters = {}) {
    ledger::QuerySpec spec;
    spec.metric = metric;
    for (auto& [dimension, value] : filters)
      spec.filters.push_back(ledger::Filter{*ledger::parse_dimension(dimension), value});
    auto r = ledger_->query(spec);
    EXPECT_TRUE(r.has_value()) << r.error().message;
    return r.has_value() ? r->total : -1;
  }

  /// "key1|key2" → summed metric, for a grouped query.
  std::map<std::string, __int128> grouped(Metric metric, std::vector<std::string> by) {
    ledger::QuerySpec spec;
    spec.metric = metric;
    for (auto& b : by) spec.group_by.push_back(*ledger::parse_dimension(b));
    auto r = ledger_->query(spec);
    EXPECT_TRUE(r.has_value()) << r.error().message;
    std::map<std::string, __int128> out;
    if (!r) return out;
    for (const ledger::QueryRow& row : r->rows) {
      std::string key;
      for (const std::string& k : row.keys) key += (key.empty() ? "" : "|") + k;
      out[key] = row.value;
    }
    return out;
  }

  aifinops::testing::TempDir dir_;
  std::unique_ptr<ledger::Ledger> ledger_;
  pricing::Catalog catalog_;
  allocate::TagPolicy policy_ = allocate::TagPolicy::defaults();
};

// ---------------------------------------------------------------- mapping tables

TEST(FocusMappingsTest, BuiltInTablesMapServicesRegionsAndUnits) {
  auto m = FocusMappings::builtin();
  ASSERT_TRUE(m.has_value()) << m.error().message;
  EXPECT_EQ(m->aws_category("AmazonBedrock"), "AI and Machine Learning");
  EXPECT_EQ(m->aws_category("AmazonS3"), "Storage");
  EXPECT_EQ(m->aws_category("AWS App2Container Extra"), "Compute");  // "AWS App2Container*"
  EXPECT_EQ(m->aws_category("NoSuchProduct"), "Other");
  EXPECT_EQ(m->gcp_category("Vertex AI"), "AI and Machine Learning");
  EXPECT_EQ(m->oci_category("GENERATIVE_AI"), "AI and Machine Learning");
  const AzureService* s = m->azure_service("microsoft.cognitiveservices/accounts", "");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->service_name, "Azure AI Services");
  EXPECT_EQ(s->category, "AI and Machine Learning");
  std::string id, name;
  ASSERT_TRUE(m->azure_region("UK South", id, name));
  EXPECT_EQ(id, "uksouth");
  EXPECT_EQ(name, "UK South");
  const AzurePricingUnit* unit = m->azure_unit("100 API Calls");
  ASSERT_NE(unit, nullptr);
  EXPECT_EQ(unit->block_size, 100);
  EXPECT_EQ(unit->unit, "Requests");
}

TEST(FocusMappingsTest, ReadsTablesFromADirectoryAndNamesAMissingOne) {
  auto m = FocusMappings::from_directory(std::string(AIFINOPS_SOURCE_DIR) + "/config/focus-mappings");
  ASSERT_TRUE(m.has_value()) << m.error().message;
  EXPECT_EQ(m->aws_category("AmazonSageMaker"), "AI and Machine Learning");
  auto missing = FocusMappings::from_directory("/nonexistent");
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.error().message.find("aws_category_mapping.csv"), std::string::npos);
}

// ---------------------------------------------------------------- recognisers

TEST(ModelMeterTest, ReadsBedrockUsageTypes) {
  ModelMeter m = bedrock_model_meter("USE1-Claude3.5Sonnet-input-tokens");
  EXPECT_EQ(m.model, "claude-3.5-sonnet");
  EXPECT_EQ(m.tokens, TokenMeter::kInput);
  m = bedrock_model_meter("USW2-Llama3-70B-output-tokens");
  EXPECT_EQ(m.model, "llama-3-70b");
  EXPECT_EQ(m.tokens, TokenMeter::kOutput);
  m = bedrock_model_meter("USE1-anthropic.claude-3-haiku-20240307-v1:0-cache-read-input-token-count");
  EXPECT_EQ(m.model, "anthropic.claude-3-haiku-20240307-v1:0");
  EXPECT_EQ(m.tokens, TokenMeter::kCachedInput);
  EXPECT_TRUE(bedrock_model_meter("USE1-TimedStorage-ByteHrs").model.empty());
  EXPECT_TRUE(bedrock_model_meter("USE1-MP:USE1_InputTokenCount-Units").model.empty());
}

TEST(ModelMeterTest, ReadsEveryObservedAzureOpenAIMeterName) {
  // The public meter names collected in shared data: each must give a model and a direction.
  std::ifstream in(std::string(AIFINOPS_SHARED_DIR) +
                   "/data/formats/azure-openai/azure_openai_meter_names_observed.txt");
  ASSERT_TRUE(in.good());
  std::string line;
  int read = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::string name = line.substr(0, line.find(" |"));
    ModelMeter m = azure_openai_model_meter(name);
    EXPECT_FALSE(m.model.empty()) << name;
    EXPECT_NE(m.tokens, TokenMeter::kNone) << name;
    ++read;
  }
  EXPECT_GE(read, 25);
  ModelMeter m = azure_openai_model_meter("gpt-4o-mini-0718-Batch-Inp-glbl Tokens");
  EXPECT_EQ(m.model, "gpt-4o-mini");
  EXPECT_EQ(m.tokens, TokenMeter::kInput);
  m = azure_openai_model_meter("gpt 4.1 Inp glbl Tokens");
  EXPECT_EQ(m.model, "gpt-4.1");
  m = azure_openai_model_meter("5.4 mini cd Inp Gl 1M Tokens");
  EXPECT_EQ(m.model, "gpt-5.4-mini");
  EXPECT_EQ(m.tokens, TokenMeter::kCachedInput);
  EXPECT_EQ(m.tokens_per_unit, 1'000'000);
  m = azure_openai_model_meter("gpt-4o-0806-Outp-glbl Tokens");
  EXPECT_EQ(m.model, "gpt-4o");
  EXPECT_EQ(m.tokens, TokenMeter::kOutput);
  m = azure_openai_model_meter("text-embedding-3-large-glbl Tokens");
  EXPECT_EQ(m.model, "text-embedding-3-large");
  EXPECT_EQ(m.tokens, TokenMeter::kInput);
  EXPECT_TRUE(azure_openai_model_meter("B1s").model.empty());
}

TEST(ModelMeterTest, ReadsVertexSkus) {
  ModelMeter m = vertex_model_meter("Gemini 1.5 Pro Text Input Tokens");
  EXPECT_EQ(m.model, "gemini-1.5-pro");
  EXPECT_EQ(m.tokens, TokenMeter::kInput);
  m = vertex_model_meter("Gemini 2.0 Flash cached input tokens");
  EXPECT_EQ(m.model, "gemini-2.0-flash");
  EXPECT_EQ(m.tokens, TokenMeter::kCachedInput);
  EXPECT_TRUE(vertex_model_meter("N2 Instance Core running in Americas").model.empty());
}

TEST(GpuTypeTest, RecognisesInstanceFamiliesAndNamedGpus) {
  EXPECT_EQ(gpu_type_from_text("p4d.24xlarge"), "A100");
  EXPECT_EQ(gpu_type_from_text("ml.g5.xlarge"), "A10G");
  EXPECT_EQ(gpu_type_from_text("p5.48xlarge"), "H100");
  EXPECT_EQ(gpu_type_from_text("g4dn.xlarge"), "T4");
  EXPECT_EQ(gpu_type_from_text("Standard_NC24ads_A100_v4"), "A100");
  EXPECT_EQ(gpu_type_from_text("NC4as T4 v3 NCasT4_v3 Series"), "T4");
  EXPECT_EQ(gpu_type_from_text("Standard_NV36adsA10_v5"), "A10");
  EXPECT_EQ(gpu_type_from_text("Nvidia Tesla A100 GPU running in Americas"), "A100");
  EXPECT_EQ(gpu_type_from_text("Nvidia L4 GPU running in EMEA"), "L4");
  EXPECT_EQ(gpu_type_from_text("BM.GPU.H100.8"), "H100");
  EXPECT_EQ(gpu_type_from_text("BM.GPU4.8"), "A100");
  EXPECT_EQ(gpu_type_from_text("Compute - GPU Standard - A10"), "A10");
  EXPECT_EQ(gpu_type_from_text("m5.xlarge"), "");
  EXPECT_EQ(gpu_type_from_text("Standard_D4s_v3"), "");
  EXPECT_EQ(gpu_type_from_text("L40 Series"), "L40");  // not read as L4
}

TEST(NativeTextTest, ConvertsTagShapesToJsonObjects) {
  EXPECT_EQ(tags_to_json(R"("CostCenter": "1234","env": "prod")"), R"({"CostCenter":"1234","env":"prod"})");
  EXPECT_EQ(tags_to_json(R"({"user_team":"ml","n":3})", "user_"), R"({"team":"ml","n":"3"})");
  EXPECT_EQ(tags_to_json(R"([{"key":"team","value":"a"},{"key":"env","value":"dev"}])"),
            R"({"team":"a","env":"dev"})");
  EXPECT_EQ(tags_to_json(""), "");
  EXPECT_EQ(tags_to_json("not json"), "not json");  // kept: the sink moves it to extra
}

TEST(NativeTextTest, ParsesNativeDateTimes) {
  EXPECT_EQ(*parse_native_time("2023-11-01T00:00:00.000Z"), *parse_timestamp("2023-11-01T00:00:00Z"));
  EXPECT_EQ(*parse_native_time("2023-11-01 07:00:00 UTC"), *parse_timestamp("2023-11-01T07:00:00Z"));
  EXPECT_EQ(*parse_native_time("2025-11-03T07:00Z"), *parse_timestamp("2025-11-03T07:00:00Z"));
  EXPECT_EQ(*parse_native_time("9/2/2023"), *parse_timestamp("2023-09-02T00:00:00Z"));
  EXPECT_EQ(*parse_native_time("09/21/2023"), *parse_timestamp("2023-09-21T00:00:00Z"));
  EXPECT_FALSE(parse_native_time("21/09/2023").has_value());
  EXPECT_FALSE(parse_native_time("2025-13-45T07:00Z").has_value());
  Decimal d;
  ASSERT_TRUE(parse_native_decimal("5.64902E-05", d));
  EXPECT_EQ(d.nanos, 56490);
  ASSERT_TRUE(parse_native_decimal("0.00004523809523809524", d));  // rounded to 9 places
  EXPECT_EQ(d.nanos, 45238);
}

// ---------------------------------------------------------------- detection

TEST(NativeDetectTest, EachSampleIsDetectedAsItsFormatAndNothingElse) {
  std::vector<std::string> storage;
  struct Case {
    const char* file;
    NativeFormat format;
  } cases[] = {{"aws_cur_anonymized_first250.csv", NativeFormat::kAwsCur},
               {"aws_cur2_commitments.csv", NativeFormat::kAwsCur},
               {"azure_ea_actual_small.csv", NativeFormat::kAzureCost},
               {"azure_ea_anonymized.csv", NativeFormat::kAzureCost},
               {"gcp_billing_export.csv", NativeFormat::kGcpBilling},
               {"oci_cost_report.csv", NativeFormat::kOciCost}};
  for (const Case& c : cases) {
    auto format = detect_native_format(header_of(fixture(c.file), storage));
    ASSERT_TRUE(format.has_value()) << c.file;
    EXPECT_EQ(*format, c.format) << c.file;
  }
  std::ifstream in(fixture("gcp_billing_export.jsonl"));
  std::string first;
  std::getline(in, first);
  EXPECT_EQ(detect_native_format_text(first), NativeFormat::kGcpBilling);
  // A FOCUS file is not a native export.
  auto focus = detect_native_format(
      header_of(std::string(AIFINOPS_SOURCE_DIR) + "/tests/fixtures/focus/focus-1.0-sample/focus_sample.csv", storage));
  EXPECT_FALSE(focus.has_value());
  EXPECT_FALSE(detect_native_format_text("a,b,c\n1,2,3\n").has_value());
}

// ---------------------------------------------------------------- AWS

TEST_F(NativeExportTest, AwsLegacySampleTotalsMatchTheReportExactly) {
  auto s = ingest("aws_cur_anonymized_first250.csv", NativeFormat::kAwsCur);
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(s->format, "AWS CUR (legacy columns)");
  EXPECT_EQ(s->rows_read, 250);
  EXPECT_EQ(s->rows_ingested, 250);
  EXPECT_EQ(s->rows_quarantined, 0);
  __int128 unblended = sum_column(fixture("aws_cur_anonymized_first250.csv"), "lineItem/UnblendedCost");
  // The report's own sum is 0.3109225665 (ten decimals); to the cent it is 0.31.
  EXPECT_EQ(format_decimal_fixed(unblended, 2), "0.31");
  EXPECT_EQ(format_decimal_fixed(total(Metric::kBilledCost), 2), "0.31");
  EXPECT_EQ(total(Metric::kBilledCost), unblended);
  EXPECT_EQ(total(Metric::kEffectiveCost), unblended);  // no commitments in this sample
  EXPECT_EQ(total(Metric::kListCost),
            sum_column(fixture("aws_cur_anonymized_first250.csv"), "pricing/publicOnDemandCost"));
  auto by_category = grouped(Metric::kBilledCost, {"charge_category"});
  EXPECT_EQ(by_category.size(), 2u);
  EXPECT_TRUE(by_category.count("Usage"));
  EXPECT_TRUE(by_category.count("Tax"));
  auto by_service = grouped(Metric::kBilledCost, {"service_category"});
  EXPECT_TRUE(by_service.count("Storage"));      // AmazonS3
  EXPECT_TRUE(by_service.count("Integration"));  // AWSQueueService
  EXPECT_EQ(total(Metric::kBilledCost, {{"provider", "AWS"}}), unblended);
}

TEST_F(NativeExportTest, AwsCur2CommitmentsAmortiseAndNegationsCancel) {
  auto s = ingest("aws_cur2_commitments.csv", NativeFormat::kAwsCur);
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(s->format, "AWS CUR 2.0");
  EXPECT_EQ(s->rows_read, 14);
  EXPECT_EQ(s->rows_ingested, 12);
  EXPECT_EQ(s->rows_quarantined, 2);
  ASSERT_EQ(s->quarantined_sample.size(), 2u);
  EXPECT_EQ(s->quarantined_sample[0].line, 14);
  EXPECT_EQ(s->quarantined_sample[0].column, "line_item_usage_start_date");
  EXPECT_NE(s->quarantined_sample[0].reason.find("not-a-date"), std::string::npos);
  EXPECT_EQ(s->quarantined_sample[1].column, "line_item_unblended_cost");

  // Billed: every unblended cost of the ingested rows, negation included.
  EXPECT_EQ(total(Metric::kBilledCost), dec("487.394").nanos);
  // Effective: SP covered usage at its SP rate (2.9), negation 0, SP fee's unused 2.4,
  // RI covered usage 1.2, RI fee's unused 1.5; the rest as billed.
  EXPECT_EQ(total(Metric::kEffectiveCost), dec("393.394").nanos);
  EXPECT_EQ(total(Metric::kEffectiveCost, {{"commitment_discount", "arn:aws:savingsplans::111122223333:savingsplan/sp-0a1b2c3d"}}),
            dec("5.3").nanos);
  EXPECT_EQ(total(Metric::kBilledCost, {{"commitment_discount", "arn:aws:savingsplans::111122223333:savingsplan/sp-0a1b2c3d"}}),
            dec("72").nanos);  // covered usage and its negation cancel
  auto status = grouped(Metric::kEffectiveCost, {"commitment_discount_status"});
  EXPECT_EQ(status["Used"], dec("4.1").nanos);
  EXPECT_EQ(status["Unused"], dec("3.9").nanos);
  auto type = grouped(Metric::kBilledCost, {"commitment_discount_type"});
  EXPECT_EQ(type["Savings Plan"], dec("72").nanos);
  EXPECT_EQ(type["Reserved Instance"], dec("30").nanos);

  auto categories = grouped(Metric::kBilledCost, {"charge_category"});
  EXPECT_EQ(categories["Purchase"], dec("102").nanos);
  EXPECT_EQ(categories["Tax"], dec("12.34").nanos);
  EXPECT_EQ(categories["Credit"], dec("-30").nanos);
  EXPECT_EQ(total(Metric::kBilledCost, {{"charge_class", "Correction"}}), dec("-5").nanos);

  // Tags to the policy's dimensions, with AWS's "user_" prefix dropped.
  EXPECT_EQ(total(Metric::kBilledCost, {{"team", "ml-research"}}), dec("403.054").nanos);
  EXPECT_EQ(total(Metric::kBilledCost, {{"project", "assistant"}}), dec("7.5").nanos);
  // Bedrock: model and tokens from the usage type (1K-token units).
  EXPECT_EQ(total(Metric::kInputTokens, {{"model", "claude-3.5-sonnet"}}), 1'500'000);
  EXPECT_EQ(total(Metric::kOutputTokens, {{"model", "claude-3.5-sonnet"}}), 200'000);
  EXPECT_EQ(total(Metric::kBilledCost, {{"service_category", "AI and Machine Learning"}}),
            dec("50.324").nanos);  // Bedrock 7.5 - 25 credit + SageMaker 67.824
  // GPUs: p4d (A100, 8 per instance in the catalog → 80 GPU-hours), SageMaker ml.g5 (A10G).
  auto gpus = grouped(Metric::kBilledCost, {"gpu"});
  EXPECT_EQ(gpus["A100"], dec("327.73").nanos);
  EXPECT_EQ(gpus["A10G"], dec("67.824").nanos);
  EXPECT_EQ(total(Metric::kGpuHours, {{"gpu", "A100"}}), dec("80").nanos);
}

// ---------------------------------------------------------------- Azure

TEST_F(NativeExportTest, AzureEaActualSampleReproducesTheExportTotal) {
  auto s = ingest("azure_ea_actual_small.csv", NativeFormat::kAzureCost);
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(s->format, "Azure cost details (EA columns)");
  EXPECT_EQ(s->rows_read, 11);
  EXPECT_EQ(s->rows_ingested, 11);
  __int128 cost = sum_column(fixture("azure_ea_actual_small.csv"), "Cost");
  EXPECT_EQ(total(Metric::kBilledCost), cost);
  // To the cent against the export's own (unrounded) sum, 8.5450077867419368.
  EXPECT_EQ(format_decimal_fixed(total(Metric::kBilledCost), 2), "8.55");
  // The reservation purchase: billed, with no effective cost of its own (amortised).
  EXPECT_EQ(total(Metric::kBilledCost, {{"charge_category", "Purchase"}}), dec("3.25").nanos);
  EXPECT_EQ(total(Metric::kEffectiveCost, {{"charge_category", "Purchase"}}), 0);
  EXPECT_EQ(total(Metric::kEffectiveCost), cost - dec("3.25").nanos);
  EXPECT_EQ(total(Metric::kBilledCost, {{"commitment_discount_type", "Reservation"}}), dec("3.25").nanos);
  // Tags: EA's brace-less fragment parsed; CostCenter and application map to dimensions.
  EXPECT_GT(total(Metric::kBilledCost, {{"cost_center", "1234"}}), 0);
  EXPECT_GT(total(Metric::kBilledCost, {{"project", "databricks"}}), 0);
  auto categories = grouped(Metric::kBilledCost, {"service_category"});
  EXPECT_TRUE(categories.count("Storage"));
  EXPECT_TRUE(categories.count("Compute"));
  EXPECT_TRUE(categories.count("Databases"));
  auto regions = grouped(Metric::kBilledCost, {"region"});
  EXPECT_TRUE(regions.count("uksouth"));
  EXPECT_TRUE(regions.count("eastus2"));
}

TEST_F(NativeExportTest, AzureMcaColumnsWithSpotAndUnitBlocks) {
  auto s = ingest("azure_ea_anonymized.csv", NativeFormat::kAzureCost);
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(s->format, "Azure cost details (MCA columns)");
  EXPECT_EQ(s->rows_read, 27);
  EXPECT_EQ(s->rows_ingested, 27);
  __int128 cost = sum_column(fixture("azure_ea_anonymized.csv"), "CostInBillingCurrency");
  EXPECT_EQ(total(Metric::kBilledCost), cost);
  EXPECT_EQ(format_decimal_fixed(cost, 2), "1.26");
  auto currency = grouped(Metric::kBilledCost, {"billing_currency"});
  EXPECT_EQ(currency.size(), 1u);
  EXPECT_TRUE(currency.count("CAD"));
  auto pricing = grouped(Metric::kBilledCost, {"pricing_category"});
  EXPECT_TRUE(pricing.count("Dynamic"));  // the Spot rows
  EXPECT_TRUE(pricing.count("Standard"));
  EXPECT_GT(total(Metric::kBilledCost, {{"region", "centralus"}}), 0);
}

// ---------------------------------------------------------------- Google Cloud

void expect_gcp_fixture(NativeExportTest& t, const IngestSummary& s) {
  EXPECT_EQ(s.rows_read, 9);
  EXPECT_EQ(s.rows_ingested, 8);
  EXPECT_EQ(s.rows_quarantined, 1);
  ASSERT_EQ(s.quarantined_sample.size(), 1u);
  EXPECT_EQ(s.quarantined_sample[0].line, 10 - (s.format.find("JSON") != std::string::npos ? 1 : 0));
  EXPECT_NE(s.quarantined_sample[0].reason.find("\"abc\" is not a decimal number"), std::string::npos);
  // cost 56.85 over the good rows plus credits -9.5.
  EXPECT_EQ(t.total(Metric::kBilledCost), dec("47.35").nanos);
  EXPECT_EQ(t.total(Metric::kContractedCost), dec("56.85").nanos);
  EXPECT_EQ(t.total(Metric::kBilledCost, {{"commitment_discount_type", "Committed Use Discount"}}),
            dec("29.39").nanos);  // A100 usage 29.39 - 8.5 CUD credit, plus the 8.5 fee
  EXPECT_EQ(t.total(Metric::kBilledCost, {{"charge_category", "Purchase"}}), dec("8.5").nanos);
  EXPECT_EQ(t.total(Metric::kBilledCost, {{"charge_category", "Tax"}}), dec("3.21").nanos);
  EXPECT_EQ(t.total(Metric::kBilledCost, {{"charge_class", "Correction"}}), dec("-0.75").nanos);
  EXPECT_EQ(t.total(Metric::kInputTokens, {{"model", "gemini-1.5-pro"}}), 2'000'000);
  EXPECT_EQ(t.total(Metric::kOutputTokens, {{"model", "gemini-1.5-pro"}}), 500'000);
  EXPECT_EQ(t.total(Metric::kGpuHours, {{"gpu", "A100"}}), dec("10").nanos);
  EXPECT_EQ(t.total(Metric::kBilledCost, {{"team", "ml-research"}}), dec("25.89").nanos);
  EXPECT_EQ(t.total(Metric::kBilledCost, {{"service_category", "AI and Machine Learning"}}), dec("5").nanos);
}

TEST_F(NativeExportTest, GcpCsvFoldsCreditsIntoBilledCost) {
  auto s = ingest("gcp_billing_export.csv", NativeFormat::kGcpBilling);
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(s->format, "Google Cloud billing export");
  expect_gcp_fixture(*this, *s);
}

TEST_F(NativeExportTest, GcpJsonLinesReadTheSameAsCsv) {
  auto s = ingest("gcp_billing_export.jsonl", NativeFormat::kGcpBilling);
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(s->format, "Google Cloud billing export (JSON lines)");
  expect_gcp_fixture(*this, *s);
}

// ---------------------------------------------------------------- OCI

TEST_F(NativeExportTest, OciCostReportMapsCorrectionsTagsAndGpus) {
  auto s = ingest("oci_cost_report.csv", NativeFormat::kOciCost);
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(s->format, "OCI cost report");
  EXPECT_EQ(s->rows_read, 6);
  EXPECT_EQ(s->rows_ingested, 5);
  EXPECT_EQ(s->rows_quarantined, 1);
  ASSERT_EQ(s->quarantined_sample.size(), 1u);
  EXPECT_EQ(s->quarantined_sample[0].column, "lineItem/intervalUsageStart");
  __int128 cost = sum_column(fixture("oci_cost_report.csv"), "cost/myCost") - dec("0.025").nanos;
  EXPECT_EQ(total(Metric::kBilledCost), cost);
  EXPECT_EQ(cost, dec("1.925124").nanos);
  EXPECT_EQ(total(Metric::kBilledCost, {{"charge_class", "Correction"}}), dec("-2").nanos);
  EXPECT_EQ(total(Metric::kBilledCost, {{"charge_category", "Credit"}}), dec("-2").nanos);
  EXPECT_EQ(total(Metric::kBilledCost, {{"cost_center", "CC-42"}}), dec("2.017707").nanos);
  EXPECT_EQ(total(Metric::kBilledCost, {{"team", "ml-research"}}), dec("1.872").nanos);
  EXPECT_EQ(total(Metric::kBilledCost, {{"service_category", "AI and Machine Learning"}}), dec("1.872").nanos);
  auto gpus = grouped(Metric::kBilledCost, {"gpu"});
  EXPECT_TRUE(gpus.count("A10"));
  EXPECT_EQ(total(Metric::kBilledCost, {{"provider", "Oracle"}}), cost);
}

// ---------------------------------------------------------------- errors

TEST_F(NativeExportTest, AHeaderWithoutTheCostColumnIsAnErrorAndWritesNothing) {
  std::string path = dir_.file("bad_cur.csv");
  std::ofstream(path) << "lineItem/UsageStartDate,lineItem/LineItemType\n2025-11-01T00:00:00Z,Usage\n";
  IngestContext context{*ledger_, catalog_, policy_};
  auto s = ingest_native(context, path, IngestOptions{}, NativeFormat::kAwsCur);
  ASSERT_FALSE(s.has_value());
  EXPECT_NE(s.error().message.find("lineItem/UnblendedCost"), std::string::npos);
  EXPECT_NE(s.error().message.find("nothing was ingested"), std::string::npos);
  EXPECT_EQ(total(Metric::kBilledCost), 0);
}

TEST_F(NativeExportTest, ARowWithTooFewFieldsIsQuarantinedWithItsLine) {
  std::string path = dir_.file("short_oci.csv");
  std::ofstream(path) << "lineItem/intervalUsageStart,cost/myCost,product/service\n"
                         "2025-11-01T00:00Z,1.5,COMPUTE\n"
                         "2025-11-01T00:00Z,2.5\n";
  IngestContext context{*ledger_, catalog_, policy_};
  auto s = ingest_native(context, path, IngestOptions{}, NativeFormat::kOciCost);
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(s->rows_read, 2);
  EXPECT_EQ(s->rows_ingested, 1);
  EXPECT_EQ(s->rows_quarantined, 1);
  EXPECT_EQ(s->quarantined_sample[0].line, 3);
  EXPECT_NE(s->quarantined_sample[0].reason.find("2 fields"), std::string::npos);
  EXPECT_EQ(total(Metric::kBilledCost), dec("1.5").nanos);
}

TEST_F(NativeExportTest, GzipCompressedJsonLinesAreDetectedAfterDecompression) {
  std::ifstream in(fixture("gcp_billing_export.jsonl"), std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  std::string path = dir_.file("billing.jsonl.gz");
  gzFile gz = gzopen(path.c_str(), "wb");
  ASSERT_NE(gz, nullptr);
  ASSERT_EQ(gzwrite(gz, text.str().data(), (unsigned)text.str().size()), (int)text.str().size());
  gzclose(gz);
  IngestContext context{*ledger_, catalog_, policy_};
  auto s = ingest_native(context, path, IngestOptions{}, NativeFormat::kGcpBilling);
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(s->format, "Google Cloud billing export (JSON lines)");
  EXPECT_EQ(s->rows_ingested, 8);
  EXPECT_EQ(total(Metric::kBilledCost), dec("47.35").nanos);
}

TEST_F(NativeExportTest, AmountsThatDoNotFitAreQuarantinedNotWrapped) {
  std::string path = dir_.file("huge_azure.csv");
  std::ofstream(path) << "Date,MeterCategory,CostInBillingCurrency,PayGPrice,Quantity\n"
                         "11/03/2025,Storage,1.5,0.02,10\n"
                         "11/03/2025,Storage,1,9000000000,9000000000\n";
  std::string gcp = dir_.file("bad_credits.csv");
  std::ofstream(gcp) << "usage_start_time,service.description,cost,credits\n"
                        "2025-11-03 07:00:00 UTC,Compute Engine,1,\"[{\"\"amount\"\":\"\"x\"\"}]\"\n"
                        "2025-11-03 07:00:00 UTC,Compute Engine,2,[]\n";
  IngestContext context{*ledger_, catalog_, policy_};
  auto s = ingest_native(context, path, IngestOptions{}, NativeFormat::kAzureCost);
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(s->rows_ingested, 1);
  ASSERT_EQ(s->rows_quarantined, 1);
  EXPECT_EQ(s->quarantined_sample[0].column, "PayGPrice");
  EXPECT_EQ(total(Metric::kListCost), dec("0.2").nanos);
  auto g = ingest_native(context, gcp, IngestOptions{}, NativeFormat::kGcpBilling);
  ASSERT_TRUE(g.has_value()) << g.error().message;
  EXPECT_EQ(g->rows_ingested, 1);
  ASSERT_EQ(g->rows_quarantined, 1);
  EXPECT_EQ(g->quarantined_sample[0].column, "credits");
  EXPECT_NE(g->quarantined_sample[0].reason.find("not a decimal number"), std::string::npos);
}

TEST(NativeRowTest, AnUnknownLineItemTypeIsAnAdjustmentAndKeepsItsCost) {
  auto mappings = FocusMappings::builtin();
  ASSERT_TRUE(mappings.has_value());
  std::vector<std::string_view> header = {"lineItem/UsageStartDate", "lineItem/LineItemType",
                                          "lineItem/UnblendedCost", "lineItem/ProductCode"};
  auto mapper = make_native_mapper(NativeFormat::kAwsCur, header, "x.csv", *mappings, nullptr);
  ASSERT_TRUE(mapper.has_value()) << mapper.error().message;
  Record r;
  RowProblem problem;
  ASSERT_TRUE((*mapper)->map({"2025-11-01T00:00:00Z", "SomeNewType", "3.5", "AmazonEC2"}, r, problem));
  EXPECT_EQ(r[Attr::kChargeCategory], "Adjustment");
  EXPECT_EQ(r.facts.billed_cost.nanos, dec("3.5").nanos);
  EXPECT_EQ(r.facts.effective_cost.nanos, dec("3.5").nanos);
  EXPECT_EQ(r[Attr::kServiceCategory], "Compute");
  EXPECT_EQ(r[Attr::kProviderName], "AWS");
}

}  // namespace
}  // namespace aifinops::ingest
