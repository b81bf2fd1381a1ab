#include "gateway/spool.h"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/testing/temp_dir.h"

namespace aifinops::gateway {
namespace {

UsageEvent sample_event(int64_t n) {
  UsageEvent e;
  e.time_ms = 1'735'689'600'000 + n * 1000;
  e.key_id = "team-a-chatbot";
  e.tags = {{"team", "team-a"}, {"project", "chat\"bot"}};
  e.model = "gpt-4o-mini";
  e.upstream = "openai";
  e.provider = "OpenAI";
  e.operation = "chat";
  e.status = 200;
  e.tokens = {100 + n, 20, 0, 50, 10};
  e.cost = Money{1234 + n};
  e.latency_ms = 12;
  e.ttft_ms = 3;
  return e;
}

TEST(SpoolTest, JsonLinesRoundTrip) {
  UsageEvent e = sample_event(1), back;
  e.cache_hit = true;
  e.cache_saving = Money{999};
  e.partial = true;
  ASSERT_TRUE(from_json_line(to_json_line(e), back));
  EXPECT_EQ(back.key_id, e.key_id);
  EXPECT_EQ(back.tags, e.tags);
  EXPECT_EQ(back.tokens, e.tokens);
  EXPECT_EQ(back.cost, e.cost);
  EXPECT_TRUE(back.cache_hit && back.partial);
  EXPECT_EQ(back.cache_saving, e.cache_saving);
  EXPECT_FALSE(from_json_line("{\"t\":1,\"key\":", back));  // torn write
}

TEST(SpoolTest, DrainsIntoTheLedgerExactlyOnce) {
  testing::TempDir dir;
  auto spool = Spool::open(dir.file("spool"));
  ASSERT_TRUE(spool.has_value()) << spool.error().message;
  for (int i = 0; i < 10; ++i) ASSERT_TRUE((*spool)->append(sample_event(i)).has_value());
  // A crash between committing a batch and removing its file: the file is still there.
  ASSERT_TRUE((*spool)->rotate().has_value());
  std::string ready = dir.file("spool") + "/ready-1.jsonl";
  std::string copy = dir.file("copy.jsonl");
  std::filesystem::copy_file(ready, copy);
  SpoolDrainer drainer(**spool, dir.file("ledger.db"));
  auto drained = drainer.drain_now();
  ASSERT_TRUE(drained.has_value()) << drained.error().message;
  EXPECT_EQ(*drained, 10);
  std::filesystem::copy_file(copy, ready);
  EXPECT_EQ(*drainer.drain_now(), 0);
  // A torn last line is quarantined, not lost silently.
  ASSERT_TRUE((*spool)->append(sample_event(10)).has_value());
  { std::ofstream(dir.file("spool") + "/current.jsonl", std::ios::app) << "{\"t\":17"; }
  EXPECT_EQ(*drainer.drain_now(), 1);

  auto ledger = ledger::open_ledger(dir.file("ledger.db"));
  ledger::QuerySpec spec;
  spec.metric = ledger::Metric::kRequests;
  spec.group_by = {*ledger::parse_dimension("team"), *ledger::parse_dimension("model")};
  auto result = (*ledger)->query(spec);
  ASSERT_TRUE(result.has_value()) << result.error().message;
  ASSERT_EQ(result->rows.size(), 1u);
  EXPECT_EQ(result->rows[0].keys, (std::vector<std::string>{"team-a", "gpt-4o-mini"}));
  EXPECT_EQ(result->total, 11);
  spec.metric = ledger::Metric::kEffectiveCost;
  spec.group_by.clear();
  EXPECT_EQ((*ledger)->query(spec)->total, 1234 * 11 + 55);
}

}  // namespace
}  // namespace aifinops::gateway
