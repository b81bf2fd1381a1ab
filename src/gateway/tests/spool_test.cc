#include "gateway/spool.h"

#include <gtest/gtest.h>

#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
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

TEST(SpoolTest, TheRepeatMarkRoundTripsAndLinesWithoutItReadAsUntracked) {
  UsageEvent e = sample_event(3), back;
  e.repeat = RepeatMark::kRepeat;
  std::string line = to_json_line(e);
  EXPECT_NE(line.find(",\"partial\":0,\"repeat\":2,\"key\":"), std::string::npos) << line;
  ASSERT_TRUE(from_json_line(line, back));
  EXPECT_EQ(back.repeat, RepeatMark::kRepeat);
  e.repeat = RepeatMark::kFirst;
  ASSERT_TRUE(from_json_line(to_json_line(e), back));
  EXPECT_EQ(back.repeat, RepeatMark::kFirst);
  // A line of a version before the count: no "repeat" member.
  std::string earlier = line;
  earlier.erase(earlier.find(",\"repeat\":2"), std::string_view(",\"repeat\":2").size());
  ASSERT_TRUE(from_json_line(earlier, back));
  EXPECT_EQ(back.repeat, RepeatMark::kUntracked);
  EXPECT_EQ(back.tokens, e.tokens);
}

/// The records table's flags and the Extra of each record of a SQLite ledger, in line order.
std::vector<std::pair<int64_t, std::string>> flags_and_extra(const std::string& ledger_path) {
  std::vector<std::pair<int64_t, std::string>> out;
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(ledger_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db,
                               "SELECT r.flags, a.extra FROM records r JOIN attributes a "
                               "ON a.id = r.attributes_id ORDER BY r.batch_id, r.line",
                               -1, &st, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(db);
  while (st != nullptr && sqlite3_step(st) == SQLITE_ROW)
    out.emplace_back(sqlite3_column_int64(st, 0),
                     reinterpret_cast<const char*>(sqlite3_column_text(st, 1)));
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

TEST(SpoolTest, ASpoolFileOfAnEarlierVersionIsDrainedBesideRepeatMarkedRecords) {
  testing::TempDir dir;
  std::string spool_dir = dir.file("spool");
  std::filesystem::create_directories(spool_dir);
  // A ready file an earlier gateway left (figures first, no "repeat"), written as it wrote
  // it, then records of this version: first seen, a repeat, a cache hit that repeats.
  UsageEvent first = sample_event(1), repeat = sample_event(2), hit = sample_event(3);
  first.repeat = RepeatMark::kFirst;
  repeat.repeat = RepeatMark::kRepeat;
  hit.repeat = RepeatMark::kRepeat;
  hit.cache_hit = true;
  const std::string old_line =
      R"({"t":1735689602000,"status":200,"in":102,"cached":20,"cache_write":0,"out":50,"reasoning":10,)"
      R"("cost":1236,"price":0,"latency_ms":12,"ttft_ms":3,"cache_hit":0,"saving":0,"estimated":0,)"
      R"("partial":0,"key":"team-a-chatbot","tags":{"project":"chat\"bot","team":"team-a"},)"
      R"("model":"gpt-4o-mini","upstream":"openai","provider":"OpenAI","operation":"chat"})";
  {
    std::ofstream(spool_dir + "/ready-1.jsonl") << old_line << "\n" << old_line << "\n";
  }
  auto spool = Spool::open(spool_dir);
  ASSERT_TRUE(spool.has_value()) << spool.error().message;
  for (const UsageEvent& e : {first, repeat, repeat, hit})
    ASSERT_TRUE((*spool)->append(e).has_value());
  SpoolDrainer drainer(**spool, dir.file("ledger.db"));
  auto drained = drainer.drain_now();
  ASSERT_TRUE(drained.has_value()) << drained.error().message;
  EXPECT_EQ(*drained, 6);

  const std::string base = R"({"upstream":"openai","status":"200","cache_hit":"false")";
  const std::vector<std::pair<int64_t, std::string>> expected = {
      {kFlagPricedFromCatalog, base + "}"},  // the earlier version's: no count
      {kFlagPricedFromCatalog, base + "}"},
      {kFlagPricedFromCatalog, base + R"(,"repeat":"false"})"},
      {kFlagPricedFromCatalog | kFlagRepeat, base + R"(,"repeat":"true"})"},
      {kFlagPricedFromCatalog | kFlagRepeat, base + R"(,"repeat":"true"})"},
      {kFlagPricedFromCatalog | kFlagRepeat | kFlagCacheHit,
       R"({"upstream":"openai","status":"200","cache_hit":"true","repeat":"true"})"}};
  EXPECT_EQ(flags_and_extra(dir.file("ledger.db")), expected);
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

TEST(SpoolTest, TheCurrentFileOfAnEarlierVersionIsRecoveredAndAnEmptySpareRemoved) {
  testing::TempDir dir;
  std::string spool_dir = dir.file("spool");
  std::filesystem::create_directories(spool_dir);
  // What a version before writing-<k>.jsonl left after kill -9: records, then the zeros of
  // the reserved room, and a prepared spare that never held a record.
  {
    std::ofstream(spool_dir + "/current.jsonl")
        << to_json_line(sample_event(1)) << to_json_line(sample_event(2)) << std::string(4096, '\0');
    std::ofstream(spool_dir + "/spare.jsonl") << std::string(8192, '\0');
  }
  auto spool = Spool::open(spool_dir);
  ASSERT_TRUE(spool.has_value()) << spool.error().message;
  EXPECT_FALSE(std::filesystem::exists(spool_dir + "/spare.jsonl"));
  SpoolDrainer drainer(**spool, dir.file("ledger.db"));
  auto drained = drainer.drain_now();
  ASSERT_TRUE(drained.has_value()) << drained.error().message;
  EXPECT_EQ(*drained, 2);
}

TEST(SpoolTest, AFullFileIsHandedOverByTheWriter) {
  testing::TempDir dir;
  auto spool = Spool::open(dir.file("spool"));
  ASSERT_TRUE(spool.has_value()) << spool.error().message;
  // 24 MB: each full file is replaced by the prepared one (or, if the spool's thread has not
  // made it yet, by a file made there and then).
  for (int i = 0; i < 80; ++i) {
    UsageEvent e = sample_event(i);
    e.model = std::string(300'000, 'm');  // a few of these fill the reserved room
    ASSERT_TRUE((*spool)->append(e).has_value());
  }
  SpoolDrainer drainer(**spool, dir.file("ledger.db"));
  auto drained = drainer.drain_now();
  ASSERT_TRUE(drained.has_value()) << drained.error().message;
  EXPECT_EQ(*drained, 80);
  // Every ready file went into the ledger; what is left is the (empty) current file and the
  // one prepared to follow it.
  ASSERT_TRUE((*spool)->wait_until_prepared(10'000));
  std::vector<std::string> left;
  for (const auto& entry : std::filesystem::directory_iterator(dir.file("spool")))
    left.push_back(entry.path().filename().string());
  ASSERT_EQ(left.size(), 2u);
  for (const std::string& name : left) EXPECT_EQ(name.rfind("writing-", 0), 0u) << name;
  ASSERT_TRUE((*spool)->append(sample_event(1)).has_value());
  drained = drainer.drain_now();
  ASSERT_TRUE(drained.has_value()) << drained.error().message;
  EXPECT_EQ(*drained, 1);
}

/// Minor page faults taken by the calling thread so far.
long thread_page_faults() {
  rusage usage{};
  getrusage(RUSAGE_THREAD, &usage);
  return usage.ru_minflt + usage.ru_majflt;
}

// The appending thread is a gateway I/O thread: a page fault there enters the file system
// (and on ext4 can wait for its journal) while every request in flight waits. The spool's
// own thread gives the pages ahead of the last record their memory instead, and makes the
// next file, so appending is a copy, even across files.
TEST(SpoolTest, AppendingTakesNoPageFaultOnceTheSpoolIsPrepared) {
  testing::TempDir dir;
  auto spool = Spool::open(dir.file("spool"));
  ASSERT_TRUE(spool.has_value()) << spool.error().message;
  UsageEvent e = sample_event(1);
  e.model = std::string(64 * 1024 - 400, 'm');  // a record of about 64 KiB
  std::string description;
  append_usage_description(description, e.key_id, e.tags, e.model, e.upstream, e.provider,
                           e.operation);
  // One record first: the code and the stack it runs on take their first faults here.
  ASSERT_TRUE((*spool)->append(e, description).has_value());
  int64_t faults = 0, appended = 1;
  // 20 MB in steps of 128 KiB (a quarter of what is kept ahead), letting the spool's thread
  // catch up between steps as it does between bursts of requests: two files fill up.
  for (int step = 0; step < 160; ++step) {
    ASSERT_TRUE((*spool)->wait_until_prepared(10'000)) << "step " << step;
    const long before = thread_page_faults();
    for (int i = 0; i < 2; ++i) {
      e.time_ms += 1;  // files of equal content would be taken for one batch ingested twice
      ASSERT_TRUE((*spool)->append(e, description).has_value());
      ++appended;
    }
    faults += thread_page_faults() - before;
  }
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer checks each copy against its shadow memory, whose pages are mapped at
  // first use: two faults per 64 KiB record that are not the spool's. Without the spool's
  // thread there would be one more for each of the 16 pages a record fills.
  EXPECT_LE(faults, 2 * appended) << "page faults on the appending thread";
#else
  EXPECT_EQ(faults, 0) << "page faults on the appending thread over " << appended << " records";
#endif
  SpoolDrainer drainer(**spool, dir.file("ledger.db"));
  auto drained = drainer.drain_now();
  ASSERT_TRUE(drained.has_value()) << drained.error().message;
  EXPECT_EQ(*drained, appended);
}

/// The VmFlags of each mapping of a file whose path contains `part` (/proc/self/smaps).
std::vector<std::string> mapping_flags(const std::string& part) {
  std::ifstream in("/proc/self/smaps");
  std::vector<std::string> flags;
  bool inside = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmFlags:", 0) == 0) {
      if (inside) flags.push_back(line);
      inside = false;
    } else if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) &&
               line.find('-') < line.find(' ')) {
      inside = line.find(part) != std::string::npos;  // the header line of a mapping
    }
  }
  return flags;
}

// The spool's thread shares the CPU with the I/O threads: it gives pages their memory in
// steps with a yield between them, and its mappings have no read-around, so that a first
// fault does not zero the device's whole read-ahead window (8 MiB on the test machine, 1.2
// to 1.7 ms in one go) while an I/O thread waits for the CPU.
TEST(SpoolTest, TheSpoolThreadYieldsBetweenStepsAndItsMappingsHaveNoReadAround) {
  testing::TempDir dir;
  auto spool = Spool::open(dir.file("spool"));
  ASSERT_TRUE(spool.has_value()) << spool.error().message;
  ASSERT_TRUE((*spool)->wait_until_prepared(10'000));
  // From the first 256 KiB to 512 KiB ahead of the (no) records, in 32 KiB steps, far
  // ahead of the appends: a yield after each.
  const int64_t at_open = (*spool)->populate_yields();
  EXPECT_GE(at_open, 8);
  UsageEvent e = sample_event(1);
  e.model = std::string(64 * 1024, 'm');
  for (int i = 0; i < 5; ++i) {  // 320 KiB of records: the room ahead is topped up
    e.time_ms += 1;
    ASSERT_TRUE((*spool)->append(e).has_value());
    ASSERT_TRUE((*spool)->wait_until_prepared(10'000));
  }
  EXPECT_GT((*spool)->populate_yields(), at_open);

  // A file that fills up is unmapped, and the next one made, by the spool's thread.
  e.model = std::string(1 << 20, 'm');
  for (int i = 0; i < 5; ++i) {
    e.time_ms += 1;
    ASSERT_TRUE((*spool)->append(e).has_value());
    ASSERT_TRUE((*spool)->wait_until_prepared(10'000));
  }
  const auto flags = mapping_flags(dir.file("spool") + "/writing-");
  ASSERT_EQ(flags.size(), 2u);  // the current file and the next one
  for (const std::string& f : flags) EXPECT_NE(f.find(" rr"), std::string::npos) << f;
  EXPECT_TRUE(mapping_flags("/ready-").empty());  // full files are unmapped
  SpoolDrainer drainer(**spool, dir.file("ledger.db"));
  auto drained = drainer.drain_now();
  ASSERT_TRUE(drained.has_value()) << drained.error().message;
  EXPECT_EQ(*drained, 10);
}

TEST(SpoolTest, RecordsAcrossFullFilesOfAKilledProcessAreAllDrainedOnce) {
  testing::TempDir dir;
  std::string spool_dir = dir.file("spool");
  constexpr int kRecords = 60;  // 18 MB: the process dies in its fifth file
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto spool = Spool::open(spool_dir);
    if (!spool) _exit(2);
    for (int i = 0; i < kRecords; ++i) {
      UsageEvent e = sample_event(i);
      e.model = std::string(300'000, 'm');
      if (!(*spool)->append(e)) _exit(3);
    }
    _exit(0);  // no clean-up: full files may not be renamed yet, the last one is untrimmed
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  auto spool = Spool::open(spool_dir);
  ASSERT_TRUE(spool.has_value()) << spool.error().message;
  SpoolDrainer drainer(**spool, dir.file("ledger.db"));
  auto drained = drainer.drain_now();
  ASSERT_TRUE(drained.has_value()) << drained.error().message;
  EXPECT_EQ(*drained, kRecords);
  EXPECT_EQ(*drainer.drain_now(), 0);
}

}  // namespace
}  // namespace aifinops::gateway
