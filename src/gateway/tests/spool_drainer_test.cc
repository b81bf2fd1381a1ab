// SpoolDrainer while the ledger cannot be written: records wait in the spool, the writer
// retries, and each record reaches the ledger exactly once when it can.
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

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


/// Whether the process may take a thread out of SCHED_IDLE (CAP_SYS_NICE, or an RLIMIT_NICE
/// that allows niceness 10): the drainer writes at idle priority only then.
bool may_leave_idle_policy() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NICE, &limit) == 0 &&
      (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur >= 10))
    return true;
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capget, &header, data) != 0) return false;
  return (data[CAP_SYS_NICE / 32].effective & (1u << (CAP_SYS_NICE % 32))) != 0;
}

/// Whether a thread of this process runs under SCHED_IDLE (field 41 of its stat).
bool some_thread_is_idle() {
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream in(task.path() / "stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t paren = text.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream fields(text.substr(paren + 1));
    std::string field;
    for (int i = 3; i <= 41 && fields >> field; ++i)
      if (i == 41 && field == std::to_string(SCHED_IDLE)) return true;
  }
  return false;
}

TEST(SpoolDrainerTest, WritesAtIdlePriorityAndStillCatchesUpOnACpuThatIsNeverIdle) {
  if (!may_leave_idle_policy())
    GTEST_SKIP() << "needs CAP_SYS_NICE or RLIMIT_NICE >= 10: the drainer stays at niceness 10";
  // Everything on one CPU, kept busy by two threads at normal priority: an idle-priority
  // thread alone would get some 0.15% of it (weight 3 against 2 x 1024) and need tens of
  // seconds for this backlog; the guard gives the drainer its niceness-10 share back after
  // two seconds, and it finishes within a few.
  cpu_set_t saved;
  ASSERT_EQ(sched_getaffinity(0, sizeof saved, &saved), 0);
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(sched_getcpu(), &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);  // inherited by the threads below
  std::atomic<bool> stop{false};
  std::vector<std::thread> busy;
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 2; ++i)
    busy.emplace_back([&] {
      // Bounded: never longer than a minute, whatever happens to the test.
      while (!stop.load(std::memory_order_relaxed) &&
             std::chrono::steady_clock::now() - started < std::chrono::seconds(60)) {
      }
    });

  testing::TempDir dir;
  auto spool = Spool::open(dir.file("spool"));
  ASSERT_TRUE(spool.has_value()) << spool.error().message;
  constexpr int kRecords = 10'000;
  for (int i = 0; i < kRecords; ++i) ASSERT_TRUE((*spool)->append(event(i)).has_value());
  SpoolDrainer drainer(**spool, dir.file("ledger.db"), 50);
  drainer.start();
  bool seen_idle = false;
  for (int i = 0; i < 2000 && drainer.drained_records() < kRecords; ++i) {  // at most 20 s
    seen_idle = seen_idle || some_thread_is_idle();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const int64_t drained = drainer.drained_records();
  stop = true;
  for (std::thread& t : busy) t.join();
  drainer.stop();
  sched_setaffinity(0, sizeof saved, &saved);
  EXPECT_TRUE(seen_idle) << "the drainer never wrote at idle priority";
  EXPECT_EQ(drained, kRecords) << "the ledger fell behind without bound";
  EXPECT_EQ(drainer.drained_records(), kRecords);
}

}  // namespace
}  // namespace aifinops::gateway
