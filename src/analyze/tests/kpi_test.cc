#include "analyze/kpi.h"

#include <gtest/gtest.h>

#include "analyze/business_inputs.h"
#include "tests/testing/ledger_builder.h"

namespace aifinops::analyze {
namespace {

__int128 usd(int64_t units) { return (__int128)units * kNanosPerUnit; }
__int128 usd(const char* text) { return parse_decimal(text)->nanos; }

/// The rows of one KPI, in report order.
std::vector<const Kpi*> rows_of(const KpiReport& report, const std::string& id) {
  std::vector<const Kpi*> out;
  for (const Kpi& k : report.kpis)
    if (k.id == id) out.push_back(&k);
  return out;
}

const Kpi& only(const KpiReport& report, const std::string& id) {
  auto rows = rows_of(report, id);
  EXPECT_EQ(rows.size(), 1u) << id;
  static const Kpi kNone;
  return rows.empty() ? kNone : *rows[0];
}

std::string input_value(const Kpi& k, const std::string& name) {
  for (const KpiInput& in : k.inputs)
    if (in.name == name) return in.value;
  return "(missing " + name + ")";
}

BusinessInputs business(const std::string& yaml) {
  BusinessInputs b;
  auto r = parse_business_yaml(yaml, "business.yaml", b);
  EXPECT_TRUE(r.has_value()) << r.error().message;
  b.files.push_back("business.yaml");
  return b;
}

KpiReport compute(ledger::Ledger& l, const BusinessInputs* b = nullptr, KpiQuery query = {},
                  AnomalyDetector detect = nullptr) {
  KpiContext context;
  context.business = b;
  // A detector that finds nothing unless a test says otherwise: the real one's tuning is
  // tested in anomaly_test.cc.
  context.detect =
      detect ? detect : [](std::span<const double>, size_t) { return std::vector<PointAnomaly>{}; };
  auto report = compute_kpis(l, query, context);
  EXPECT_TRUE(report.has_value()) << report.error().message;
  return report ? *report : KpiReport{};
}

// ---- the paper's worked examples ---------------------------------------------------------

TEST(KpiFormulaTest,
     CostPerInferenceIsFiveCentsForFiveThousandDollarsOverOneHundredThousandInferences) {
  EXPECT_EQ(cost_per_unit(usd(5000), 100'000), usd("0.05"));
  EXPECT_EQ(display_money(cost_per_unit(usd(5000), 100'000)), "$0.05");
}

TEST(KpiFormulaTest, TrainingCostEfficiencyIsAbout105DollarsPerAccuracyPoint) {
  __int128 per_point = cost_per_point(usd(10'000), usd(95));
  EXPECT_EQ(per_point, usd("105.263157895"));  // 10,000 / 95, rounded to the nano-dollar
  EXPECT_EQ(format_decimal_fixed(per_point, 0), "105");
  EXPECT_EQ(display_money(per_point), "$105.26");
}

TEST(KpiFormulaTest, CostPerTokenIsAQuarterCentForTwentyFiveHundredDollarsOverAMillionTokens) {
  EXPECT_EQ(cost_per_unit(usd(2500), 1'000'000), usd("0.0025"));
  EXPECT_EQ(display_money(usd("0.0025")), "$0.0025");
}

TEST(KpiFormulaTest, ResourceUtilisationIsEightyPercentForEightHundredOfOneThousandGpuHours) {
  EXPECT_EQ(percent_of(usd(800), usd(1000)), usd(80));
  EXPECT_EQ(display_percent(percent_of(usd(800), usd(1000))), "80.0%");
}

TEST(KpiFormulaTest, RoiIsOneHundredFiftyPercentForFiftyThousandOnTwentyThousand) {
  EXPECT_EQ(roi_percent(usd(50'000), usd(20'000)), usd(150));
  EXPECT_EQ(display_percent(roi_percent(usd(50'000), usd(20'000))), "150.0%");
  EXPECT_EQ(roi_percent(usd(10'000), usd(20'000)), -usd(50));
}

TEST(KpiFormulaTest, CostPerApiCallIsHalfACentForTwelveHundredDollarsOver240000Calls) {
  EXPECT_EQ(cost_per_unit(usd(1200), 240'000), usd("0.005"));
  EXPECT_EQ(display_money(usd("0.005")), "$0.005");
}

TEST(KpiFormulaTest, TimeToFirstPromptIsThreeMonthsFromJanuaryFirstToAprilFirst) {
  EpochSeconds start = *parse_timestamp("2024-01-01"), deployed = *parse_timestamp("2024-04-01");
  EXPECT_EQ((deployed - start) / 86400, 91);
  EXPECT_EQ(calendar_months_between(start, deployed), (std::pair<int64_t, int64_t>{3, 0}));
  EXPECT_EQ(calendar_months_between(*parse_timestamp("2024-01-31"), *parse_timestamp("2024-02-29")),
            (std::pair<int64_t, int64_t>{1, 0}));
  EXPECT_EQ(calendar_months_between(*parse_timestamp("2024-01-15"), *parse_timestamp("2024-03-20")),
            (std::pair<int64_t, int64_t>{2, 5}));
}

TEST(KpiFormulaTest, SmallMoneyKeepsItsSignificantDigits) {
  EXPECT_EQ(display_money(150), "$0.00000015");  // $0.15 per 1M tokens, per token
  EXPECT_EQ(display_money(usd(1234567)), "$1,234,567.00");
  EXPECT_EQ(display_money(-usd(3)), "-$3.00");
}

TEST(KpiPeriodTest, ReadsMonthsQuartersYearsRangesAndAll) {
  auto month = parse_period("2025-10");
  ASSERT_TRUE(month.has_value());
  EXPECT_EQ(*month->from, *parse_timestamp("2025-10-01"));
  EXPECT_EQ(*month->to, *parse_timestamp("2025-11-01"));
  auto quarter = parse_period("2025-Q4");
  ASSERT_TRUE(quarter.has_value());
  EXPECT_EQ(*quarter->from, *parse_timestamp("2025-10-01"));
  EXPECT_EQ(*quarter->to, *parse_timestamp("2026-01-01"));
  auto year = parse_period("2025");
  ASSERT_TRUE(year.has_value());
  EXPECT_EQ(*year->to, *parse_timestamp("2026-01-01"));
  auto range = parse_period("2025-06-01..2025-06-15");
  ASSERT_TRUE(range.has_value());
  EXPECT_EQ(*range->to, *parse_timestamp("2025-06-15"));
  auto all = parse_period("all");
  ASSERT_TRUE(all.has_value());
  EXPECT_FALSE(all->from.has_value());
  EXPECT_FALSE(parse_period("2025-13").has_value());
  EXPECT_FALSE(parse_period("2025-06-15..2025-06-01").has_value());
  EXPECT_NE(parse_period("last month").error().message.find("2025-Q3"), std::string::npos);
}

// ---- KPIs from a ledger -------------------------------------------------------------------

TEST(KpiTest, CostPerInferenceDividesInferenceCostByInferenceRequestsAndLeavesTrainingOut) {
  testing::LedgerBuilder b;
  b.add({{Attr::kWorkload, "Model_Inference"},
         {Attr::kModel, "gpt-4o-mini"},
         {Attr::kServiceName, "OpenAI API"}},
        "2025-10-03", "3000", [](UsageFacts& f) { f.requests = 60'000; });
  b.add({{Attr::kOperation, "chat"},
         {Attr::kModel, "claude-haiku-4-5"},
         {Attr::kServiceName, "Claude API"}},
        "2025-10-04", "2000", [](UsageFacts& f) { f.requests = 40'000; });
  // A fine-tuning job's calls are API calls, not inferences.
  b.add({{Attr::kOperation, "fine-tune"}, {Attr::kServiceName, "OpenAI API"}}, "2025-10-04", "1000",
        [](UsageFacts& f) { f.requests = 100'000; });
  // Self-hosted serving: inference cost without request counts of its own.
  b.add({{Attr::kWorkload, "inference"}, {Attr::kServiceName, "EC2"}}, "2025-10-05", "1000");
  b.add({{Attr::kWorkload, "Model_Training"}, {Attr::kServiceName, "EC2"}}, "2025-10-05", "7000");
  b.add({{Attr::kServiceName, "S3"}}, "2025-10-05", "50");
  KpiQuery q;
  q.from = *parse_timestamp("2025-10-01");
  q.to = *parse_timestamp("2025-11-01");
  KpiReport r = compute(b.commit(), nullptr, q);
  const Kpi& inference = only(r, "cost_per_inference");
  ASSERT_TRUE(inference.value.has_value()) << inference.note;
  EXPECT_EQ(*inference.value, usd("0.05"));  // (3000 + 2000) / 100,000
  EXPECT_EQ(input_value(inference, "inference cost"), "5000");
  EXPECT_EQ(input_value(inference, "inference requests"), "100000");
  // Serving cost whose records count no requests is shown, not divided by others' requests.
  EXPECT_EQ(input_value(inference, "inference cost without request counts (left out)"), "1000");
  EXPECT_NE(inference.note.find("left out"), std::string::npos);
  EXPECT_NE(inference.command.find("--metric requests"), std::string::npos);
  EXPECT_NE(inference.command.find("--from 2025-10-01 --to 2025-11-01"), std::string::npos);
  // API calls: only the records that counted requests.
  const Kpi& api = only(r, "cost_per_api_call");
  ASSERT_TRUE(api.value.has_value());
  EXPECT_EQ(*api.value, usd("0.03"));  // (3000 + 2000 + 1000) / 200,000
  EXPECT_NE(api.source.find("service=OpenAI API model=gpt-4o-mini"), std::string::npos)
      << api.source;
  // Without business inputs, training cost efficiency shows the training cost and asks for
  // accuracy.
  const Kpi& training = only(r, "training_cost_efficiency");
  EXPECT_FALSE(training.value.has_value());
  EXPECT_EQ(input_value(training, "training cost"), "8000");  // the GPUs and the fine-tuning job
  EXPECT_NE(training.note.find("training_runs"), std::string::npos);
}

TEST(KpiTest, CostPerInferenceSaysWhereRequestsComeFromWhenTheBillHasNone) {
  testing::LedgerBuilder b;
  b.add({{Attr::kModel, "gpt-4o"}}, "2025-10-03", "25",
        [](UsageFacts& f) { f.input_tokens = 1000; });
  KpiReport r = compute(b.commit());
  const Kpi& k = only(r, "cost_per_inference");
  EXPECT_FALSE(k.value.has_value());
  EXPECT_NE(k.note.find("gateway"), std::string::npos) << k.note;
  EXPECT_FALSE(only(r, "cost_per_api_call").value.has_value());
}

TEST(KpiTest, RequestsThatCostNothingInTheirRecordsAreNotFreeInference) {
  // A self-hosted model's spans: requests at a zero catalog price; its GPUs are billed
  // without request counts. Dividing by them would claim $0.00 per request.
  testing::LedgerBuilder b;
  b.add({{Attr::kModel, "llama-3.1-8b-instruct"}, {Attr::kServiceName, "vllm"}}, "2025-10-03",
        "0", [](UsageFacts& f) {
          f.requests = 16'000;
          f.input_tokens = 900'000;
        });
  b.add({{Attr::kWorkload, "inference"}, {Attr::kServiceName, "EC2"}}, "2025-10-03", "400");
  KpiReport r = compute(b.commit());
  const Kpi& inference = only(r, "cost_per_inference");
  EXPECT_FALSE(inference.value.has_value()) << inference.display;
  EXPECT_EQ(input_value(inference, "inference requests"), "0");
  EXPECT_EQ(input_value(inference, "inference requests at no recorded cost (left out)"), "16000");
  EXPECT_NE(inference.note.find("--unit-economics"), std::string::npos) << inference.note;
  const Kpi& api = only(r, "cost_per_api_call");
  EXPECT_FALSE(api.value.has_value()) << api.display;
  EXPECT_EQ(input_value(api, "calls at no recorded cost (left out)"), "16000");
  const Kpi& token = only(r, "cost_per_token");
  EXPECT_FALSE(token.value.has_value()) << token.display;
  EXPECT_EQ(input_value(token, "tokens at no recorded cost (left out)"), "900000");
  const Kpi& llama = only(r, "cost_per_million_tokens");
  EXPECT_FALSE(llama.value.has_value()) << llama.display;
  EXPECT_NE(llama.note.find("self-hosted"), std::string::npos) << llama.note;

  // Beside priced calls, they are left out of the count and the priced calls keep their cost.
  testing::LedgerBuilder mixed;
  mixed.add({{Attr::kModel, "llama-3.1-8b-instruct"}, {Attr::kServiceName, "vllm"}},
            "2025-10-03", "0", [](UsageFacts& f) {
              f.requests = 16'000;
              f.input_tokens = 900'000;
            });
  mixed.add({{Attr::kModel, "gpt-4o-mini"}, {Attr::kServiceName, "OpenAI API"}}, "2025-10-03",
            "30", [](UsageFacts& f) {
              f.requests = 1'000;
              f.input_tokens = 100'000;
            });
  KpiReport m = compute(mixed.commit());
  ASSERT_TRUE(only(m, "cost_per_inference").value.has_value());
  EXPECT_EQ(*only(m, "cost_per_inference").value, usd("0.03"));
  EXPECT_EQ(*only(m, "cost_per_api_call").value, usd("0.03"));
  ASSERT_TRUE(only(m, "cost_per_token").value.has_value());
  EXPECT_EQ(*only(m, "cost_per_token").value, usd("0.0003"));  // $30 / 100,000 tokens
}

TEST(KpiTest, CostPerTokenOverallAndPerMillionByModel) {
  testing::LedgerBuilder b;
  b.add({{Attr::kModel, "gpt-4o"}, {Attr::kTeam, "search"}}, "2025-10-03", "2000",
        [](UsageFacts& f) {
          f.input_tokens = 600'000;
          f.output_tokens = 200'000;
        });
  b.add({{Attr::kModel, "gpt-4o-mini"}, {Attr::kTeam, "search"}}, "2025-10-03", "500",
        [](UsageFacts& f) { f.input_tokens = 200'000; });
  b.add({{Attr::kServiceName, "EC2"}, {Attr::kTeam, "search"}}, "2025-10-03", "900");  // no tokens
  KpiReport r = compute(b.commit());
  const Kpi& overall = only(r, "cost_per_token");
  ASSERT_TRUE(overall.value.has_value());
  EXPECT_EQ(*overall.value, usd("0.0025"));  // 2,500 / 1,000,000
  EXPECT_EQ(overall.display, "$0.0025 per token ($2,500.00 per 1M tokens)");
  auto models = rows_of(r, "cost_per_million_tokens");
  ASSERT_EQ(models.size(), 2u);
  EXPECT_EQ(models[0]->group,
            (std::vector<std::pair<std::string, std::string>>{{"model", "gpt-4o"}}));
  EXPECT_EQ(*models[0]->value, usd(2500));  // 2,000 over 800,000 tokens
  EXPECT_EQ(*models[1]->value, usd(2500));  // 500 over 200,000 tokens
}

TEST(KpiTest, GroupsByDimensionLargestSpendFirst) {
  testing::LedgerBuilder b;
  b.add({{Attr::kTeam, "alpha"}, {Attr::kModel, "m"}}, "2025-10-03", "10", [](UsageFacts& f) {
    f.input_tokens = 1000;
    f.requests = 10;
  });
  b.add({{Attr::kTeam, "beta"}, {Attr::kModel, "m"}}, "2025-10-03", "30", [](UsageFacts& f) {
    f.input_tokens = 1000;
    f.requests = 10;
  });
  KpiQuery q;
  q.group_by.push_back(*ledger::parse_dimension("team"));
  KpiReport r = compute(b.commit(), nullptr, q);
  auto rows = rows_of(r, "cost_per_api_call");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]->group[0], (std::pair<std::string, std::string>{"team", "beta"}));
  EXPECT_EQ(*rows[0]->value, usd(3));
  EXPECT_EQ(*rows[1]->value, usd(1));
  EXPECT_NE(rows[0]->command.find("--by team,workload,usage_type,operation,service,model"),
            std::string::npos)
      << rows[0]->command;
}

TEST(KpiTest, TrainingCostEfficiencyFromARunsAccuracyAndItsLedgerCost) {
  testing::LedgerBuilder b;
  for (int day = 1; day <= 10; ++day)
    b.add({{Attr::kProject, "ranker"}, {Attr::kWorkload, "training"}},
          "2025-06-" + std::string(day < 10 ? "0" : "") + std::to_string(day), "1000");
  b.add({{Attr::kProject, "ranker"}, {Attr::kWorkload, "training"}}, "2025-06-20",
        "5000");  // after the run
  BusinessInputs in = business(
      "training_runs:\n"
      "  - {name: ranker-v7, scope: {project: ranker}, from: 2025-06-01, to: 2025-06-10, accuracy: "
      "95%}\n"
      "  - {name: ranker-v8, scope: {project: ranker}, from: 2025-06-20, to: 2025-06-20, accuracy: "
      "80,\n"
      "     cost_usd: 400, metric: precision}\n");
  KpiReport r = compute(b.commit(), &in);
  auto runs = rows_of(r, "training_cost_efficiency");
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0]->group[0].second, "ranker-v7");
  EXPECT_EQ(*runs[0]->value, usd("105.263157895"));  // 10 days of 1,000 over 95 points
  EXPECT_EQ(input_value(*runs[0], "training cost"), "10000");
  EXPECT_NE(runs[0]->command.find("--to 2025-06-11"), std::string::npos) << runs[0]->command;
  EXPECT_EQ(*runs[1]->value, usd(5));  // the given 400 over 80 points of precision
  EXPECT_EQ(runs[1]->unit, "USD per precision point");
}

TEST(KpiTest, RoiComparesValueDeliveredWithTheProjectsCostInThePeriod) {
  testing::LedgerBuilder b;
  b.add({{Attr::kProject, "support-chatbot"}}, "2025-09-10", "12000");
  b.add({{Attr::kProject, "support-chatbot"}}, "2025-10-10", "20000");
  b.add({{Attr::kProject, "search"}}, "2025-10-10", "10000");
  BusinessInputs in = business(
      "projects:\n"
      "  support-chatbot:\n"
      "    value_usd: {2025-09: 30000, 2025-10: 50000}\n"
      "  search:\n"
      "    value_usd: {2025-10: 5000}\n");
  KpiQuery q;
  q.from = *parse_timestamp("2025-10-01");
  q.to = *parse_timestamp("2025-11-01");
  KpiReport r = compute(b.commit(), &in, q);
  auto roi = rows_of(r, "roi");
  ASSERT_EQ(roi.size(), 3u);
  EXPECT_EQ(roi[0]->group[0].second, "support-chatbot");
  EXPECT_EQ(*roi[0]->value, usd(150));
  EXPECT_EQ(input_value(*roi[0], "financial benefit"), "50000");
  EXPECT_EQ(input_value(*roi[0], "cost"), "20000");
  EXPECT_EQ(*roi[1]->value, -usd(50));
  EXPECT_EQ(roi[2]->group[0].second, "(all with value)");
  EXPECT_EQ(*roi[2]->value, usd("83.333333333"));  // (55,000 - 30,000) / 30,000
}

TEST(KpiTest, TimeToValueIsWhenTheMonthlyValueReachedItsTarget) {
  testing::LedgerBuilder b;
  b.add({{Attr::kProject, "assistant"}}, "2024-01-10", "100");
  BusinessInputs in = business(
      "projects:\n"
      "  assistant:\n"
      "    started: 2024-01-01\n"
      "    value_target_usd_per_month: 100000\n"
      "    value_expected_by: 2024-02-01\n"
      "    value_usd: {2024-02: 50000, 2024-03: 50000, 2024-04: 50000, 2024-05: 50000, 2024-06: "
      "100000}\n");
  KpiReport r = compute(b.commit(), &in);
  const Kpi& k = only(r, "time_to_value");
  ASSERT_TRUE(k.value.has_value()) << k.note;
  EXPECT_EQ(*k.value, usd(152));
  EXPECT_EQ(k.display, "152 days (5 months)");
  EXPECT_EQ(input_value(k, "expected time to value"), "31");
}

TEST(KpiTest, TimeToValueBreakEvenUsesThePapersFormulaWhenTheAlternativesCostIsGiven) {
  testing::LedgerBuilder b;
  b.add({{Attr::kProject, "assistant"}}, "2024-01-10", "9000");
  BusinessInputs in = business(
      "projects:\n"
      "  assistant: {started: 2024-01-01, alternative_cost_usd_per_day: 600}\n");
  KpiReport r = compute(b.commit(), &in);
  const Kpi& k = only(r, "time_to_value_break_even");
  ASSERT_TRUE(k.value.has_value());
  EXPECT_EQ(*k.value, usd(15));  // 9,000 / 600 a day
  EXPECT_EQ(k.display, "15 days");
}

TEST(KpiTest, TimeToFirstPromptTakesTheDeployDateFromProductionSpendWhenNotGiven) {
  testing::LedgerBuilder b;
  b.add({{Attr::kProject, "copilot"}, {Attr::kEnvironment, "development"}}, "2024-01-10", "100");
  b.add({{Attr::kProject, "copilot"}, {Attr::kEnvironment, "production"}}, "2024-04-01T05:00:00Z",
        "100");
  b.add({{Attr::kProject, "copilot"}, {Attr::kEnvironment, "production"}}, "2024-05-03", "100");
  BusinessInputs in = business(
      "projects:\n"
      "  copilot: {started: 2024-01-01}\n"
      "  bot: {started: 2024-01-01, deployed: 2024-04-01}\n");
  KpiReport r = compute(b.commit(), &in);
  auto rows = rows_of(r, "time_to_first_prompt");
  ASSERT_EQ(rows.size(), 2u);
  ASSERT_TRUE(rows[0]->value.has_value()) << rows[0]->note;
  EXPECT_EQ(*rows[0]->value, usd(91));
  EXPECT_EQ(rows[0]->display, "91 days (3 months)");
  EXPECT_EQ(input_value(*rows[0], "deployed (first day with production spend)"), "2024-04-01");
  EXPECT_EQ(*rows[1]->value, usd(91));  // the paper's example, from the given dates
}

TEST(KpiTest, ModelQualityGapAndTheCheapestModelThatMeetsTheRequirement) {
  testing::LedgerBuilder b;
  b.add({{Attr::kProject, "sentiment"}, {Attr::kModel, "gpt-4o"}}, "2025-10-03", "7",
        [](UsageFacts& f) {
          f.input_tokens = 1'000'000;
          f.output_tokens = 450'000;
        });
  ledger::Ledger& l = b.commit();
  std::vector<pricing::ModelPrice> models(2);
  models[0].model = "gpt-4o";
  models[0].mode = "chat";
  models[0].prices.input = Decimal::from_units(2) + Decimal{500'000'000};
  models[0].prices.output = Decimal::from_units(10);
  models[1].model = "gpt-4o-mini";
  models[1].mode = "chat";
  models[1].prices.input = Decimal{150'000'000};
  models[1].prices.output = Decimal{600'000'000};
  std::vector<pricing::GpuInstancePrice> gpus;
  ASSERT_TRUE(l.store_prices(models, gpus).has_value());
  BusinessInputs in = business(
      "model_quality: {gpt-4o: 88.7, gpt-4o-mini: 82.0, tiny-model: 40}\n"
      "workloads:\n"
      "  - {name: sentiment, required_quality: 54}\n");
  KpiReport r = compute(l, &in);
  const Kpi& k = only(r, "model_quality_gap");
  ASSERT_TRUE(k.value.has_value()) << k.note;
  EXPECT_EQ(*k.value, usd("34.7"));
  EXPECT_EQ(input_value(k, "cheapest model meeting the requirement"), "gpt-4o-mini");
  EXPECT_EQ(input_value(k, "cost with gpt-4o-mini"), "0.42");  // 1M x 0.15 + 0.45M x 0.60 per 1M
  EXPECT_EQ(input_value(k, "cost difference"), "6.58");
}

TEST(KpiTest, ResourceUtilisationIsBusyOverProvisionedGpuHours) {
  testing::LedgerBuilder b;
  b.add({{Attr::kTeam, "ml-research"}}, "2025-09-01", "98000",
        [](UsageFacts& f) { f.gpu_milliseconds = 1000LL * 3'600'000; });
  BusinessInputs in = business(
      "gpu_busy_hours:\n"
      "  - {name: training-cluster, scope: {team: ml-research}, month: 2025-09, busy_gpu_hours: "
      "800}\n");
  KpiReport r = compute(b.commit(), &in);
  const Kpi& k = only(r, "resource_utilisation");
  ASSERT_TRUE(k.value.has_value()) << k.note;
  EXPECT_EQ(*k.value, usd(80));
  EXPECT_EQ(input_value(k, "provisioned GPU-hours"), "1000");

  testing::LedgerBuilder without;
  without.add({{Attr::kTeam, "ml-research"}}, "2025-09-01", "98",
              [](UsageFacts& f) { f.gpu_milliseconds = 3'600'000; });
  KpiReport r2 = compute(without.commit());
  const Kpi& k2 = only(r2, "resource_utilisation");
  EXPECT_FALSE(k2.value.has_value());
  EXPECT_EQ(input_value(k2, "provisioned GPU-hours"), "1");
  EXPECT_NE(k2.note.find("gpu_busy_hours"), std::string::npos);
}

TEST(KpiTest, AnomalyRateAndAnomalousSpendFromTheDetectorsFindings) {
  testing::LedgerBuilder b;
  EpochSeconds start = *parse_timestamp("2025-10-01");
  for (int day = 0; day < 40; ++day)
    b.add({{Attr::kTeam, "alpha"}}, format_date(start + day * 86400), day == 34 ? "500" : "100");
  // A monthly fee on the first: recurring charges are not scored.
  b.add({{Attr::kTeam, "alpha"}, {Attr::kChargeFrequency, "Recurring"}}, "2025-11-01", "9999");
  size_t first_seen = 99, length = 0;
  AnomalyDetector fake = [&](std::span<const double> values, size_t first) {
    first_seen = first;
    length = values.size();
    std::vector<PointAnomaly> found;
    for (size_t i = first; i < values.size(); ++i) {
      EXPECT_LT(values[i], 1000.0);  // the fee is left out
      if (values[i] > 400)
        found.push_back(PointAnomaly{i, 100, 0, 150, values[i], values[i] - 100, 9});
    }
    return found;
  };
  KpiQuery q;
  q.from = *parse_timestamp("2025-10-31");
  KpiReport r = compute(b.commit(), nullptr, q, fake);
  EXPECT_EQ(length - first_seen, 10u);  // the period's days are scored, the rest is history
  const Kpi& rate = only(r, "anomaly_rate");
  ASSERT_TRUE(rate.value.has_value()) << rate.note;
  EXPECT_EQ(*rate.value, usd(10));  // 1 of 10 days
  EXPECT_EQ(rate.display, "10.0% (1 of 10 days)");
  const Kpi& spend = only(r, "anomalous_spend");
  EXPECT_EQ(*spend.value, usd(400));
  EXPECT_EQ(input_value(spend, "spend on the days scored"), "1400");

  // The detector's three weeks of history are not counted as scored days.
  KpiReport whole = compute(b.ledger(), nullptr, {}, fake);
  EXPECT_EQ(first_seen, 21u);
  EXPECT_EQ(input_value(only(whole, "anomaly_rate"), "days scored"), "19");
}

TEST(KpiTest, TheTrendGivesEachMonthTheKpisOfThatMonthAlone) {
  testing::LedgerBuilder b;
  const char* days[] = {"2025-08-03", "2025-08-20", "2025-09-02", "2025-10-05", "2025-10-06"};
  int n = 0;
  for (const char* day : days) {
    ++n;
    for (const char* team : {"alpha", "beta"}) {
      b.add({{Attr::kTeam, team},
             {Attr::kModel, n % 2 ? "gpt-4o" : "gpt-4o-mini"},
             {Attr::kWorkload, "inference"}},
            day, std::to_string(n * 10 + (team[0] == 'a' ? 1 : 3)), [n](UsageFacts& f) {
              f.input_tokens = 1000 * n;
              f.output_tokens = 10 * n;
              f.requests = 5 * n;
            });
    }
    b.add({{Attr::kTeam, "alpha"}, {Attr::kWorkload, "training"}}, day, "7",
          [](UsageFacts& f) { f.gpu_milliseconds = 3'600'000; });
  }
  ledger::Ledger& l = b.commit();
  KpiContext context;
  context.detect = [](std::span<const double>, size_t) { return std::vector<PointAnomaly>{}; };
  KpiQuery query;
  query.group_by.push_back(*ledger::parse_dimension("team"));
  query.to = *parse_timestamp("2025-11-01");
  auto trend = compute_kpi_trend(l, query, context, 4);
  ASSERT_TRUE(trend.has_value()) << trend.error().message;
  ASSERT_EQ(trend->size(), 4u);
  const char* months[] = {"2025-07", "2025-08", "2025-09", "2025-10"};
  for (size_t i = 0; i < 4; ++i) {
    SCOPED_TRACE(months[i]);
    EXPECT_EQ(format_month((*trend)[i].month), months[i]);
    KpiQuery alone = query;
    alone.from = *parse_timestamp(std::string(months[i]) + "-01");
    alone.to = next_month(*alone.from);
    auto expected = compute_kpis(l, alone, context);
    ASSERT_TRUE(expected.has_value());
    // The whole report, texts included, is the month's own.
    EXPECT_EQ(kpi_report_json((*trend)[i].report), kpi_report_json(*expected));
  }
  auto tokens = rows_of((*trend)[3].report, "cost_per_token");
  ASSERT_EQ(tokens.size(), 2u);  // by team
  EXPECT_NE(tokens[0]->value, std::nullopt);
  std::string json = kpi_trend_json(*trend);
  EXPECT_EQ(json.rfind("[{\"month\":\"2025-07\",\"kpis\":[{\"id\":\"cost_per_inference\"", 0), 0u)
      << json.substr(0, 200);
  query.to.reset();
  EXPECT_FALSE(compute_kpi_trend(l, query, context, 4).has_value());
}

TEST(KpiTest, JsonCarriesExactValuesAsTextAndEveryKpi) {
  testing::LedgerBuilder b;
  b.add({{Attr::kModel, "gpt-4o"}}, "2025-10-03", "2500",
        [](UsageFacts& f) { f.input_tokens = 1'000'000; });
  KpiReport r = compute(b.commit());
  std::string json = kpi_report_json(r);
  for (const char* id :
       {"cost_per_inference", "training_cost_efficiency", "cost_per_token",
        "cost_per_million_tokens", "resource_utilisation", "anomaly_rate", "roi",
        "cost_per_api_call", "time_to_value", "time_to_first_prompt", "model_quality_gap"})
    EXPECT_NE(json.find(std::string("\"id\":\"") + id + "\""), std::string::npos) << id;
  EXPECT_NE(json.find("\"value\":\"0.0025\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"period\":{\"from\":null,\"to\":null}"), std::string::npos);
}

// ---- business inputs ----------------------------------------------------------------------

TEST(BusinessInputsTest, ReadsEverySection) {
  BusinessInputs in = business(
      "quality_benchmark: MMLU\n"
      "model_quality: {gpt-4o: 88.7}\n"
      "projects:\n"
      "  support-chatbot:\n"
      "    scope: {project: support-chatbot, environment: production}\n"
      "    started: 2025-01-06\n"
      "    deployed: 2025-03-03\n"
      "    value_target_usd_per_month: 100000\n"
      "    value_usd: {2025-05: 42000.50}\n"
      "training_runs:\n"
      "  - {name: r1, scope: {team: ml}, from: 2025-06-01, to: 2025-06-02, accuracy: 91.5}\n"
      "workloads:\n"
      "  - {name: triage, scope: {project: ticket-triage}, required_quality: 54}\n"
      "gpu_busy_hours:\n"
      "  - {name: pool, scope: {team: ml}, month: 2025-06, busy_gpu_hours: 12.5}\n");
  ASSERT_EQ(in.projects.size(), 1u);
  const ProjectInputs& p = in.projects[0];
  EXPECT_EQ(p.scope.at("environment"), "production");
  EXPECT_EQ(*p.started, *parse_timestamp("2025-01-06"));
  EXPECT_EQ(p.value_by_month.at(*parse_timestamp("2025-05-01")).nanos, usd("42000.5"));
  EXPECT_EQ(p.origin, "business.yaml:4");
  EXPECT_EQ(in.training_runs[0].to, *parse_timestamp("2025-06-03"));  // the last day is included
  EXPECT_EQ(in.training_runs[0].accuracy.nanos, usd("91.5"));
  EXPECT_EQ(in.workloads[0].required_quality.nanos, usd(54));
  EXPECT_EQ(in.gpu_busy_hours[0].busy_gpu_hours.nanos, usd("12.5"));
  EXPECT_EQ(in.model_quality.at("gpt-4o").nanos, usd("88.7"));
}

TEST(BusinessInputsTest, ErrorsNameTheFileLineAndKey) {
  auto error_of = [](const std::string& yaml) {
    BusinessInputs b;
    auto r = parse_business_yaml(yaml, "business.yaml", b);
    return r ? std::string("(no error)") : r.error().message;
  };
  EXPECT_EQ(
      error_of("projects:\n  bot:\n    value_usd: {2025-13: 5}\n"),
      "business.yaml:3: projects.bot.value_usd.2025-13: \"2025-13\" is not a month like 2025-05");
  EXPECT_EQ(error_of("projects:\n  bot:\n    started: next week\n"),
            "business.yaml:3: projects.bot.started: \"next week\" is not a date like 2025-04-01");
  EXPECT_EQ(error_of("training_runs:\n  - {name: r, scope: {team: a}, from: 2025-01-01, to: "
                     "2025-01-02, accuracy: 140}\n"),
            "business.yaml:2: training_runs[0].accuracy: is a score out of 100 (95 for 95%)");
  EXPECT_NE(error_of("projectz: {}\n").find("business.yaml:1: projectz: unknown key"),
            std::string::npos);
  EXPECT_NE(error_of("workloads:\n  - {name: w}\n").find("workloads[0].required_quality: missing"),
            std::string::npos);
  EXPECT_NE(error_of("projects: [a, b]\n").find("projects: expected a mapping"), std::string::npos);
}

TEST(BusinessInputsTest, ReadsAValueCsvAndMergesItWithTheYaml) {
  BusinessInputs in = business("projects:\n  search: {started: 2025-01-01}\n");
  std::string csv =
      "project,month,value_usd,comment\n"
      "search,2025-05,1200.50,\"from finance, May\"\n"
      "chatbot,2025-05,300,\n";
  auto r = parse_business_csv(csv, "value.csv", in);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  ASSERT_EQ(in.projects.size(), 2u);
  EXPECT_EQ(in.find_project("search")->value_by_month.size(), 1u);
  EXPECT_EQ(in.find_project("chatbot")->scope.at("project"), "chatbot");
  auto bad = parse_business_csv("project,month,value_usd\nsearch,May,5\n", "value.csv", in);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().message, "value.csv:2: column month: \"May\" is not a month like 2025-05");
  auto twice = parse_business_csv("project,month,value_usd\nsearch,2025-05,5\n", "more.csv", in);
  ASSERT_FALSE(twice.has_value());
  EXPECT_NE(twice.error().message.find("already has a value"), std::string::npos);
}

TEST(BusinessInputsTest, AScopeWithAnUnknownDimensionIsAnErrorNamingItsLine) {
  testing::LedgerBuilder b;
  b.add({{Attr::kProject, "x"}}, "2025-10-03", "1");
  BusinessInputs in =
      business("projects:\n  x:\n    scope: {colour: blue}\n    value_usd: {2025-10: 5}\n");
  KpiContext context;
  context.business = &in;
  auto r = compute_kpis(b.commit(), KpiQuery{}, context);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("business.yaml:2: scope: unknown dimension \"colour\""),
            std::string::npos)
      << r.error().message;
}

}  // namespace
}  // namespace aifinops::analyze
