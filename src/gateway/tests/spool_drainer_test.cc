// SpoolDrainer while the ledger cannot be written: records wait in the spool, the writer
// retries, and each record reaches the ledger exactly once when it can.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "gateway/spool.h"
#include "tests/testing/temp_dir.h"

namespace aifinops::gateway {
namespace {

UsageEvent event(int64_t n) {
  UsageEvent e;
  e.time_ms = 1'735'689'600'000 + n * 1000;
  e.key_id = "team-a-chatbot";
  e.tags = {{"team", "team-a"}};
  e.model = "gpt-4o-mini";
  e.upstream = "openai";
  e.provider = "OpenAI";
  e.operation = "chat";
  e.status = 200;
  e.tokens = {100, 0, 0, 50, 0};
  e.cost = Money{1000 + n};
  return e;
}

size_t ready_files(const std::string& dir) {
  size_t n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    n += entry.path().filename().string().rfind("ready-", 0) == 0;
  return n;
}

TEST(SpoolDrainerTest, KeepsRecordsWhileTheLedgerIsUnavailableAndWritesThemOnceItIsBack) {
  testing::TempDir dir;
  auto spool = Spool::open(dir.file("spool"));
  ASSERT_TRUE(spool.has_value()) << spool.error().message;
  // The ledger's directory does not exist yet: every attempt to open it fails.
  const std::string ledger_dir = dir.file("ledger-volume");
  SpoolDrainer drainer(**spool, ledger_dir + "/ledger.db", 20);
  drainer.start();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE((*spool)->append(event(i)).has_value());
  for (int i = 0; i < 100 && ready_files(dir.file("spool")) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_GE(ready_files(dir.file("spool")), 1u);  // handed over, and kept
  EXPECT_EQ(drainer.drained_records(), 0);
  for (int i = 5; i < 8; ++i) ASSERT_TRUE((*spool)->append(event(i)).has_value());

  std::filesystem::create_directories(ledger_dir);  // the ledger is back
  for (int i = 0; i < 500 && drainer.drained_records() < 8; ++i)  // at most 10 s
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  drainer.stop();
  EXPECT_EQ(drainer.drained_records(), 8);
  EXPECT_EQ(ready_files(dir.file("spool")), 0u);

  auto ledger = ledger::open_ledger(ledger_dir + "/ledger.db");
  ASSERT_TRUE(ledger.has_value()) << ledger.error().message;
  ledger::QuerySpec spec;
  spec.metric = ledger::Metric::kRequests;
  EXPECT_EQ((*ledger)->query(spec)->total, 8);
  spec.metric = ledger::Metric::kEffectiveCost;
  EXPECT_EQ((*ledger)->query(spec)->total, 8 * 1000 + 28);
}

}  // namespace
}  // namespace aifinops::gateway
