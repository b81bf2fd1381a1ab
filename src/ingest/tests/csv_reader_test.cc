#include "ingest/csv_reader.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "tests/testing/temp_dir.h"

namespace aifinops::ingest {
namespace {

using Rows = std::vector<std::vector<std::string>>;

Rows read_all(const std::string& content, size_t block_size, std::vector<int64_t>* lines = nullptr) {
  testing::TempDir dir;
  std::string path = dir.write("in.csv", content);
  auto input = FileInput::open(path);
  EXPECT_TRUE(input.has_value());
  CsvReader reader(std::unique_ptr<FileInput>(*input), block_size);
  Rows rows;
  CsvRecord record;
  for (;;) {
    auto got = reader.next(record);
    EXPECT_TRUE(got.has_value());
    if (!got.has_value() || !*got) break;
    rows.emplace_back(record.fields.begin(), record.fields.end());
    if (lines) lines->push_back(record.line);
  }
  return rows;
}

// Every case runs with tiny buffers too, so that records and quoted fields straddle refills.
class CsvReaderTest : public ::testing::TestWithParam<size_t> {};

TEST_P(CsvReaderTest, HandlesQuotesCommasAndNewlinesInsideFields) {
  std::vector<int64_t> lines;
  Rows rows = read_all("a,b,c\n\"x, y\",\"say \"\"hi\"\"\",\"two\nlines\"\nplain,,last\n", GetParam(), &lines);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[1], (std::vector<std::string>{"x, y", "say \"hi\"", "two\nlines"}));
  EXPECT_EQ(rows[2], (std::vector<std::string>{"plain", "", "last"}));
  EXPECT_EQ(lines, (std::vector<int64_t>{1, 2, 4}));
}

TEST_P(CsvReaderTest, StripsBomAndHandlesCrlfAndMissingFinalNewline) {
  Rows rows = read_all("\xEF\xBB\xBFh1,h2\r\n1,2\r\n3,\"4\"", GetParam());
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"h1", "h2"}));
  EXPECT_EQ(rows[1], (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(rows[2], (std::vector<std::string>{"3", "4"}));
}

TEST_P(CsvReaderTest, SkipsBlankLinesButCountsThem) {
  std::vector<int64_t> lines;
  Rows rows = read_all("h\n\n1\n\n2\n", GetParam(), &lines);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(lines, (std::vector<int64_t>{1, 3, 5}));
}

TEST_P(CsvReaderTest, FlagsAnUnclosedQuoteAtEndOfFile) {
  testing::TempDir dir;
  auto input = FileInput::open(dir.write("bad.csv", "a\n\"never closed\n"));
  ASSERT_TRUE(input.has_value());
  CsvReader reader(std::unique_ptr<FileInput>(*input), GetParam());
  CsvRecord record;
  ASSERT_TRUE(*reader.next(record));
  ASSERT_TRUE(*reader.next(record));
  EXPECT_TRUE(record.malformed);
  EXPECT_NE(record.malformed_reason.find("not closed"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(BlockSizes, CsvReaderTest, ::testing::Values(4, 7, 16, 1 << 20));

}  // namespace
}  // namespace aifinops::ingest
