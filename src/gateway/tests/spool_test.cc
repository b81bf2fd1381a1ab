#include "gateway/spool.h"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <vector>

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
  // A record torn by a crash is quarantined, not lost silently: here a process stopped
  // mid-record, in the reserved room of its file (zeros after the torn bytes).
  ASSERT_TRUE((*spool)->append(sample_event(10)).has_value());
  std::string current = dir.file("spool") + "/current.jsonl";
  std::string crashed = to_json_line(sample_event(10)) + "{\"t\":17" + std::string(4096, '\0');
  { std::ofstream(dir.file("crashed.jsonl")) << crashed; }
  EXPECT_EQ(*drainer.drain_now(), 1);
  std::filesystem::rename(dir.file("crashed.jsonl"), dir.file("spool") + "/ready-9.jsonl");
  EXPECT_EQ(*drainer.drain_now(), 1);

  auto ledger = ledger::open_ledger(dir.file("ledger.db"));
  ledger::QuerySpec spec;
  spec.metric = ledger::Metric::kRequests;
  spec.group_by = {*ledger::parse_dimension("team"), *ledger::parse_dimension("model")};
  auto result = (*ledger)->query(spec);
  ASSERT_TRUE(result.has_value()) << result.error().message;
  ASSERT_EQ(result->rows.size(), 1u);
  EXPECT_EQ(result->rows[0].keys, (std::vector<std::string>{"team-a", "gpt-4o-mini"}));
  EXPECT_EQ(result->total, 12);
  spec.metric = ledger::Metric::kEffectiveCost;
  spec.group_by.clear();
  EXPECT_EQ((*ledger)->query(spec)->total, 1234 * 12 + 55 + 10);
}

TEST(SpoolTest, LinesAreWrittenFiguresFirstAndReadInAnyOrder) {
  UsageEvent e = sample_event(2);
  std::string line = to_json_line(e);
  EXPECT_EQ(line.rfind("{\"t\":1735689602000,\"status\":200,\"in\":102,", 0), 0u) << line;
  EXPECT_NE(line.find(",\"key\":\"team-a-chatbot\",\"tags\":{"), std::string::npos) << line;
  // The order of earlier versions (descriptive members first) still reads.
  std::string older =
      R"({"t":1735689602000,"key":"team-a-chatbot","tags":{"project":"chat\"bot","team":"team-a"},)"
      R"("model":"gpt-4o-mini","upstream":"openai","provider":"OpenAI","operation":"chat",)"
      R"("status":200,"in":102,"cached":20,"cache_write":0,"out":50,"reasoning":10,"cost":1236,)"
      R"("price":0,"latency_ms":12,"ttft_ms":3,"cache_hit":0,"saving":0,"estimated":0,"partial":0})";
  UsageEvent back;
  ASSERT_TRUE(from_json_line(older, back));
  EXPECT_EQ(to_json_line(back), line);
}

TEST(SpoolTest, RecordsOfAProcessKilledWithoutCleanUpAreDrainedAfterTheRestart) {
  testing::TempDir dir;
  std::string spool_dir = dir.file("spool");
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Appends and dies at once: no destructor trims or closes the mapped file.
    auto spool = Spool::open(spool_dir);
    if (!spool) _exit(2);
    for (int i = 0; i < 5; ++i)
      if (!(*spool)->append(sample_event(i))) _exit(3);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  auto spool = Spool::open(spool_dir);  // hands the old file over
  ASSERT_TRUE(spool.has_value()) << spool.error().message;
  SpoolDrainer drainer(**spool, dir.file("ledger.db"));
  auto drained = drainer.drain_now();
  ASSERT_TRUE(drained.has_value()) << drained.error().message;
  EXPECT_EQ(*drained, 5);
}

TEST(SpoolTest, AFullFileIsHandedOverByTheWriter) {
  testing::TempDir dir;
  auto spool = Spool::open(dir.file("spool"));
  ASSERT_TRUE(spool.has_value()) << spool.error().message;
  // 24 MB: the first full file is replaced by the prepared spare, the next by a new file.
  for (int i = 0; i < 80; ++i) {
    UsageEvent e = sample_event(i);
    e.model = std::string(300'000, 'm');  // a few of these fill the reserved room
    ASSERT_TRUE((*spool)->append(e).has_value());
  }
  SpoolDrainer drainer(**spool, dir.file("ledger.db"));
  auto drained = drainer.drain_now();
  ASSERT_TRUE(drained.has_value()) << drained.error().message;
  EXPECT_EQ(*drained, 80);
  // Every ready file went into the ledger; what is left is the (empty) current file and
  // the spare that the next full file will use.
  std::vector<std::string> left;
  for (const auto& entry : std::filesystem::directory_iterator(dir.file("spool")))
    left.push_back(entry.path().filename().string());
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, (std::vector<std::string>{"current.jsonl", "spare.jsonl"}));
  ASSERT_TRUE((*spool)->append(sample_event(1)).has_value());
  drained = drainer.drain_now();
  ASSERT_TRUE(drained.has_value()) << drained.error().message;
  EXPECT_EQ(*drained, 1);
}

}  // namespace
}  // namespace aifinops::gateway
