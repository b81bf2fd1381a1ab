#include "gateway/limits.h"

#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <latch>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "core/time.h"

namespace aifinops::gateway {
namespace {

constexpr int64_t kSecond = 1000;
constexpr int64_t kMinute = 60 * kSecond;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;

Money usd(std::string_view text) { return *parse_decimal(text); }

EpochMillis at(std::string_view timestamp) { return *parse_timestamp(timestamp) * 1000; }

/// AdmissionRequest holds views: the strings and tags it shows live here, for the whole run.
template <class T>
const T& kept(T value) {
  static std::mutex mutex;
  static std::deque<T> values;
  std::lock_guard<std::mutex> lock(mutex);
  return values.emplace_back(std::move(value));
}

AdmissionRequest request(std::string key_id = "team-a-chatbot",
                         std::map<std::string, std::string> tags = {{"team", "team-a"}}) {
  AdmissionRequest r;
  r.key_id = kept(std::move(key_id));
  r.model = "gpt-4o";
  r.tags = &kept(std::move(tags));
  return r;
}

AdmissionRequest costing(std::string_view cost, AdmissionRequest r = request()) {
  r.worst_case_cost = usd(cost);
  return r;
}

BudgetRule budget(std::string name, std::map<std::string, std::string> scope, BudgetPeriod period,
                  std::string_view amount, bool hard = true) {
  BudgetRule rule;
  rule.name = std::move(name);
  rule.scope = std::move(scope);
  rule.period = period;
  rule.amount = usd(amount);
  rule.hard = hard;
  return rule;
}

TEST(RateLimitTest, RpmRefusesWithRetryAfterThenRefillsOverTime) {
  ManualClock clock;
  MemoryLimitStore store({}, clock);
  AdmissionRequest r = request();
  r.limits.rpm = 600;
  for (int i = 0; i < 600; ++i) ASSERT_TRUE(store.admit(r).admitted) << i;

  Admission refused = store.admit(r);
  ASSERT_FALSE(refused.admitted);
  EXPECT_EQ(refused.refusal.limit, "rpm");
  EXPECT_EQ(refused.refusal.scope, "key team-a-chatbot");
  EXPECT_EQ(refused.refusal.message,
            "Rate limit reached for key team-a-chatbot: 600 requests per minute (rpm). "
            "Retry after 1 s.");
  EXPECT_EQ(refused.refusal.retry_after_s, 1);

  clock.advance_ms(99);  // 10 requests per second: one every 100 ms
  EXPECT_FALSE(store.admit(r).admitted);
  clock.advance_ms(1);
  EXPECT_TRUE(store.admit(r).admitted);
  EXPECT_FALSE(store.admit(r).admitted);

  clock.advance_ms(10 * kMinute);  // refills to the capacity, not beyond
  for (int i = 0; i < 600; ++i) ASSERT_TRUE(store.admit(r).admitted) << i;
  EXPECT_FALSE(store.admit(r).admitted);
}

TEST(RateLimitTest, RpmRetryAfterIsTheTimeUntilTheNextToken) {
  ManualClock clock;
  MemoryLimitStore store({}, clock);
  AdmissionRequest r = request();
  r.limits.rpm = 2;  // one request every 30 s
  EXPECT_TRUE(store.admit(r).admitted);
  EXPECT_TRUE(store.admit(r).admitted);
  EXPECT_EQ(store.admit(r).refusal.retry_after_s, 30);
  clock.advance_ms(29 * kSecond + 500);
  EXPECT_EQ(store.admit(r).refusal.retry_after_s, 1);
  clock.advance_ms(500);
  EXPECT_TRUE(store.admit(r).admitted);
}

TEST(RateLimitTest, RateLimitsArePerKey) {
  ManualClock clock;
  MemoryLimitStore store({}, clock);
  AdmissionRequest a = request("key-a");
  AdmissionRequest b = request("key-b");
  a.limits.rpm = b.limits.rpm = 1;
  EXPECT_TRUE(store.admit(a).admitted);
  EXPECT_FALSE(store.admit(a).admitted);
  EXPECT_TRUE(store.admit(b).admitted);
}

TEST(RateLimitTest, TpmConsumesTheEstimateAndSettleCorrectsIt) {
  ManualClock clock;
  MemoryLimitStore store({}, clock);
  AdmissionRequest r = request();
  r.limits.tpm = 6000;  // 100 tokens per second

  r.estimated_tokens = 4000;
  Admission first = store.admit(r);
  ASSERT_TRUE(first.admitted);

  r.estimated_tokens = 3000;
  Admission refused = store.admit(r);
  ASSERT_FALSE(refused.admitted);
  EXPECT_EQ(refused.refusal.limit, "tpm");
  EXPECT_EQ(refused.refusal.retry_after_s, 10);  // 1000 tokens missing at 100 per second
  EXPECT_EQ(refused.refusal.message,
            "Rate limit reached for key team-a-chatbot: 6000 tokens per minute (tpm), this request "
            "needs 3000. Retry after 10 s.");

  // The first request used 1000 tokens, not 4000: 3000 come back, and 5000 are available.
  store.settle(first.reservation, 1000, Money{});
  Admission second = store.admit(r);
  ASSERT_TRUE(second.admitted);  // 2000 left

  // The second used 9000 instead of 3000: the bucket goes to 2000 - 6000 = -4000.
  store.settle(second.reservation, 9000, Money{});
  r.estimated_tokens = 1;
  Admission waits = store.admit(r);
  ASSERT_FALSE(waits.admitted);
  EXPECT_EQ(waits.refusal.retry_after_s, 41);  // 4001 tokens at 100 per second = 40.01 s
  clock.advance_ms(40 * kSecond);
  EXPECT_FALSE(store.admit(r).admitted);
  clock.advance_ms(10);
  EXPECT_TRUE(store.admit(r).admitted);
}

TEST(RateLimitTest, SettleNeverFillsTheTpmBucketBeyondItsCapacity) {
  ManualClock clock;
  MemoryLimitStore store({}, clock);
  AdmissionRequest r = request();
  r.limits.tpm = 6000;
  r.estimated_tokens = 6000;
  Admission a = store.admit(r);
  clock.advance_ms(kMinute);  // full again
  store.settle(a.reservation, 0, Money{});
  EXPECT_TRUE(store.admit(r).admitted);
  r.estimated_tokens = 1;
  EXPECT_FALSE(store.admit(r).admitted);
}

TEST(RateLimitTest, RefusesARequestLargerThanTheWholeTpmLimit) {
  ManualClock clock;
  MemoryLimitStore store({}, clock);
  AdmissionRequest r = request();
  r.limits.tpm = 6000;
  r.estimated_tokens = 6001;
  Admission refused = store.admit(r);
  ASSERT_FALSE(refused.admitted);
  EXPECT_EQ(refused.refusal.limit, "tpm");
  EXPECT_NE(refused.refusal.message.find("Request too large for key team-a-chatbot"),
            std::string::npos);
  EXPECT_NE(refused.refusal.message.find("max_tokens"), std::string::npos);
}

TEST(QuotaTest, RequestsPerDayRefusesUntilTheNextUtcDay) {
  ManualClock clock(at("2025-01-01T23:00:00Z"));
  MemoryLimitStore store({}, clock);
  AdmissionRequest r = request();
  r.limits.requests_per_day = 3;
  for (int i = 0; i < 3; ++i) {
    Admission a = store.admit(r);
    ASSERT_TRUE(a.admitted);
    store.settle(a.reservation, 0, Money{});  // a settled request still counts
  }
  Admission refused = store.admit(r);
  ASSERT_FALSE(refused.admitted);
  EXPECT_EQ(refused.refusal.limit, "requests_per_day");
  EXPECT_EQ(refused.refusal.scope, "key team-a-chatbot");
  EXPECT_EQ(refused.refusal.retry_after_s, 3600);
  EXPECT_EQ(refused.refusal.message,
            "Quota reached for key team-a-chatbot: 3 requests per day (requests_per_day). "
            "Retry after 3600 s.");

  clock.set_ms(at("2025-01-02T00:00:00Z"));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(store.admit(r).admitted);
  EXPECT_FALSE(store.admit(r).admitted);
}

TEST(QuotaTest, TokensPerDayCountsReservationsUntilSettled) {
  ManualClock clock(at("2025-01-01T12:00:00Z"));
  MemoryLimitStore store({}, clock);
  AdmissionRequest r = request();
  r.limits.tokens_per_day = 1000;
  r.estimated_tokens = 600;

  Admission first = store.admit(r);
  ASSERT_TRUE(first.admitted);
  Admission refused = store.admit(r);  // 600 reserved + 600 > 1000
  ASSERT_FALSE(refused.admitted);
  EXPECT_EQ(refused.refusal.limit, "tokens_per_day");
  EXPECT_EQ(refused.refusal.retry_after_s, 1);  // only the request in flight is in the way

  store.settle(first.reservation, 100, Money{});  // 100 used: 900 left
  Admission second = store.admit(r);
  ASSERT_TRUE(second.admitted);
  store.settle(second.reservation, 600, Money{});  // 700 used

  refused = store.admit(r);
  ASSERT_FALSE(refused.admitted);
  EXPECT_EQ(refused.refusal.retry_after_s, 12 * 3600);  // until midnight UTC
  EXPECT_EQ(refused.refusal.message,
            "Quota reached for key team-a-chatbot: 1000 tokens per day (tokens_per_day), 700 used "
            "or reserved, this request needs up to 600. Retry after 43200 s.");

  clock.advance_ms(12 * kHour);
  r.estimated_tokens = 1000;
  EXPECT_TRUE(store.admit(r).admitted);
}

TEST(QuotaTest, UsdPerDayReservesTheWorstCaseAndSettlesTheActualCost) {
  ManualClock clock(at("2025-01-01T18:00:00Z"));
  MemoryLimitStore store({}, clock);
  AdmissionRequest r = costing("0.60");
  r.limits.usd_per_day = usd("1");

  Admission first = store.admit(r);
  ASSERT_TRUE(first.admitted);
  Admission refused = store.admit(r);
  ASSERT_FALSE(refused.admitted);
  EXPECT_EQ(refused.refusal.limit, "usd_per_day");
  EXPECT_EQ(refused.refusal.retry_after_s, 1);

  store.settle(first.reservation, 0, usd("0.5"));
  refused = store.admit(r);  // 0.50 + 0.60 > 1
  ASSERT_FALSE(refused.admitted);
  EXPECT_EQ(refused.refusal.retry_after_s, 6 * 3600);
  EXPECT_EQ(refused.refusal.message,
            "Quota reached for key team-a-chatbot: 1.00 USD per day (usd_per_day), 0.50 used or "
            "reserved, this request may cost up to 0.60. Retry after 21600 s.");
  EXPECT_TRUE(store.admit(costing("0.50", r)).admitted);  // exactly the quota

  clock.advance_ms(6 * kHour);
  EXPECT_TRUE(store.admit(r).admitted);
}

TEST(QuotaTest, RefusedRequestsTakeNothing) {
  ManualClock clock;
  MemoryLimitStore store({budget("a", {{"team", "team-a"}}, BudgetPeriod::kMonth, "100"),
                          budget("tiny", {{"key", "team-a-chatbot"}}, BudgetPeriod::kDay, "1")},
                         clock);
  AdmissionRequest r = costing("2");
  r.limits.rpm = 1;
  r.limits.tpm = 100;
  r.limits.requests_per_day = 1;
  r.estimated_tokens = 100;
  // Refused by the second budget after every other check passed: no bucket, quota or
  // budget keeps anything.
  ASSERT_FALSE(store.admit(r).admitted);
  EXPECT_EQ(store.budget_used("a"), Money{});
  EXPECT_TRUE(store.admit(costing("1", r)).admitted);
  EXPECT_EQ(store.budget_used("a"), usd("1"));
}

TEST(BudgetTest, RejectsWhenMonthlyBudgetExhausted) {
  ManualClock clock(at("2025-01-15T00:00:00Z"));
  MemoryLimitStore store(
      {budget("team-a monthly", {{"team", "team-a"}}, BudgetPeriod::kMonth, "100")}, clock);
  store.seed_budget_spend("team-a monthly", usd("99"));
  Admission last = store.admit(costing("1"));
  ASSERT_TRUE(last.admitted);
  EXPECT_EQ(store.budget_used("team-a monthly"), usd("100"));

  Admission refused = store.admit(costing("0.000000001"));
  ASSERT_FALSE(refused.admitted);
  EXPECT_EQ(refused.refusal.limit, "budget");
  EXPECT_EQ(refused.refusal.scope, "team=team-a (month)");
  EXPECT_EQ(refused.refusal.message,
            "Budget exhausted: team=team-a, month: 100.00 of 100.00 USD used.");
  EXPECT_EQ(refused.refusal.retry_after_s, 1);  // the request in flight may cost less

  store.settle(last.reservation, 0, usd("1"));
  refused = store.admit(costing("0.000000001"));
  ASSERT_FALSE(refused.admitted);
  EXPECT_EQ(refused.refusal.retry_after_s, 17 * 86400);  // until 2025-02-01
}

TEST(BudgetTest, ANewPeriodStartsFromZeroAtItsFirstSecond) {
  ManualClock clock(at("2025-01-31T23:59:58Z"));
  MemoryLimitStore store(
      {budget("team-a monthly", {{"team", "team-a"}}, BudgetPeriod::kMonth, "100")}, clock);
  store.seed_budget_spend("team-a monthly", usd("100"));
  EXPECT_FALSE(store.admit(costing("1")).admitted);
  clock.advance_ms(1000);  // 23:59:59, still January
  Admission refused = store.admit(costing("1"));
  ASSERT_FALSE(refused.admitted);
  EXPECT_EQ(refused.refusal.retry_after_s, 1);
  clock.advance_ms(1000);  // 2025-02-01T00:00:00Z
  Admission admitted = store.admit(costing("1"));
  ASSERT_TRUE(admitted.admitted);
  EXPECT_EQ(store.budget_used("team-a monthly"), usd("1"));
  store.settle(admitted.reservation, 0, usd("1"));
  clock.set_ms(at("2025-01-31T23:59:59Z"));  // a clock that steps back does not reopen January
  EXPECT_EQ(store.budget_used("team-a monthly"), usd("1"));
  EXPECT_TRUE(store.admit(costing("1")).admitted);
  EXPECT_EQ(store.budget_used("team-a monthly"), usd("2"));
}

TEST(BudgetTest, RefusalSaysWhatTheRequestMayCostWhenTheBudgetIsNotFull) {
  ManualClock clock;
  MemoryLimitStore store({budget("a", {{"team", "team-a"}}, BudgetPeriod::kDay, "10")}, clock);
  store.seed_budget_spend("a", usd("9.5"));
  Admission refused = store.admit(costing("1"));
  ASSERT_FALSE(refused.admitted);
  EXPECT_EQ(
      refused.refusal.message,
      "Budget exhausted: team=team-a, day: 9.50 of 10.00 USD used; this request may cost up to "
      "1.00 USD.");
  EXPECT_TRUE(store.admit(costing("0.5")).admitted);
}

TEST(BudgetTest, SoftBudgetAdmitsAndNotifiesOncePerPeriodOnSettledSpend) {
  ManualClock clock;
  MemoryLimitStore store(
      {budget("team-a daily", {{"team", "team-a"}}, BudgetPeriod::kDay, "10", /*hard=*/false)},
      clock);
  // Reservations over the amount are only a worst case: no notice until spend settles.
  Admission a = store.admit(costing("6"));
  Admission b = store.admit(costing("6"));
  ASSERT_TRUE(a.admitted);
  ASSERT_TRUE(b.admitted);
  EXPECT_TRUE(store.settle(a.reservation, 10, usd("6")).empty());
  std::vector<SoftBudgetNotice> crossing = store.settle(b.reservation, 10, usd("5"));
  ASSERT_EQ(crossing.size(), 1u);
  EXPECT_EQ(crossing[0].budget, "team-a daily");
  EXPECT_EQ(crossing[0].spent, usd("11"));
  EXPECT_EQ(crossing[0].amount, usd("10"));

  // Once per period: later requests stay admitted and silent.
  Admission after = store.admit(costing("1"));
  EXPECT_TRUE(after.admitted);
  EXPECT_TRUE(store.settle(after.reservation, 10, usd("1")).empty());
  EXPECT_EQ(store.budget_used("team-a daily"), usd("12"));

  // The next day is a new period: crossing it again is reported again.
  clock.advance_ms(int64_t{24} * 3600 * 1000);
  Admission next = store.admit(costing("11"));
  ASSERT_TRUE(next.admitted);
  std::vector<SoftBudgetNotice> again = store.settle(next.reservation, 10, usd("11"));
  ASSERT_EQ(again.size(), 1u);
  EXPECT_GT(again[0].period_start, crossing[0].period_start);
}

TEST(BudgetTest, SoftBudgetSeededOverItsAmountIsReportedOnTheFirstSettlement) {
  ManualClock clock;
  MemoryLimitStore store(
      {budget("team-a daily", {{"team", "team-a"}}, BudgetPeriod::kDay, "10", /*hard=*/false)},
      clock);
  store.seed_budget_spend("team-a daily", usd("15"));
  Admission a = store.admit(costing("1"));
  ASSERT_TRUE(a.admitted);
  EXPECT_EQ(store.settle(a.reservation, 1, usd("0.5")).size(), 1u);
}

TEST(BudgetTest, HardBudgetsSendNoNotices) {
  ManualClock clock;
  MemoryLimitStore store({budget("team-a daily", {{"team", "team-a"}}, BudgetPeriod::kDay, "10")},
                         clock);
  Admission a = store.admit(costing("1"));
  ASSERT_TRUE(a.admitted);
  EXPECT_TRUE(store.settle(a.reservation, 1, usd("10.5")).empty());
}

TEST(BudgetTest, ThrottlesLowPriorityKeysAboveNinetyPercent) {
  ManualClock clock;
  MemoryLimitStore store({budget("a", {{"team", "team-a"}}, BudgetPeriod::kMonth, "100")}, clock);
  const AdmissionRequest low =
      costing("1", request("low", {{"team", "team-a"}, {"criticality", "LOW"}}));
  const AdmissionRequest experiment =
      costing("1", request("lab", {{"team", "team-a"}, {"purpose", "Experimentation"}}));
  const AdmissionRequest normal = costing("1");
  const AdmissionRequest other_team =
      costing("1", request("other", {{"team", "team-b"}, {"criticality", "low"}}));

  store.seed_budget_spend("a", usd("89"));
  ASSERT_TRUE(store.admit(low).admitted);         // 89 used: not over 90%; now 90
  ASSERT_TRUE(store.admit(experiment).admitted);  // exactly 90%: not over; now 91

  Admission throttled = store.admit(low);
  ASSERT_FALSE(throttled.admitted);
  EXPECT_EQ(throttled.refusal.limit, "budget");
  EXPECT_EQ(throttled.refusal.scope, "team=team-a (month)");
  EXPECT_EQ(throttled.refusal.message,
            "Budget over 90% used: team=team-a, month: 91.00 of 100.00 USD used; requests with "
            "criticality=low are throttled by priority.");
  throttled = store.admit(experiment);
  ASSERT_FALSE(throttled.admitted);
  EXPECT_NE(throttled.refusal.message.find("purpose=experimentation are throttled by priority"),
            std::string::npos);

  EXPECT_TRUE(store.admit(normal).admitted);
  EXPECT_TRUE(store.admit(other_team).admitted);  // not in the budget's scope
}

TEST(BudgetTest, SoftBudgetsAlsoThrottleLowPriorityKeys) {
  ManualClock clock;
  MemoryLimitStore store({budget("a", {}, BudgetPeriod::kDay, "10", /*hard=*/false)}, clock);
  store.seed_budget_spend("a", usd("9.5"));
  AdmissionRequest low = costing("1", request("k", {{"criticality", "low"}}));
  Admission throttled = store.admit(low);
  ASSERT_FALSE(throttled.admitted);
  EXPECT_EQ(throttled.refusal.scope, "all (day)");
  EXPECT_TRUE(store.admit(costing("1")).admitted);
}

TEST(BudgetTest, ScopeMatchesTagsKeyAndModel) {
  ManualClock clock;
  MemoryLimitStore store(
      {budget("by-key", {{"key", "k1"}}, BudgetPeriod::kDay, "100"),
       budget("by-model", {{"model", "gpt-4o"}}, BudgetPeriod::kDay, "100"),
       budget("by-tags", {{"team", "team-a"}, {"project", "chat"}}, BudgetPeriod::kDay, "100"),
       budget("everything", {}, BudgetPeriod::kDay, "100")},
      clock);
  AdmissionRequest k1 = costing("1", request("k1", {{"team", "team-a"}}));
  AdmissionRequest k2 = costing("2", request("k2", {{"team", "team-a"}, {"project", "chat"}}));
  AdmissionRequest k3 = costing("4", request("k3", {{"team", "team-b"}, {"project", "chat"}}));
  k3.model = "claude-sonnet";
  ASSERT_TRUE(store.admit(k1).admitted);
  ASSERT_TRUE(store.admit(k2).admitted);
  ASSERT_TRUE(store.admit(k3).admitted);
  EXPECT_EQ(store.budget_used("by-key"), usd("1"));
  EXPECT_EQ(store.budget_used("by-model"), usd("3"));
  EXPECT_EQ(store.budget_used("by-tags"), usd("2"));  // needs both team and project
  EXPECT_EQ(store.budget_used("everything"), usd("7"));
  EXPECT_EQ(store.budget_used("no such budget"), Money{});
}

TEST(BudgetTest, SettleReplacesTheReservationOnceAndIgnoresUnknownIds) {
  ManualClock clock;
  MemoryLimitStore store({budget("a", {{"team", "team-a"}}, BudgetPeriod::kDay, "100")}, clock);
  store.settle(12345, 10, usd("5"));  // unknown: nothing happens
  EXPECT_EQ(store.budget_used("a"), Money{});

  Admission a = store.admit(costing("3"));
  ASSERT_TRUE(a.admitted);
  EXPECT_EQ(store.budget_used("a"), usd("3"));
  store.settle(a.reservation, 10, usd("1.25"));
  EXPECT_EQ(store.budget_used("a"), usd("1.25"));
  store.settle(a.reservation, 10, usd("1.25"));
  store.settle(a.reservation, 10, usd("50"));
  EXPECT_EQ(store.budget_used("a"), usd("1.25"));

  Admission failed = store.admit(costing("3"));
  store.settle(failed.reservation, 0, Money{});  // a failed request costs nothing
  EXPECT_EQ(store.budget_used("a"), usd("1.25"));
}

// Reservations live in reused slots: an id settled once must stay settled after its slot
// has been taken by a later admission, and the later one must still settle normally.
TEST(BudgetTest, ASettledIdIsIgnoredAfterItsSlotIsReused) {
  ManualClock clock;
  MemoryLimitStore store({budget("a", {{"team", "team-a"}}, BudgetPeriod::kDay, "100")}, clock);
  Admission first = store.admit(costing("3"));
  ASSERT_TRUE(first.admitted);
  store.settle(first.reservation, 10, usd("1"));
  Admission second = store.admit(costing("4"));  // takes the slot that `first` left
  ASSERT_TRUE(second.admitted);
  EXPECT_NE(second.reservation, first.reservation);
  EXPECT_EQ(store.budget_used("a"), usd("5"));
  store.settle(first.reservation, 10, usd("50"));  // stale: nothing happens
  EXPECT_EQ(store.budget_used("a"), usd("5"));
  store.settle(second.reservation, 10, usd("2"));
  EXPECT_EQ(store.budget_used("a"), usd("3"));

  // Many in flight at once, settled out of order: every one counts once.
  std::vector<uint64_t> ids;
  for (int i = 0; i < 50; ++i) ids.push_back(store.admit(costing("1")).reservation);
  EXPECT_EQ(store.budget_used("a"), usd("53"));
  for (size_t i = 0; i < ids.size(); i += 2) store.settle(ids[i], 1, usd("0.5"));
  for (size_t i = 1; i < ids.size(); i += 2) store.settle(ids[i], 1, usd("0.5"));
  EXPECT_EQ(store.budget_used("a"), usd("28"));
}

TEST(BudgetTest, PeriodsRollOverByUtcDayIsoWeekAndCalendarMonth) {
  ManualClock clock(at("2025-01-31T12:00:00Z"));  // a Friday
  MemoryLimitStore store(
      {budget("day", {}, BudgetPeriod::kDay, "100"), budget("week", {}, BudgetPeriod::kWeek, "100"),
       budget("month", {}, BudgetPeriod::kMonth, "100")},
      clock);
  store.settle(store.admit(costing("1")).reservation, 0, usd("1"));
  clock.set_ms(at("2025-02-01T00:00:00Z"));  // Saturday: new day and month, same week
  store.settle(store.admit(costing("2")).reservation, 0, usd("2"));
  EXPECT_EQ(store.budget_used("day"), usd("2"));
  EXPECT_EQ(store.budget_used("week"), usd("3"));
  EXPECT_EQ(store.budget_used("month"), usd("2"));

  clock.set_ms(at("2025-02-02T23:59:59Z"));  // Sunday: still the same week
  EXPECT_EQ(store.budget_used("week"), usd("3"));
  clock.set_ms(at("2025-02-03T00:00:00Z"));  // Monday: a new ISO week
  EXPECT_EQ(store.budget_used("day"), Money{});
  EXPECT_EQ(store.budget_used("week"), Money{});
  EXPECT_EQ(store.budget_used("month"), usd("2"));
}

TEST(BudgetTest, ReservationSettledAfterRollOverIsDropped) {
  ManualClock clock(at("2025-01-31T23:59:59Z"));
  MemoryLimitStore store({budget("month", {}, BudgetPeriod::kMonth, "100")}, clock);
  AdmissionRequest r = costing("5");
  r.limits.usd_per_day = usd("5");
  r.limits.tokens_per_day = 100;
  r.estimated_tokens = 100;
  Admission late = store.admit(r);
  ASSERT_TRUE(late.admitted);
  EXPECT_EQ(store.budget_used("month"), usd("5"));

  clock.advance_ms(2 * kSecond);  // February, and a new day for the key's quotas
  EXPECT_EQ(store.budget_used("month"), Money{});
  store.settle(late.reservation, 100, usd("4"));  // belongs to January: dropped
  EXPECT_EQ(store.budget_used("month"), Money{});
  // The new day's quotas are whole: the late settlement did not land in them.
  EXPECT_TRUE(store.admit(r).admitted);
}

TEST(BudgetTest, SeededSpendCountsAgainstTheBudget) {
  ManualClock clock;
  MemoryLimitStore store({budget("a", {{"team", "team-a"}}, BudgetPeriod::kWeek, "10")}, clock);
  store.seed_budget_spend("a", usd("9"));
  store.seed_budget_spend("unknown", usd("9"));
  EXPECT_EQ(store.budget_used("a"), usd("9"));
  EXPECT_FALSE(store.admit(costing("1.01")).admitted);
  EXPECT_TRUE(store.admit(costing("1")).admitted);
}

// Many threads admit and settle against one hard budget. Each reservation is the request's
// worst case; with actual costs at most the reservation, admitted spend never exceeds the
// amount; with overruns, it exceeds it by at most their sum.
struct ConcurrencyResult {
  int64_t admitted_actual_nanos = 0;
  int64_t overrun_nanos = 0;
  int64_t admitted = 0;
  int64_t refused = 0;
};

ConcurrencyResult run_concurrently(MemoryLimitStore& store, bool overrun) {
  constexpr int kThreads = 64;
  constexpr int kRequestsPerThread = 300;
  std::atomic<int64_t> actual_total{0}, overrun_total{0}, admitted{0}, refused{0};
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      std::mt19937_64 random(static_cast<uint64_t>(t) + 1);
      std::uniform_int_distribution<int64_t> cents(1, 100);
      std::vector<std::pair<uint64_t, Money>> in_flight;
      auto settle_one = [&] {
        const auto [id, reserved] = in_flight.back();
        in_flight.pop_back();
        // Mostly close to the reservation, so that a store that forgot reservations in
        // flight would overspend.
        int64_t actual =
            std::uniform_int_distribution<int64_t>(reserved.nanos / 2, reserved.nanos)(random);
        if (overrun) {
          const int64_t extra =
              std::uniform_int_distribution<int64_t>(0, reserved.nanos / 2)(random);
          actual = reserved.nanos + extra;
          overrun_total += extra;
        }
        actual_total += actual;
        store.settle(id, 0, Money{actual});
      };
      for (int i = 0; i < kRequestsPerThread; ++i) {
        AdmissionRequest r = costing("0", request("key-" + std::to_string(t % 8)));
        r.worst_case_cost = Money{cents(random) * 10'000'000};
        Admission a = store.admit(r);
        if (a.admitted) {
          ++admitted;
          in_flight.emplace_back(a.reservation, r.worst_case_cost);
        } else {
          ++refused;
        }
        while (in_flight.size() > 16 || (!in_flight.empty() && random() % 4 == 0)) settle_one();
      }
      while (!in_flight.empty()) settle_one();
    });
  }
  for (std::thread& thread : threads) thread.join();
  return ConcurrencyResult{actual_total.load(), overrun_total.load(), admitted.load(),
                           refused.load()};
}

TEST(BudgetConcurrencyTest, HardBudgetIsNeverOverspentUnderConcurrency) {
  ManualClock clock;
  MemoryLimitStore store({budget("a", {{"team", "team-a"}}, BudgetPeriod::kMonth, "100")}, clock);
  const ConcurrencyResult result = run_concurrently(store, /*overrun=*/false);
  EXPECT_GT(result.admitted, 0);
  EXPECT_GT(result.refused, 0);  // demand (about 9,700 USD) far exceeds the budget
  EXPECT_LE(result.admitted_actual_nanos, usd("100").nanos);
  EXPECT_EQ(store.budget_used("a"), Money{result.admitted_actual_nanos});
}

TEST(BudgetConcurrencyTest, OverspendIsBoundedByTheSumOfOverruns) {
  ManualClock clock;
  MemoryLimitStore store({budget("a", {{"team", "team-a"}}, BudgetPeriod::kMonth, "100")}, clock);
  const ConcurrencyResult result = run_concurrently(store, /*overrun=*/true);
  EXPECT_GT(result.refused, 0);
  EXPECT_LE(result.admitted_actual_nanos, usd("100").nanos + result.overrun_nanos);
  EXPECT_EQ(store.budget_used("a"), Money{result.admitted_actual_nanos});
}

}  // namespace
}  // namespace aifinops::gateway
