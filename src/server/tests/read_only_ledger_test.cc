#include "server/read_only_ledger.h"

#include <gtest/gtest.h>

#include "tests/testing/ledger_builder.h"

namespace aifinops::server {
namespace {

class ReadOnlyLedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    builder_.add({{Attr::kTeam, "team-a"}, {Attr::kModel, "m1"}}, "2025-10-01", "10");
    builder_.add({{Attr::kTeam, "team-a"}, {Attr::kModel, "m2"}}, "2025-10-02", "5");
    builder_.add({{Attr::kTeam, "team-b"}, {Attr::kModel, "m1"}}, "2025-10-01", "100");
    builder_.add({{Attr::kTeam, "team-c"}, {Attr::kModel, "m1"}}, "2025-10-03", "7");
    builder_.commit();
  }
  static ledger::Dimension dim(const char* name) { return *ledger::parse_dimension(name); }
  static std::string money(__int128 v) { return format_decimal(v); }

  testing::LedgerBuilder builder_;
};

TEST_F(ReadOnlyLedgerTest, ARestrictedViewSeesOnlyItsRecordsTotalsIncluded) {
  ReadOnlyLedger view(builder_.ledger(), {{dim("team"), {"team-a"}}});
  ledger::QuerySpec spec;
  spec.group_by = {dim("model")};
  auto result = view.query(spec);
  ASSERT_TRUE(result.has_value()) << result.error().message;
  ASSERT_EQ(result->rows.size(), 2u);
  EXPECT_EQ(result->rows[0].keys[0], "m1");
  EXPECT_EQ(money(result->rows[0].value), "10");
  EXPECT_EQ(money(result->total), "15");
}

TEST_F(ReadOnlyLedgerTest, SeveralAllowedValuesMergeIntoOneAnswerInLedgerOrder) {
  ReadOnlyLedger view(builder_.ledger(), {{dim("team"), {"team-a", "team-c"}}});
  ledger::QuerySpec spec;
  spec.group_by = {dim("day"), dim("model")};
  auto result = view.query(spec);
  ASSERT_TRUE(result.has_value()) << result.error().message;
  ASSERT_EQ(result->rows.size(), 3u);
  EXPECT_EQ(result->rows[0].keys, (std::vector<std::string>{"2025-10-01", "m1"}));
  EXPECT_EQ(money(result->rows[0].value), "10");
  EXPECT_EQ(result->rows[2].keys, (std::vector<std::string>{"2025-10-03", "m1"}));
  EXPECT_EQ(money(result->total), "22");
  spec.group_by = {dim("model")};
  auto by_model = view.query(spec);
  ASSERT_TRUE(by_model.has_value());
  EXPECT_EQ(money(by_model->rows[0].value), "17");  // m1 of team-a and team-c added up
}

TEST_F(ReadOnlyLedgerTest, AnUnrestrictedViewAnswersLikeTheLedger) {
  ReadOnlyLedger view(builder_.ledger(), {});
  ledger::QuerySpec spec;
  spec.group_by = {dim("team")};
  auto direct = builder_.ledger().query(spec);
  auto viewed = view.query(spec);
  ASSERT_TRUE(direct.has_value() && viewed.has_value());
  EXPECT_EQ(money(viewed->total), money(direct->total));
  EXPECT_EQ(viewed->rows.size(), direct->rows.size());
}

TEST_F(ReadOnlyLedgerTest, RefusesWritesAndHidesOtherTeamsInBatchesAndNotes) {
  ASSERT_TRUE(builder_.ledger().note("budget_alert", "b-month|80%|2025-10", "team-b").has_value());
  ReadOnlyLedger view(builder_.ledger(), {{dim("team"), {"team-a"}}});
  EXPECT_FALSE(view.begin_batch(ledger::BatchInfo{}).has_value());
  EXPECT_FALSE(view.note_once("k", "x", "y").has_value());
  auto batches = view.batches();
  ASSERT_TRUE(batches.has_value());
  ASSERT_EQ(batches->size(), 1u);
  EXPECT_EQ((*batches)[0].effective_cost, 0);
  EXPECT_TRUE((*batches)[0].source_path.empty());
  auto notes = view.notes("budget_alert");
  ASSERT_TRUE(notes.has_value());
  ASSERT_EQ(notes->size(), 1u);
  EXPECT_TRUE((*notes)[0].key.empty());
  EXPECT_TRUE((*notes)[0].detail.empty());
  EXPECT_FALSE((*notes)[0].recorded_at.empty());
}

}  // namespace
}  // namespace aifinops::server
