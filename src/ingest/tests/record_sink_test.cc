#include "ingest/record_sink.h"

#include <gtest/gtest.h>

#include "ingest/formats.h"
#include "ingest/tests/ledger_fixture.h"

namespace aifinops::ingest {
namespace {

using ledger::Metric;

class RecordSinkTest : public testing_support::LedgerFixture {
 protected:
  Record usage_record(int64_t line, const char* cost, std::string tags) {
    Record r;
    r[Attr::kProviderName] = "OpenAI";
    r[Attr::kServiceName] = "OpenAI API";
    r[Attr::kChargeCategory] = "Usage";
    r[Attr::kModel] = "gpt-5";
    r[Attr::kTags] = std::move(tags);
    r.facts.charge_period_start = *parse_timestamp("2025-08-12T00:00:00Z");
    r.facts.charge_period_end = r.facts.charge_period_start + 86400;
    r.facts.billed_cost = r.facts.effective_cost = *parse_decimal(cost);
    r.facts.input_tokens = 10;
    r.lineage.line = line;
    return r;
  }
  IngestOptions options_;
};

TEST_F(RecordSinkTest, AppliesTheTagPolicyButKeepsDimensionsTheReaderSet) {
  RecordSink sink(context(), "stream-a", "openai-usage", options_);
  ASSERT_TRUE(sink.begin().has_value());
  Record a = usage_record(1, "1.5", R"({"team":"search","env":"prod"})");
  Record b = usage_record(2, "2.25", R"({"team":"search","env":"prod"})");
  b[Attr::kTeam] = "ads";  // set by the reader: the tag does not override it
  ASSERT_TRUE(sink.append(a).has_value());
  ASSERT_TRUE(sink.append(b).has_value());
  auto done = sink.finish({1, 2}, 100, "test");
  ASSERT_TRUE(done.has_value()) << done.error().message;
  EXPECT_EQ(done->rows_read, 2);
  EXPECT_EQ(done->rows_ingested, 2);
  EXPECT_EQ(done->billed_cost, (__int128)3'750'000'000);
  EXPECT_EQ(total(Metric::kBilledCost, {{"team", "search"}}), (__int128)1'500'000'000);
  EXPECT_EQ(total(Metric::kBilledCost, {{"team", "ads"}}), (__int128)2'250'000'000);
  EXPECT_EQ(total(Metric::kBilledCost, {{"environment", "prod"}}), (__int128)3'750'000'000);
  EXPECT_EQ(total(Metric::kInputTokens), 20);
}

TEST_F(RecordSinkTest, TagsThatAreNotAnObjectMoveToExtraAndTheRowIsKept) {
  RecordSink sink(context(), "stream-b", "otlp", options_);
  ASSERT_TRUE(sink.begin().has_value());
  Record a = usage_record(1, "1", "not json");
  a[Attr::kExtra] = R"({"k":"v"})";
  ASSERT_TRUE(sink.append(a).has_value());
  ASSERT_TRUE(sink.finish({3, 4}, 10, "test").has_value());
  // Stored without tags, so a tag query finds nothing and nothing breaks.
  EXPECT_EQ(total(Metric::kBilledCost, {{"tag:k", "v"}}), 0);
  EXPECT_EQ(total(Metric::kBilledCost), (__int128)1'000'000'000);
}

TEST_F(RecordSinkTest, QuarantineCountsRowsReadAndStrictWritesNothing) {
  IngestOptions strict;
  strict.strict = true;
  RecordSink sink(context(), "stream-c", "otlp", strict);
  ASSERT_TRUE(sink.begin().has_value());
  Record a = usage_record(1, "1", "");
  ASSERT_TRUE(sink.append(a).has_value());
  ASSERT_TRUE(sink.quarantine(7, "usage", "bad usage", "{raw}").has_value());
  auto done = sink.finish({5, 6}, 10, "test");
  ASSERT_TRUE(done.has_value());
  EXPECT_EQ(done->batch_id, 0);
  EXPECT_EQ(done->rows_read, done->rows_ingested + done->rows_quarantined);
  ASSERT_EQ(done->quarantined_sample.size(), 1u);
  EXPECT_EQ(done->quarantined_sample[0].line, 7);
  EXPECT_EQ(done->quarantined_sample[0].reason, "bad usage");
  EXPECT_EQ(total(Metric::kBilledCost), 0);
}

TEST_F(RecordSinkTest, SameContentIsADuplicateAndAChangedFileNeedsReplace) {
  std::string path = dir_.write("page.json", "{}");
  auto run = [&](ledger::Fingerprint content, bool replace, const char* cost) {
    IngestOptions options;
    options.replace = replace;
    RecordSink sink(context(), path, "openai-usage", options);
    EXPECT_TRUE(sink.begin().has_value());
    Record a = usage_record(1, cost, "");
    EXPECT_TRUE(sink.append(a).has_value());
    return sink.finish(content, 2, "test");
  };
  auto first = run({1, 1}, false, "1");
  ASSERT_TRUE(first.has_value());
  auto again = run({1, 1}, false, "1");
  ASSERT_TRUE(again.has_value());
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(again->duplicate_of, first->batch_id);
  auto changed = run({2, 2}, false, "5");
  ASSERT_FALSE(changed.has_value());
  EXPECT_NE(changed.error().message.find("--replace"), std::string::npos);
  auto replaced = run({2, 2}, true, "5");
  ASSERT_TRUE(replaced.has_value()) << replaced.error().message;
  ASSERT_EQ(replaced->replaced.size(), 1u);
  EXPECT_EQ(total(Metric::kBilledCost), (__int128)5'000'000'000);
}

TEST_F(RecordSinkTest, AStreamTakesManyBodiesUnderOneNameButNotTheSameBodyTwice) {
  auto run = [&](ledger::Fingerprint content) {
    RecordSink sink(context(), "otlp-receiver", "otlp", options_);
    sink.set_stream(true);
    EXPECT_TRUE(sink.begin().has_value());
    Record a = usage_record(1, "1", "");
    EXPECT_TRUE(sink.append(a).has_value());
    return sink.finish(content, 2, "test");
  };
  ASSERT_TRUE(run({1, 1}).has_value());
  auto second = run({2, 2});
  ASSERT_TRUE(second.has_value()) << second.error().message;
  EXPECT_FALSE(second->duplicate);
  auto resent = run({2, 2});
  ASSERT_TRUE(resent.has_value());
  EXPECT_TRUE(resent->duplicate);
  EXPECT_EQ(total(Metric::kBilledCost), (__int128)2'000'000'000);
}

TEST_F(RecordSinkTest, DestroyingAnUnfinishedSinkWritesNothing) {
  {
    RecordSink sink(context(), "stream-d", "otlp", options_);
    ASSERT_TRUE(sink.begin().has_value());
    Record a = usage_record(1, "1", "");
    ASSERT_TRUE(sink.append(a).has_value());
  }
  EXPECT_EQ(total(Metric::kBilledCost), 0);
  auto batches = ledger_->batches();
  ASSERT_TRUE(batches.has_value());
  EXPECT_TRUE(batches->empty());
}

TEST(FormatsTest, AutoPicksTheOneFormatThatTakesTheInputAndNamesTheAllowedValues) {
  aifinops::testing::TempDir dir;
  std::string focus = dir.write("bill.csv", "ChargePeriodStart,BilledCost\n2025-01-01,1\n");
  std::string other = dir.write("x.txt", "hello\n");
  std::string head = *read_head(focus);
  int takers = 0;
  for (const Format& f : formats()) takers += f.detect(head, focus) ? 1 : 0;
  EXPECT_EQ(takers, 1);
  EXPECT_TRUE(find_format("focus")->detect(head, focus));
  EXPECT_FALSE(find_format("focus")->detect(*read_head(other), other));
  EXPECT_EQ(find_format("nope"), nullptr);
  EXPECT_EQ(format_names().rfind("auto, focus", 0), 0u);
}

TEST(FormatsTest, LineCounterCountsForwardAndBackward) {
  std::string text = "a\nb\n\nc";
  LineCounter lines(text);
  EXPECT_EQ(lines.line_at(0), 1);
  EXPECT_EQ(lines.line_at(2), 2);
  EXPECT_EQ(lines.line_at(5), 4);
  EXPECT_EQ(lines.line_at(1), 1);
  EXPECT_EQ(lines.line_at(100), 4);
}

class IngestDispatchTest : public testing_support::LedgerFixture {};

TEST_F(IngestDispatchTest, UnrecognisedContentAndUnknownFormatsAreErrorsListingTheFormats) {
  std::string other = dir_.write("x.txt", "hello\n");
  auto r = ingest(other);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("not recognised"), std::string::npos);
  EXPECT_NE(r.error().message.find(format_names()), std::string::npos);
  auto named = ingest(other, "csv-of-sorts");
  ASSERT_FALSE(named.has_value());
  EXPECT_NE(named.error().message.find("allowed values are auto, focus"), std::string::npos);
  std::string bill = dir_.write("bill.csv", "ChargePeriodStart,BilledCost\n2025-01-01,1.25\n");
  auto focus = ingest(bill);
  ASSERT_TRUE(focus.has_value()) << focus.error().message;
  EXPECT_EQ(focus->rows_ingested, 1);
  EXPECT_EQ(total(Metric::kBilledCost), (__int128)1'250'000'000);
}

TEST_F(IngestDispatchTest, ReadsADirectoryOfPagesWithOneFingerprint) {
  std::string pages = dir_.file("pages");
  std::filesystem::create_directory(pages);
  dir_.write("pages/b.json", "{\"b\":1}");
  dir_.write("pages/a.json", "{\"a\":1}");
  dir_.write("pages/notes.txt", "skip me");
  const std::string_view exts[] = {".json"};
  auto whole = read_whole_input(pages, exts);
  ASSERT_TRUE(whole.has_value()) << whole.error().message;
  ASSERT_EQ(whole->pages.size(), 2u);
  EXPECT_NE(whole->pages[0].path.find("a.json"), std::string::npos);
  EXPECT_EQ(whole->pages[1].content, "{\"b\":1}");
  dir_.write("pages/b.json", "{\"b\":2}");
  auto changed = read_whole_input(pages, exts);
  EXPECT_FALSE(changed->content == whole->content);
  std::filesystem::create_directory(dir_.file("empty"));
  auto none = read_whole_input(dir_.file("empty"), exts);
  ASSERT_FALSE(none.has_value());
  EXPECT_NE(none.error().message.find("no page files"), std::string::npos);
}

}  // namespace
}  // namespace aifinops::ingest
