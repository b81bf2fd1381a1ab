// The input formats `ingest` knows, as one written-out table: name, description, a
// detector for `--format auto`, and the reader to run. Also helpers readers share to read
// a file or a directory of pages whole, with one content fingerprint.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "ingest/ingest.h"
#include "ledger/ledger.h"

namespace aifinops::ingest {

/// One input format. Plain data; the table is in formats.cc.
struct Format {
  std::string_view name;         ///< the --format value, e.g. "openai-usage"
  std::string_view description;  ///< one line for --help and errors
  /// True when this format reads an input whose first bytes (decompressed; for a directory
  /// those of its first file) are `head`. Must be cheap and must not accept another
  /// format's files: --format auto needs exactly one taker.
  bool (*detect)(std::string_view head, const std::string& path);
  /// Reads `path` (a file, or a directory where the format takes pages) as one batch.
  Result<IngestSummary> (*run)(const IngestContext& context, const std::string& path,
                               const IngestOptions& options);
};

/// Every format, in the order --help lists them.
std::span<const Format> formats();
/// The format named `name`, or nullptr.
const Format* find_format(std::string_view name);
/// "auto, focus, openai-usage, ..." for help texts and errors.
std::string format_names();

/// The first bytes of an input (decompressed when gzip); for a directory, those of its
/// first regular file in name order ("" for an empty directory).
Result<std::string> read_head(const std::string& path, size_t max_bytes = 64 * 1024);

/// The files an input stands for: the path itself, or every regular file in a directory
/// whose name ends in one of `extensions` (".json", ".json.gz"), sorted by name so that a
/// batch's lineage is stable.
Result<std::vector<std::string>> input_files(const std::string& path,
                                             std::span<const std::string_view> extensions);

/// A whole input read into memory: for a directory, its pages one after another.
struct WholeInput {
  struct Page {
    std::string path;     ///< the file, for messages
    std::string content;  ///< decompressed bytes
  };
  std::vector<Page> pages;
  ledger::Fingerprint content;  ///< of the bytes (one file), or of the pages' fingerprints in order
  int64_t bytes = 0;
};

/// Reads a file or a directory of pages (plain or gzip) whole. A page over `max_page_bytes`
/// is an error naming it, so memory stays bounded.
Result<WholeInput> read_whole_input(const std::string& path,
                                    std::span<const std::string_view> extensions,
                                    int64_t max_page_bytes = int64_t{2} << 30);

/// The line (1-based) of byte `offset` in `text`, counting forward from a known position:
/// readers that walk a document in order call it with increasing offsets, so the total
/// work is one pass over the text.
class LineCounter {
 public:
  explicit LineCounter(std::string_view text) : text_(text) {}
  int64_t line_at(size_t offset);

 private:
  std::string_view text_;
  size_t position_ = 0;
  int64_t line_ = 1;
};

}  // namespace aifinops::ingest
