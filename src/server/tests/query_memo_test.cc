// QueryMemo and MemoLedger: query answers shared per ledger version, keyed by the whole
// query, bounded by rows.
#include "server/query_memo.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "core/money.h"
#include "core/time.h"
#include "tests/testing/ledger_builder.h"

namespace aifinops::server {
namespace {

ledger::QuerySpec by(const std::string& dimension) {
  ledger::QuerySpec spec;
  spec.group_by.push_back(*ledger::parse_dimension(dimension));
  return spec;
}

class QueryMemoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    builder_.add({{Attr::kTeam, "alpha"}}, "2025-03-01T10:00:00Z", "10");
    builder_.add({{Attr::kTeam, "beta"}}, "2025-03-02T10:00:00Z", "5");
    builder_.commit();
  }
  testing::LedgerBuilder builder_;
};

TEST_F(QueryMemoTest, AnUnchangedVersionIsAnsweredFromMemory) {
  QueryMemo memo;
  MemoLedger first(builder_.ledger(), memo, "v1");
  auto before = first.query(by("team"));
  ASSERT_TRUE(before.has_value());
  EXPECT_EQ(format_decimal(before->total), "15");
  // The records change, but the version the caller read does not: the kept answer is
  // served (the ledger is not asked again).
  builder_.add({{Attr::kTeam, "gamma"}}, "2025-03-03T10:00:00Z", "100");
  builder_.commit();
  MemoLedger again(builder_.ledger(), memo, "v1");
  EXPECT_EQ(format_decimal(again.query(by("team"))->total), "15");
  EXPECT_EQ(again.query(by("team"))->rows.size(), 2u);
  // A new version asks the ledger and drops the old answers.
  MemoLedger after(builder_.ledger(), memo, "v2");
  auto now = after.query(by("team"));
  EXPECT_EQ(format_decimal(now->total), "115");
  EXPECT_EQ(now->rows.size(), 3u);
  EXPECT_EQ(memo.cells(), 7u);  // three rows of a key and a value, and the entry itself
}

TEST_F(QueryMemoTest, EveryFieldOfTheQueryIsPartOfTheKey) {
  std::set<std::string> keys;
  ledger::QuerySpec base = by("team");
  keys.insert(QueryMemo::key_of(base));
  auto with = [&](auto change) {
    ledger::QuerySpec s = base;
    change(s);
    keys.insert(QueryMemo::key_of(s));
  };
  with([](auto& s) { s.from = 0; });
  with([](auto& s) { s.to = 0; });
  with([](auto& s) { s.metric = ledger::Metric::kTokens; });
  with([](auto& s) { s.group_by = {*ledger::parse_dimension("project")}; });
  with([](auto& s) { s.group_by.push_back(*ledger::parse_dimension("day")); });
  with([](auto& s) { s.group_by = {*ledger::parse_dimension("tag:Owner")}; });
  with([](auto& s) { s.group_by = {*ledger::parse_dimension("tag:owner")}; });
  with([](auto& s) { s.filters.push_back({*ledger::parse_dimension("team"), "alpha"}); });
  with([](auto& s) { s.filters.push_back({*ledger::parse_dimension("team"), "beta"}); });
  with([](auto& s) { s.filters.push_back({*ledger::parse_dimension("project"), "alpha"}); });
  EXPECT_EQ(keys.size(), 11u);
  // The same question asked twice is one key.
  EXPECT_EQ(QueryMemo::key_of(by("team")), QueryMemo::key_of(base));
}

TEST_F(QueryMemoTest, FilteredAndUnfilteredAnswersAreKeptApart) {
  QueryMemo memo;
  MemoLedger ledger(builder_.ledger(), memo, "v1");
  ledger::QuerySpec alpha = by("team");
  alpha.filters.push_back({*ledger::parse_dimension("team"), "alpha"});
  EXPECT_EQ(format_decimal(ledger.query(by("team"))->total), "15");
  EXPECT_EQ(format_decimal(ledger.query(alpha)->total), "10");
  EXPECT_EQ(format_decimal(ledger.query(by("team"))->total), "15");
}

TEST_F(QueryMemoTest, TheLeastRecentlyUsedAnswersGoPastTheBound) {
  QueryMemo memo(/*max_cells=*/24);
  MemoLedger ledger(builder_.ledger(), memo, "v1");
  ASSERT_TRUE(ledger.query(by("team")).has_value());  // two rows: 2 x 2 + 1 cells
  ASSERT_TRUE(ledger.query(by("day")).has_value());   // 5
  ASSERT_TRUE(ledger.query(by("team")).has_value());  // team is now the more recent
  for (const char* one_row : {"month", "week", "project", "provider"})
    ASSERT_TRUE(ledger.query(by(one_row)).has_value());  // 3 each
  EXPECT_EQ(memo.cells(), 22u);
  ASSERT_TRUE(ledger.query(by("service")).has_value());  // 25 > 24: day goes
  EXPECT_EQ(memo.cells(), 20u);
  EXPECT_NE(memo.find("v1", QueryMemo::key_of(by("team"))), nullptr);
  EXPECT_EQ(memo.find("v1", QueryMemo::key_of(by("day"))), nullptr);
  EXPECT_EQ(memo.find("v2", QueryMemo::key_of(by("team"))), nullptr);
}

TEST_F(QueryMemoTest, AnAnswerLargerThanAQuarterOfTheBoundIsNotKept) {
  QueryMemo memo(/*max_cells=*/24);
  MemoLedger ledger(builder_.ledger(), memo, "v1");
  ledger::QuerySpec wide = by("team");
  wide.group_by.push_back(*ledger::parse_dimension("day"));  // two rows of three: 7 > 6
  auto answer = ledger.query(wide);
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->rows.size(), 2u);
  EXPECT_EQ(memo.cells(), 0u);
  EXPECT_EQ(memo.find("v1", QueryMemo::key_of(wide)), nullptr);
}

}  // namespace
}  // namespace aifinops::server
