#include "analyze/reconcile.h"

#include <gtest/gtest.h>

#include "tests/testing/ledger_builder.h"

namespace aifinops::analyze {
namespace {

__int128 usd(int64_t units) { return (__int128)units * kNanosPerUnit; }

pricing::Catalog catalog() {
  pricing::Catalog c;
  // The catalog lists the dated snapshot beside the alias, as LiteLLM's does.
  for (const char* name : {"gpt-4o", "gpt-4o-2024-08-06", "gpt-4o-mini", "claude-3-5-sonnet-20241022"}) {
    pricing::ModelPrice p;
    p.model = name;
    p.provider = std::string(name).rfind("claude", 0) == 0 ? "anthropic" : "openai";
    p.prices.input = Decimal::from_units(1);
    p.prices.output = Decimal::from_units(2);
    c.add(p);
  }
  return c;
}

void tokens(UsageFacts& f, int64_t n) { f.input_tokens = n; }

/// A bill and a gateway that sees part of the traffic: the unmetered share is known.
///   day 1, gpt-4o:  billed $100 (1,000,000 tokens); metered $80 (800,000), $60 of it with a team
///   day 2, gpt-4o:  billed $50; metered $50 with a team
///   day 1, claude:  billed $30, never metered (bypasses the gateway)
///   day 1, gpt-4o-mini: metered $5, not on the bill
/// Billed $180, matched 80 + 50 = $130, unmetered $50, unbilled $5.
class ReconcileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto billed = [&](const std::string& provider, const std::string& model, const std::string& day,
                      const std::string& cost, int64_t n) {
      b_.add({{Attr::kProviderName, provider}, {Attr::kInvoiceIssuerName, provider},
              {Attr::kBillingAccountId, "acct-1"}, {Attr::kServiceCategory, "AI and Machine Learning"},
              {Attr::kChargeCategory, "Usage"}, {Attr::kModel, model}},
             day, cost, [n](UsageFacts& f) { tokens(f, n); });
    };
    auto metered = [&](const std::string& model, const std::string& day, const std::string& cost, int64_t n,
                       const std::string& team) {
      b_.add({{Attr::kProviderName, "openai"}, {Attr::kResourceType, "Virtual key"},
              {Attr::kResourceId, "vk-1"}, {Attr::kServiceCategory, "AI and Machine Learning"},
              {Attr::kChargeCategory, "Usage"}, {Attr::kModel, model}, {Attr::kTeam, team}},
             day, cost, [n](UsageFacts& f) { tokens(f, n); });
    };
    billed("OpenAI", "gpt-4o-2024-08-06", "2025-10-01T10:00:00Z", "100", 1'000'000);
    billed("OpenAI", "gpt-4o-2024-08-06", "2025-10-02T10:00:00Z", "50", 500'000);
    billed("Anthropic", "claude-3-5-sonnet-20241022", "2025-10-01T11:00:00Z", "30", 300'000);
    metered("gpt-4o", "2025-10-01T10:00:00Z", "60", 600'000, "search");
    metered("gpt-4o", "2025-10-01T12:00:00Z", "20", 200'000, "");
    metered("gpt-4o", "2025-10-02T10:00:00Z", "50", 500'000, "search");
    // A usage-API record: it names the invoice issuer but is no bill line.
    b_.add({{Attr::kProviderName, "OpenAI"}, {Attr::kInvoiceIssuerName, "OpenAI"}, {Attr::kResourceType, "API key"},
            {Attr::kServiceCategory, "AI and Machine Learning"}, {Attr::kChargeCategory, "Usage"},
            {Attr::kModel, "gpt-4o-mini"}, {Attr::kTeam, "search"}},
           "2025-10-01T13:00:00Z", "5", [](UsageFacts& f) { tokens(f, 50'000); });
    // Neither side: a tax line and a compute charge.
    b_.add({{Attr::kProviderName, "OpenAI"}, {Attr::kInvoiceIssuerName, "OpenAI"},
            {Attr::kServiceCategory, "AI and Machine Learning"}, {Attr::kChargeCategory, "Tax"}},
           "2025-10-01T00:00:00Z", "9");
    b_.add({{Attr::kProviderName, "AWS"}, {Attr::kInvoiceIssuerName, "AWS"}, {Attr::kServiceCategory, "Compute"},
            {Attr::kChargeCategory, "Usage"}},
           "2025-10-01T00:00:00Z", "700");
    b_.commit();
  }

  ReconcileReport run(ReconcileQuery q = {}) {
    auto r = reconcile(b_.ledger(), catalog_, q);
    EXPECT_TRUE(r.has_value()) << r.error().message;
    return r ? *r : ReconcileReport{};
  }

  const ReconcileRow* find(const ReconcileReport& r, const std::string& period, const std::string& model) {
    for (const ReconcileRow& row : r.rows)
      if (row.period == period && row.model == model) return &row;
    return nullptr;
  }

  testing::LedgerBuilder b_;
  pricing::Catalog catalog_ = catalog();
};

TEST(CostSideTest, GatewayAndUsageFeedsAreMeteredBillLinesAreBilled) {
  EXPECT_EQ(cost_side({"Virtual key", "", ""}), CostSide::kMetered);
  EXPECT_EQ(cost_side({"Virtual key", "gpt-4o input", "org-1"}), CostSide::kMetered);
  EXPECT_EQ(cost_side({"(none)", "gpt-4o-2024-08-06, input", "(none)"}), CostSide::kBilled);  // cost API
  EXPECT_EQ(cost_side({"", "", "123456789012"}), CostSide::kBilled);                             // FOCUS
  EXPECT_EQ(cost_side({"API key", "(none)", "(none)"}), CostSide::kMetered);                   // usage API
  EXPECT_EQ(cost_side({"(none)", "(none)", "(none)"}), CostSide::kMetered);                    // OTLP
}

TEST_F(ReconcileTest, TotalsShowTheKnownUnmeteredShare) {
  ReconcileReport r = run();
  EXPECT_EQ(r.billed_cost, usd(180));
  EXPECT_EQ(r.metered_cost, usd(135));
  EXPECT_EQ(r.matched, usd(130));
  EXPECT_EQ(r.billed_not_metered, usd(50));
  EXPECT_EQ(r.metered_not_billed, usd(5));
  EXPECT_DOUBLE_EQ(r.coverage, 130.0 / 180.0);
  EXPECT_EQ(r.matched_attributed, usd(110));
  EXPECT_DOUBLE_EQ(r.attributed_coverage, 110.0 / 180.0);
}

TEST_F(ReconcileTest, RowsUseTheCatalogSpellingAndNameTheirStatus) {
  ReconcileReport r = run();
  ASSERT_EQ(r.rows.size(), 4u);
  const ReconcileRow* day1 = find(r, "2025-10-01", "gpt-4o");
  ASSERT_NE(day1, nullptr);  // "gpt-4o-2024-08-06" on the bill and "gpt-4o" at the gateway meet
  EXPECT_EQ(day1->provider, "openai");
  EXPECT_EQ(day1->status, ReconcileStatus::kMatched);
  EXPECT_EQ(day1->cost_difference(), usd(20));
  EXPECT_EQ(day1->token_difference(), 200'000);
  EXPECT_EQ(day1->metered_attributed_cost, usd(60));
  const ReconcileRow* day2 = find(r, "2025-10-02", "gpt-4o");
  ASSERT_NE(day2, nullptr);
  EXPECT_EQ(day2->cost_difference(), usd(0));
  const ReconcileRow* claude = find(r, "2025-10-01", "claude-3-5-sonnet-20241022");
  ASSERT_NE(claude, nullptr);
  EXPECT_EQ(claude->status, ReconcileStatus::kBilledNotMetered);
  EXPECT_EQ(claude->provider, "anthropic");
  const ReconcileRow* mini = find(r, "2025-10-01", "gpt-4o-mini");
  ASSERT_NE(mini, nullptr);
  EXPECT_EQ(mini->status, ReconcileStatus::kMeteredNotBilled);
  EXPECT_EQ(mini->metered_tokens, 50'000);
}

TEST_F(ReconcileTest, CoarserComparisonsNetDifferencesWithinTheGroup) {
  ReconcileQuery q;
  q.by_model = false;
  q.grain = ledger::Grain::kNone;
  ReconcileReport r = run(q);
  ASSERT_EQ(r.rows.size(), 2u);  // openai, anthropic
  EXPECT_EQ(r.rows[0].provider, "openai");
  EXPECT_EQ(r.rows[0].billed_cost, usd(150));
  EXPECT_EQ(r.rows[0].metered_cost, usd(135));
  EXPECT_EQ(r.billed_not_metered, usd(15 + 30));
  EXPECT_EQ(r.metered_not_billed, usd(0));
}

TEST_F(ReconcileTest, RangeLimitsTheDays) {
  ReconcileQuery q;
  q.from = *parse_timestamp("2025-10-02");
  q.to = *parse_timestamp("2025-10-03");
  ReconcileReport r = run(q);
  EXPECT_EQ(r.billed_cost, usd(50));
  EXPECT_DOUBLE_EQ(r.coverage, 1.0);
  std::string json = reconcile_report_json(r, q);
  EXPECT_NE(json.find("\"coverage\":1.000000"), std::string::npos) << json;
  EXPECT_NE(json.find("\"status\":\"matched\""), std::string::npos) << json;
}

}  // namespace
}  // namespace aifinops::analyze

namespace aifinops::analyze {
namespace {

// The ledger is read in parts (rows with an account; rows without one, with their charge
// description; virtual keys that carry an account): every kind of row lands on its side.
TEST(ReconcilePartsTest, EveryKindOfRowLandsOnItsSide) {
  testing::LedgerBuilder b;
  auto add = [&](std::initializer_list<std::pair<Attr, std::string>> extra, const char* cost) {
    std::vector<std::pair<Attr, std::string>> attrs = {
        {Attr::kProviderName, "OpenAI"},
        {Attr::kServiceCategory, "AI and Machine Learning"},
        {Attr::kChargeCategory, "Usage"},
        {Attr::kModel, "gpt-4o"}};
    attrs.insert(attrs.end(), extra.begin(), extra.end());
    Record r;
    for (const auto& [a, v] : attrs) r[a] = v;
    b.add({{Attr::kProviderName, r[Attr::kProviderName]},
           {Attr::kServiceCategory, r[Attr::kServiceCategory]},
           {Attr::kChargeCategory, r[Attr::kChargeCategory]},
           {Attr::kModel, r[Attr::kModel]},
           {Attr::kChargeDescription, r[Attr::kChargeDescription]},
           {Attr::kBillingAccountId, r[Attr::kBillingAccountId]},
           {Attr::kResourceType, r[Attr::kResourceType]},
           {Attr::kTeam, r[Attr::kTeam]}},
          "2025-10-01T10:00:00Z", cost, [](UsageFacts& f) { f.input_tokens = 1000; });
  };
  add({{Attr::kChargeDescription, "OpenAI API costs"}}, "40");  // billed: described
  add({{Attr::kBillingAccountId, "acct-1"}}, "60");             // billed: account
  add({{Attr::kResourceType, "Virtual key"},
       {Attr::kBillingAccountId, "acct-9"},
       {Attr::kTeam, "x"}},
      "10");
  add({{Attr::kResourceType, "Virtual key"}, {Attr::kBillingAccountId, "acct-9"}}, "5");  // no team
  add({{Attr::kResourceType, "Virtual key"}, {Attr::kTeam, "y"}}, "7");  // no account
  add({{Attr::kResourceType, "API key"}}, "3");                          // usage feed
  b.commit();
  pricing::Catalog c;
  auto r = reconcile(b.ledger(), c, ReconcileQuery{});
  ASSERT_TRUE(r.has_value()) << r.error().message;
  ASSERT_EQ(r->rows.size(), 1u);
  const ReconcileRow& row = r->rows[0];
  EXPECT_EQ(row.billed_cost, usd(100));
  EXPECT_EQ(row.metered_cost, usd(25));
  EXPECT_EQ(row.metered_attributed_cost, usd(17));
  EXPECT_EQ(row.billed_tokens, 2000);
  EXPECT_EQ(row.metered_tokens, 4000);
}

}  // namespace
}  // namespace aifinops::analyze
