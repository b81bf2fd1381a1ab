// CsvReader: a streaming RFC 4180 reader over FileInput. Handles quoted fields with
// commas, doubled quotes and newlines, CRLF and a UTF-8 BOM, in a buffer whose size does
// not grow with the file (only with the longest record). This is an ingest hot path.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "ingest/file_input.h"

namespace aifinops::ingest {

/// One record: its fields (valid until the next call to next()), the line it starts on
/// and its raw text.
struct CsvRecord {
  std::vector<std::string_view> fields;
  int64_t line = 0;          ///< 1-based line of the record's first character
  std::string_view raw;      ///< the record's bytes without the line ending
  bool malformed = false;    ///< a quote was not closed or text followed a closing quote
  std::string malformed_reason;
};

/// Reads records one by one. Not thread-safe.
class CsvReader {
 public:
  /// `block_size`: bytes read from the input at a time.
  explicit CsvReader(std::unique_ptr<FileInput> input, size_t block_size = 1 << 20);

  /// The next record; false at end of input. An I/O error is returned as an error.
  Result<bool> next(CsvRecord& record);

  FileInput& input() { return *input_; }

 private:
  /// Reads more bytes, keeping [keep_from, end) at the front. Returns bytes added.
  Result<size_t> refill(size_t keep_from);
  /// Scans one record starting at pos_. Returns false if the buffer ended first.
  bool scan(CsvRecord& record, bool at_eof);

  std::unique_ptr<FileInput> input_;
  std::vector<char> buffer_;
  size_t pos_ = 0, end_ = 0;
  bool eof_ = false;
  bool first_block_ = true;
  int64_t line_ = 1;
  std::string unescaped_;  // doubled quotes removed; capacity reserved per record
  struct Span {
    size_t begin, end;
    bool escaped;
  };
  std::vector<Span> spans_;
};

}  // namespace aifinops::ingest
