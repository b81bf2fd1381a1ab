// The rollup sums serve reads into memory before it accepts calls
// (SqliteLedger::preload_rollups): answers from a preloaded cache are the ones SQLite gives,
// and a commit after the preload is seen.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/money.h"
#include "core/time.h"
#include "ledger/sqlite/sqlite_ledger.h"
#include "tests/testing/ledger_builder.h"

namespace aifinops::server {
namespace {

using ledger::Metric;
using ledger::QuerySpec;
using ledger::SqliteLedger;

/// Every row of a result as text, to compare two answers whole.
std::string rows_text(const ledger::QueryResult& r) {
  std::string s = format_decimal(r.total) + "\n";
  for (const ledger::QueryRow& row : r.rows) {
    for (const std::string& k : row.keys) s += k + "|";
    s += format_decimal(row.value) + "\n";
  }
  return s;
}

class RollupPreloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Three months of two teams' spend and tokens, a GPU host in the last.
    for (const char* day : {"2025-01-03", "2025-01-20", "2025-02-07", "2025-03-01", "2025-03-30"})
      for (const char* team : {"alpha", "beta"})
        builder_.add({{Attr::kTeam, team}, {Attr::kServiceName, "LLM"}, {Attr::kModel, "gpt-4o"}},
                     std::string(day) + "T10:00:00Z", team[0] == 'a' ? "1.5" : "2.25",
                     [](UsageFacts& f) {
                       f.input_tokens = 1000;
                       f.output_tokens = 300;
                       f.requests = 4;
                     });
    builder_.commit();
  }
  std::string path() const { return builder_.dir().file("ledger.db"); }

  /// The answer of a connection that caches nothing it did not read itself.
  std::string plain(const QuerySpec& spec) {
    auto fresh = SqliteLedger::open(path());
    EXPECT_TRUE(fresh.has_value());
    auto r = (*fresh)->query(spec);
    EXPECT_TRUE(r.has_value()) << r.error().message;
    return r ? rows_text(*r) : "";
  }

  testing::LedgerBuilder builder_;
};

std::vector<QuerySpec> specs() {
  std::vector<QuerySpec> out;
  for (const char* by : {"day,team", "month,team", "team", "week"}) {
    for (Metric m : {Metric::kEffectiveCost, Metric::kTokens, Metric::kRequests}) {
      QuerySpec s;
      std::string rest = by;
      for (size_t at = 0; at <= rest.size();) {
        size_t comma = rest.find(',', at);
        auto d = ledger::parse_dimension(rest.substr(at, comma - at));
        EXPECT_TRUE(d.has_value());
        s.group_by.push_back(*d);
        if (comma == std::string::npos) break;
        at = comma + 1;
      }
      s.metric = m;
      out.push_back(s);
      s.from = *parse_timestamp("2025-02-01");  // a range inside the preloaded months
      s.to = *parse_timestamp("2025-03-15");
      out.push_back(s);
    }
  }
  return out;
}

TEST_F(RollupPreloadTest, AnswersFromPreloadedSumsAreSqlitesAnswers) {
  auto shared = SqliteLedger::new_rollup_cache();
  auto loader = SqliteLedger::open(path(), shared);
  ASSERT_TRUE(loader.has_value());
  // Effective cost for every month, tokens for the newest only; requests not at all.
  auto rows = (*loader)->preload_rollups({{Metric::kEffectiveCost, 0}, {Metric::kTokens, 1}});
  ASSERT_TRUE(rows.has_value()) << rows.error().message;
  // Month rollup: 2 teams x 3 months, each metric; day rollup: 10 cost rows, 4 token rows.
  EXPECT_EQ(*rows, 2u * 6 + 10 + 4);
  auto reader = SqliteLedger::open(path(), shared);
  ASSERT_TRUE(reader.has_value());
  for (const QuerySpec& spec : specs()) {
    auto r = (*reader)->query(spec);
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_EQ(rows_text(*r), plain(spec));
  }
}

TEST_F(RollupPreloadTest, ACommitAfterThePreloadIsSeen) {
  auto shared = SqliteLedger::new_rollup_cache();
  auto reader = SqliteLedger::open(path(), shared);
  ASSERT_TRUE(reader.has_value());
  ASSERT_TRUE((*reader)->preload_rollups({{Metric::kEffectiveCost, 0}}).has_value());
  QuerySpec by_day;
  by_day.group_by = {*ledger::parse_dimension("day")};
  EXPECT_EQ(format_decimal((*reader)->query(by_day)->total), "18.75");
  builder_.add({{Attr::kTeam, "gamma"}}, "2025-03-31T10:00:00Z", "100");
  builder_.commit();
  EXPECT_EQ(format_decimal((*reader)->query(by_day)->total), "118.75");
  EXPECT_EQ(rows_text(*(*reader)->query(by_day)), plain(by_day));
}

TEST_F(RollupPreloadTest, AnEmptyLedgerPreloadsNothing) {
  testing::TempDir dir;
  auto empty = SqliteLedger::open(dir.file("empty.db"), SqliteLedger::new_rollup_cache());
  ASSERT_TRUE(empty.has_value());
  auto rows = (*empty)->preload_rollups({{Metric::kEffectiveCost, 0}, {Metric::kTokens, 2}});
  ASSERT_TRUE(rows.has_value()) << rows.error().message;
  EXPECT_EQ(*rows, 0u);
}

}  // namespace
}  // namespace aifinops::server
