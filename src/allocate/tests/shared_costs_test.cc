#include "allocate/shared_costs.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "tests/testing/ledger_builder.h"

namespace aifinops::allocate {
namespace {

constexpr int64_t kNano = 1;
constexpr int64_t kUnit = kNanosPerUnit;

__int128 sum(const std::vector<__int128>& v) {
  __int128 s = 0;
  for (__int128 x : v) s += x;
  return s;
}

ledger::Dimension dim(const char* name) { return *ledger::parse_dimension(name); }

SharedCostRule rule(const std::string& name, std::map<std::string, std::string> match,
                    SplitMethod split, std::string by = "team") {
  SharedCostRule r;
  r.name = name;
  r.match = std::move(match);
  r.split = split;
  r.by = std::move(by);
  return r;
}

/// The allocated total per value of the first group-by column.
std::map<std::string, __int128> totals_by_first_key(const Allocation& a) {
  std::map<std::string, __int128> out;
  for (const AllocatedRow& row : a.rows) out[row.keys[0]] += row.total();
  return out;
}

__int128 ledger_total(ledger::Ledger& l, std::optional<EpochSeconds> from = {},
                      std::optional<EpochSeconds> to = {}) {
  ledger::QuerySpec spec;
  spec.from = from;
  spec.to = to;
  auto r = l.query(spec);
  EXPECT_TRUE(r.has_value());
  return r->total;
}

Allocation allocate(ledger::Ledger& l, const std::vector<SharedCostRule>& rules,
                    std::vector<ledger::Dimension> group_by = {dim("team")},
                    const TagPolicy& policy = TagPolicy::defaults()) {
  AllocationRequest request;
  request.group_by = std::move(group_by);
  auto a = allocate_costs(l, policy, rules, request);
  EXPECT_TRUE(a.has_value()) << a.error().message;
  return a.has_value() ? *a : Allocation{};
}

// --- split_exact -------------------------------------------------------------------------

TEST(SplitExactTest, PartsAddUpToTheAmountAndRemaindersGoToTheLargestFractions) {
  EXPECT_EQ(split_exact(10, {1, 1, 1}), (std::vector<__int128>{4, 3, 3}));
  EXPECT_EQ(split_exact(-10, {1, 1, 1}), (std::vector<__int128>{-4, -3, -3}));
  EXPECT_EQ(split_exact(100, {7, 3}), (std::vector<__int128>{70, 30}));
  EXPECT_EQ(split_exact(2, {1, 2, 2}), (std::vector<__int128>{0, 1, 1}));  // 0.4, 0.8, 0.8
  EXPECT_EQ(split_exact(5, {0, 1}), (std::vector<__int128>{0, 5}));
  EXPECT_EQ(split_exact(0, {3, 4}), (std::vector<__int128>{0, 0}));
  EXPECT_EQ(split_exact(5, {0, 0}), (std::vector<__int128>{0, 0}));  // nothing to split over
}

TEST(SplitExactTest, ConservesEveryNanoForRandomAmountsAndHugeWeights) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 2000; ++i) {
    size_t n = 1 + rng() % 12;
    std::vector<__int128> weights(n);
    for (__int128& w : weights) {
      w = (__int128)(rng() % 1'000'000'000'000ULL);
      if (i % 3 == 0) w *= (__int128)1'000'000'000'000LL;  // past 2^62 in sum: scaled down
      if (i % 7 == 0 && rng() % 2) w = 0;
    }
    weights[rng() % n] += 1;  // at least one positive
    __int128 amount = (__int128)(rng() % 4'000'000'000'000'000'000ULL) * (rng() % 50 + 1);
    if (i % 2) amount = -amount;
    std::vector<__int128> parts = split_exact(amount, weights);
    ASSERT_EQ(sum(parts), amount) << "case " << i;
    for (size_t k = 0; k < n; ++k) {
      if (weights[k] == 0) {
        EXPECT_EQ(parts[k], 0);
      }
      EXPECT_TRUE(amount >= 0 ? parts[k] >= 0 : parts[k] <= 0);
    }
  }
}

// --- rules -------------------------------------------------------------------------------

TEST(SharedCostsTest, EvenSplitGivesEveryTeamTheSameAndKeepsEveryNano) {
  testing::LedgerBuilder b;
  b.add({{Attr::kServiceName, "GPU pool"}}, "2025-10-01", "100.000000001");
  b.add({{Attr::kTeam, "alpha"}}, "2025-10-02", "10");
  b.add({{Attr::kTeam, "beta"}}, "2025-10-03", "30");
  b.add({{Attr::kTeam, "gamma"}}, "2025-10-04", "0.5");
  ledger::Ledger& l = b.commit();
  Allocation a = allocate(l, {rule("pool", {{"service", "GPU pool"}}, SplitMethod::kEven)});
  auto t = totals_by_first_key(a);
  // 100.000000001 / 3 = 33.333333333 each; the two nanos left go to the first receivers.
  EXPECT_EQ(t["alpha"], 10 * kUnit + 33'333'333'333 + kNano);
  EXPECT_EQ(t["beta"], 30 * kUnit + 33'333'333'333 + kNano);
  EXPECT_EQ(t["gamma"], kUnit / 2 + 33'333'333'333);
  EXPECT_EQ(t.count(std::string(kUnallocated)), 0u);
  EXPECT_EQ(a.total, ledger_total(l));
  ASSERT_EQ(a.rules.size(), 1u);
  EXPECT_EQ(a.rules[0].matched, 100 * kUnit + 1);
  EXPECT_EQ(a.rules[0].allocated, 100 * kUnit + 1);
  EXPECT_EQ(a.rules[0].receivers, (std::vector<std::string>{"alpha", "beta", "gamma"}));
  // Rows keep the direct cost and the received part apart.
  for (const AllocatedRow& row : a.rows) {
    if (row.keys[0] == "beta") {
      EXPECT_EQ(row.direct, 30 * kUnit);
      EXPECT_EQ(row.shared[0], 33'333'333'334);
    }
  }
}

TEST(SharedCostsTest, ProportionalSplitFollowsEachDriver) {
  testing::LedgerBuilder b;
  b.add({{Attr::kServiceName, "GPU pool"}}, "2025-10-01", "90");
  b.add({{Attr::kTeam, "alpha"}}, "2025-10-02", "60", [](UsageFacts& f) {
    f.gpu_milliseconds = 3'600'000;  // 1 GPU-hour
    f.input_tokens = 100;
    f.output_tokens = 100;
    f.requests = 1;
  });
  b.add({{Attr::kTeam, "beta"}}, "2025-10-03", "30", [](UsageFacts& f) {
    f.gpu_milliseconds = 2 * 3'600'000;
    f.input_tokens = 700;
    f.requests = 2;
  });
  ledger::Ledger& l = b.commit();
  struct Case {
    SplitDriver driver;
    __int128 alpha_part;
  };
  for (Case c :
       {Case{SplitDriver::kGpuHours, 30 * kUnit}, Case{SplitDriver::kTokens, 20 * kUnit},
        Case{SplitDriver::kRequests, 30 * kUnit}, Case{SplitDriver::kEffectiveCost, 60 * kUnit}}) {
    SharedCostRule r = rule("pool", {{"service", "GPU pool"}}, SplitMethod::kProportional);
    r.driver = c.driver;
    auto t = totals_by_first_key(allocate(l, {r}));
    EXPECT_EQ(t["alpha"], 60 * kUnit + c.alpha_part) << split_driver_name(c.driver);
    EXPECT_EQ(t["beta"], 30 * kUnit + 90 * kUnit - c.alpha_part) << split_driver_name(c.driver);
    EXPECT_EQ(t["alpha"] + t["beta"], ledger_total(l));
  }
}

TEST(SharedCostsTest, ProportionalSplitSkipsReceiversWithoutDriver) {
  testing::LedgerBuilder b;
  b.add({{Attr::kServiceName, "GPU pool"}}, "2025-10-01", "10");
  b.add({{Attr::kTeam, "alpha"}}, "2025-10-02", "1",
        [](UsageFacts& f) { f.gpu_milliseconds = 1000; });
  b.add({{Attr::kTeam, "beta"}}, "2025-10-02", "100");  // no GPU use: gets no GPU pool cost
  ledger::Ledger& l = b.commit();
  SharedCostRule r = rule("pool", {{"service", "GPU pool"}}, SplitMethod::kProportional);
  r.driver = SplitDriver::kGpuHours;
  Allocation a = allocate(l, {r});
  auto t = totals_by_first_key(a);
  EXPECT_EQ(t["alpha"], 11 * kUnit);
  EXPECT_EQ(t["beta"], 100 * kUnit);
  EXPECT_EQ(a.rules[0].receivers, std::vector<std::string>{"alpha"});
}

TEST(SharedCostsTest, FixedWeightsPayEvenReceiversWithoutRecords) {
  testing::LedgerBuilder b;
  b.add({{Attr::kProject, "gateway"}}, "2025-10-01", "1.000000001");
  b.add({{Attr::kTeam, "alpha"}}, "2025-10-02", "5");
  ledger::Ledger& l = b.commit();
  SharedCostRule r =
      rule("gateway", {{"project", "gateway"}, {"team", "(none)"}}, SplitMethod::kFixed);
  r.weights = {{"alpha", *parse_decimal("0.7")}, {"beta", *parse_decimal("0.3")}};
  Allocation a = allocate(l, {r});
  auto t = totals_by_first_key(a);
  EXPECT_EQ(t["alpha"], 5 * kUnit + 700'000'001);  // 0.7000000007 rounds up: largest remainder
  EXPECT_EQ(t["beta"], 300'000'000);
  EXPECT_EQ(a.total, ledger_total(l));
}

TEST(SharedCostsTest, TrainingAndInferenceAreSplitApart) {
  testing::LedgerBuilder b;
  b.add({{Attr::kServiceName, "GPU pool"}, {Attr::kWorkload, "training"}}, "2025-10-01", "100");
  b.add({{Attr::kServiceName, "GPU pool"}, {Attr::kWorkload, "inference"}}, "2025-10-01", "10");
  b.add({{Attr::kTeam, "research"}, {Attr::kWorkload, "training"}}, "2025-10-02", "1",
        [](UsageFacts& f) { f.gpu_milliseconds = 3'600'000; });
  b.add({{Attr::kTeam, "product"}, {Attr::kWorkload, "inference"}}, "2025-10-02", "1",
        [](UsageFacts& f) { f.gpu_milliseconds = 99 * 3'600'000; });
  ledger::Ledger& l = b.commit();
  SharedCostRule r = rule("pool", {{"service", "GPU pool"}}, SplitMethod::kProportional);
  r.driver = SplitDriver::kGpuHours;
  auto t = totals_by_first_key(allocate(l, {r}));
  // By GPU-hours alone product would take 99%; kept apart, training goes to training.
  EXPECT_EQ(t["research"], 101 * kUnit);
  EXPECT_EQ(t["product"], 11 * kUnit);
}

TEST(SharedCostsTest, EachMonthIsSplitOverThatMonthsReceivers) {
  testing::LedgerBuilder b;
  b.add({{Attr::kServiceName, "GPU pool"}}, "2025-10-01", "10");
  b.add({{Attr::kServiceName, "GPU pool"}}, "2025-11-01", "20");
  b.add({{Attr::kTeam, "alpha"}}, "2025-10-02", "1");
  b.add({{Attr::kTeam, "beta"}}, "2025-11-02", "1");
  ledger::Ledger& l = b.commit();
  Allocation a = allocate(l, {rule("pool", {{"service", "GPU pool"}}, SplitMethod::kEven)},
                          {dim("month"), dim("team")});
  ASSERT_EQ(a.rows.size(), 2u);
  EXPECT_EQ(a.rows[0].keys, (std::vector<std::string>{"2025-10", "alpha"}));
  EXPECT_EQ(a.rows[0].total(), 11 * kUnit);
  EXPECT_EQ(a.rows[1].keys, (std::vector<std::string>{"2025-11", "beta"}));
  EXPECT_EQ(a.rows[1].total(), 21 * kUnit);
}

TEST(SharedCostsTest, CostWithNoReceiverStaysAndShowsAsUnallocated) {
  testing::LedgerBuilder b;
  b.add({{Attr::kServiceName, "GPU pool"}, {Attr::kWorkload, "training"}}, "2025-10-01", "7");
  b.add({{Attr::kServiceName, "Egress"}}, "2025-10-01", "3");  // no rule, no tag
  b.add({{Attr::kTeam, "alpha"}, {Attr::kWorkload, "inference"}}, "2025-10-02", "1");
  ledger::Ledger& l = b.commit();
  Allocation a = allocate(l, {rule("pool", {{"service", "GPU pool"}}, SplitMethod::kEven)});
  auto t = totals_by_first_key(a);
  EXPECT_EQ(t[std::string(kUnallocated)], 10 * kUnit);
  EXPECT_EQ(t["alpha"], kUnit);
  EXPECT_EQ(a.rules[0].matched, 7 * kUnit);
  EXPECT_EQ(a.rules[0].unallocated, 7 * kUnit);
  EXPECT_EQ(a.rules[0].allocated, 0);
  // A dimension that allocation does not fill keeps "(none)".
  Allocation by_service = allocate(l, {}, {dim("model")});
  ASSERT_EQ(by_service.rows.size(), 1u);
  EXPECT_EQ(by_service.rows[0].keys[0], "(none)");
}

TEST(SharedCostsTest, TheFirstMatchingRuleWinsAndLaterRulesDoNotReceiveSharedRecords) {
  testing::LedgerBuilder b;
  b.add({{Attr::kServiceName, "Support"}}, "2025-10-01", "12");
  b.add({{Attr::kTeam, "alpha"}}, "2025-10-02", "1");
  b.add({{Attr::kTeam, "beta"}}, "2025-10-02", "3");
  ledger::Ledger& l = b.commit();
  SharedCostRule fixed = rule("support-fixed", {{"service", "Support"}}, SplitMethod::kFixed);
  fixed.weights = {{"beta", Decimal::from_units(1)}};
  SharedCostRule untagged = rule("untagged", {{"team", "(none)"}}, SplitMethod::kEven);
  Allocation a = allocate(l, {fixed, untagged});
  auto t = totals_by_first_key(a);
  EXPECT_EQ(t["beta"], 15 * kUnit);
  EXPECT_EQ(t["alpha"], kUnit);
  EXPECT_EQ(a.rules[1].matched, 0);
}

TEST(SharedCostsTest, FiltersApplyAfterTheSplit) {
  testing::LedgerBuilder b;
  b.add({{Attr::kServiceName, "GPU pool"}}, "2025-10-01", "10");
  b.add({{Attr::kTeam, "alpha"}}, "2025-10-02", "1");
  b.add({{Attr::kTeam, "beta"}}, "2025-10-02", "1");
  ledger::Ledger& l = b.commit();
  AllocationRequest request;
  request.group_by = {dim("team")};
  request.filters = {{dim("team"), "alpha"}};
  auto a = allocate_costs(l, TagPolicy::defaults(),
                          {rule("pool", {{"service", "GPU pool"}}, SplitMethod::kEven)}, request);
  ASSERT_TRUE(a.has_value());
  ASSERT_EQ(a->rows.size(), 1u);
  EXPECT_EQ(a->total, 6 * kUnit);
  request.filters = {{dim("team"), std::string(kUnallocated)}};
  a = allocate_costs(l, TagPolicy::defaults(), {}, request);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->total, 10 * kUnit);
}

TEST(SharedCostsTest, AReceiversPartIsSpreadOverItsOwnGroups) {
  testing::LedgerBuilder b;
  b.add({{Attr::kServiceName, "GPU pool"}}, "2025-10-01", "30");
  b.add({{Attr::kTeam, "alpha"}, {Attr::kProject, "a1"}}, "2025-10-02", "2");
  b.add({{Attr::kTeam, "alpha"}, {Attr::kProject, "a2"}}, "2025-10-02", "1");
  b.add({{Attr::kTeam, "beta"}, {Attr::kProject, "b1"}}, "2025-10-02", "5");
  ledger::Ledger& l = b.commit();
  // Even over teams (15 each), then within alpha in proportion to its projects' cost.
  Allocation a =
      allocate(l, {rule("pool", {{"service", "GPU pool"}}, SplitMethod::kEven)}, {dim("project")});
  auto t = totals_by_first_key(a);
  EXPECT_EQ(t["a1"], 12 * kUnit);
  EXPECT_EQ(t["a2"], 6 * kUnit);
  EXPECT_EQ(t["b1"], 20 * kUnit);
  EXPECT_EQ(t.count(std::string(kUnallocated)), 0u);
}

TEST(SharedCostsTest, RulesCanMatchAndSplitOverCustomDimensions) {
  TagPolicy policy = TagPolicy::defaults();
  ASSERT_TRUE(policy.add_custom({"owner", {"Owner"}, {}, false}));
  testing::LedgerBuilder b;
  b.add({{Attr::kTags, R"({"Owner":"platform"})"}}, "2025-10-01", "9");
  b.add({{Attr::kTags, R"({"Owner":"ann"})"}}, "2025-10-02", "1");
  b.add({{Attr::kTags, R"({"Owner":"bob"})"}}, "2025-10-02", "2");
  ledger::Ledger& l = b.commit();
  SharedCostRule r = rule("platform", {{"owner", "platform"}}, SplitMethod::kProportional, "owner");
  auto owner = resolve_dimension(policy, "owner");
  ASSERT_TRUE(owner.has_value());
  auto t = totals_by_first_key(allocate(l, {r}, {*owner}, policy));
  EXPECT_EQ(t["ann"], 4 * kUnit);
  EXPECT_EQ(t["bob"], 8 * kUnit);
  EXPECT_EQ(t.count("platform"), 0u);
}

TEST(SharedCostsTest, UsageStaysWhereItHappened) {
  testing::LedgerBuilder b;
  b.add({{Attr::kServiceName, "GPU pool"}}, "2025-10-01", "10",
        [](UsageFacts& f) { f.input_tokens = 5; });
  b.add({{Attr::kTeam, "alpha"}}, "2025-10-02", "1", [](UsageFacts& f) { f.input_tokens = 7; });
  ledger::Ledger& l = b.commit();
  AllocationRequest request;
  request.group_by = {dim("team")};
  request.usage_metrics = {ledger::Metric::kTokens};
  auto a = allocate_costs(l, TagPolicy::defaults(),
                          {rule("pool", {{"service", "GPU pool"}}, SplitMethod::kEven)}, request);
  ASSERT_TRUE(a.has_value());
  auto t = totals_by_first_key(*a);
  EXPECT_EQ(t["alpha"], 11 * kUnit);
  EXPECT_EQ(t[std::string(kUnallocated)], 0);  // cost moved away, tokens stayed
  for (const AllocatedRow& row : a->rows) EXPECT_EQ(row.usage[0], row.keys[0] == "alpha" ? 7 : 5);
}

TEST(SharedCostsTest, RefusesToSplitUsageMetrics) {
  testing::LedgerBuilder b;
  b.add({{Attr::kTeam, "alpha"}}, "2025-10-02", "1");
  ledger::Ledger& l = b.commit();
  AllocationRequest request;
  request.metric = ledger::Metric::kTokens;
  auto a = allocate_costs(l, TagPolicy::defaults(), {}, request);
  ASSERT_FALSE(a.has_value());
  EXPECT_NE(a.error().message.find("effective_cost"), std::string::npos);
}

TEST(SharedCostsTest, EveryRuleTypeTogetherConservesTheTotalToTheNano) {
  testing::LedgerBuilder b;
  std::mt19937_64 rng(11);
  const char* teams[] = {"alpha", "beta", "gamma", "", "team-x"};
  const char* services[] = {"GPU pool", "Gateway", "Support", "Egress", "Compute", "Models"};
  const char* workloads[] = {"training", "inference", ""};
  const char* days[] = {"2025-09-30", "2025-10-01", "2025-10-15", "2025-11-03"};
  for (int i = 0; i < 400; ++i) {
    std::string cost = std::to_string((int64_t)(rng() % 1000)) + "." +
                       std::to_string(100000000 + rng() % 900000000);
    if (i % 17 == 0) cost = "-" + cost;  // credits
    b.add({{Attr::kTeam, teams[rng() % 5]},
           {Attr::kServiceName, services[rng() % 6]},
           {Attr::kWorkload, workloads[rng() % 3]},
           {Attr::kProject, "p" + std::to_string(rng() % 4)}},
          days[rng() % 4], cost, [&](UsageFacts& f) {
            f.gpu_milliseconds = (int64_t)(rng() % 3) * 1'234'567;
            f.input_tokens = (int64_t)(rng() % 1000);
            f.requests = (int64_t)(rng() % 3);
          });
  }
  ledger::Ledger& l = b.commit();
  SharedCostRule pool = rule("pool", {{"service", "GPU pool"}}, SplitMethod::kProportional);
  pool.driver = SplitDriver::kGpuHours;
  SharedCostRule gateway =
      rule("gateway", {{"service", "Gateway"}}, SplitMethod::kProportional, "project");
  gateway.driver = SplitDriver::kTokens;
  SharedCostRule support = rule("support", {{"service", "Support"}}, SplitMethod::kFixed);
  support.weights = {{"alpha", *parse_decimal("0.333")},
                     {"beta", *parse_decimal("0.333")},
                     {"nobody", *parse_decimal("0.334")}};
  SharedCostRule egress = rule("egress", {{"service", "Egress"}}, SplitMethod::kEven);
  SharedCostRule requests = rule("requests", {{"service", "Models"}}, SplitMethod::kProportional);
  requests.driver = SplitDriver::kRequests;
  SharedCostRule untagged = rule("untagged", {{"team", "(none)"}}, SplitMethod::kProportional);
  std::vector<SharedCostRule> rules{pool, gateway, support, egress, requests, untagged};
  for (auto group_by :
       std::vector<std::vector<ledger::Dimension>>{{dim("team")},
                                                   {dim("project"), dim("month")},
                                                   {dim("team"), dim("workload"), dim("service")},
                                                   {}}) {
    Allocation a = allocate(l, rules, group_by);
    __int128 rows = 0;
    for (const AllocatedRow& row : a.rows) rows += row.total();
    EXPECT_EQ(rows, a.total);
    EXPECT_EQ(a.total, ledger_total(l));
    for (const RuleOutcome& o : a.rules) {
      EXPECT_EQ(o.allocated + o.unallocated, o.matched) << o.name;
      EXPECT_NE(o.allocated, 0) << o.name;  // every rule had work to do
    }
  }
  AllocationRequest october;
  october.from = *parse_timestamp("2025-10-01");
  october.to = *parse_timestamp("2025-11-01");
  october.group_by = {dim("team")};
  auto a = allocate_costs(l, TagPolicy::defaults(), rules, october);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->total, ledger_total(l, october.from, october.to));
}

TEST(SharedCostsTest, RuleNamesInErrorsWhenADimensionIsUnknown) {
  testing::LedgerBuilder b;
  b.add({{Attr::kTeam, "alpha"}}, "2025-10-02", "1");
  ledger::Ledger& l = b.commit();
  AllocationRequest request;
  auto a = allocate_costs(l, TagPolicy::defaults(),
                          {rule("r1", {{"colour", "red"}}, SplitMethod::kEven)}, request);
  ASSERT_FALSE(a.has_value());
  EXPECT_NE(a.error().message.find("\"r1\": match.colour"), std::string::npos) << a.error().message;
}

// --- showback ----------------------------------------------------------------------------

TEST(ShowbackTest, OneStatementPerTeamAddingUpToThePeriodsTotal) {
  testing::LedgerBuilder b;
  b.add({{Attr::kServiceName, "GPU pool"}}, "2025-10-01", "10");
  b.add({{Attr::kTeam, "alpha"}, {Attr::kServiceName, "OpenAI API"}, {Attr::kModel, "gpt-4o"}},
        "2025-10-02", "3", [](UsageFacts& f) {
          f.input_tokens = 1000;
          f.output_tokens = 500;
        });
  b.add({{Attr::kTeam, "alpha"},
         {Attr::kServiceName, "Compute"},
         {Attr::kResourceId, "vm-1"},
         {Attr::kResourceName, "trainer"}},
        "2025-10-03", "1");
  b.add({{Attr::kTeam, "beta"}, {Attr::kServiceName, "Compute"}, {Attr::kResourceId, "vm-2"}},
        "2025-10-03", "4");
  b.add({{Attr::kServiceName, "Egress"}}, "2025-10-03", "2");
  b.add({{Attr::kTeam, "alpha"}}, "2025-11-03", "100");  // another month
  ledger::Ledger& l = b.commit();
  auto sb = build_showback(
      l, TagPolicy::defaults(), {rule("pool", {{"service", "GPU pool"}}, SplitMethod::kEven)},
      dim("team"), *parse_timestamp("2025-10-01"), *parse_timestamp("2025-11-01"));
  ASSERT_TRUE(sb.has_value()) << sb.error().message;
  EXPECT_EQ(sb->total, 20 * kUnit);
  ASSERT_EQ(sb->statements.size(), 3u);
  const ShowbackStatement& alpha = sb->statements[0];
  EXPECT_EQ(alpha.owner, "alpha");
  EXPECT_EQ(alpha.direct, 4 * kUnit);
  EXPECT_EQ(alpha.shared, std::vector<__int128>{5 * kUnit});
  EXPECT_EQ(alpha.total, 9 * kUnit);
  EXPECT_EQ(alpha.tokens, 1500);
  ASSERT_EQ(alpha.lines.size(), 2u);
  EXPECT_EQ(alpha.lines[0].model, "gpt-4o");
  EXPECT_EQ(alpha.lines[1].resource, "vm-1");
  EXPECT_EQ(alpha.lines[1].resource_name, "trainer");
  ASSERT_EQ(alpha.models.size(), 1u);
  EXPECT_EQ(alpha.models[0].tokens, 1500);
  EXPECT_EQ(sb->statements[1].owner, "beta");
  EXPECT_EQ(sb->statements[1].total, 9 * kUnit);
  EXPECT_EQ(sb->statements[2].owner, kUnallocated);  // last, whatever its size
  EXPECT_EQ(sb->statements[2].total, 2 * kUnit);
  __int128 sum_of_statements = 0;
  for (const ShowbackStatement& s : sb->statements) {
    __int128 lines = 0;
    for (const ShowbackLine& line : s.lines) lines += line.cost;
    EXPECT_EQ(lines, s.direct) << s.owner;
    sum_of_statements += s.total;
  }
  EXPECT_EQ(sum_of_statements, sb->total);
}

}  // namespace
}  // namespace aifinops::allocate
