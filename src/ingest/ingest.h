// Ingest: read a source file into the ledger as one all-or-nothing batch, quarantining
// rows that cannot be read, so that rows read = ingested + quarantined, always.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "allocate/tag_policy.h"
#include "core/result.h"
#include "ledger/ledger.h"
#include "pricing/catalog.h"

namespace aifinops::ingest {

/// How a file conforms to FOCUS: one problem kind in one column, with the number of rows
/// that have it (0 for a problem of the column itself, such as a missing column).
struct ConformanceIssue {
  std::string column;
  std::string problem;
  int64_t count = 0;
};

struct IngestOptions {
  std::string format = "auto";  ///< auto | focus
  bool replace = false;         ///< replace earlier batches from the same path
  bool strict = false;          ///< any quarantined row aborts the file (nothing written)
  /// Called now and then with bytes read so far (for a progress line); may be empty.
  std::function<void(int64_t bytes_done, int64_t bytes_total, int64_t rows)> progress;
};

struct IngestSummary {
  std::string path;
  int64_t batch_id = 0;
  bool duplicate = false;        ///< identical content was ingested before; nothing written
  int64_t duplicate_of = 0;      ///< that batch
  std::vector<int64_t> replaced; ///< batches removed by --replace
  std::string format;            ///< e.g. "FOCUS 1.2"
  int64_t bytes = 0;
  int64_t rows_read = 0, rows_ingested = 0, rows_quarantined = 0;
  int64_t rows_priced = 0;       ///< rows whose cost came from the catalog
  __int128 billed_cost = 0, effective_cost = 0;  ///< nanos, over ingested rows
  std::vector<ConformanceIssue> conformance;
  std::vector<ledger::QuarantinedRow> quarantined_sample;  ///< the first few
};

/// Everything an ingest needs besides the file; built once by the caller.
struct IngestContext {
  ledger::Ledger& ledger;
  const pricing::Catalog& catalog;
  const allocate::TagPolicy& tag_policy;
};

/// Ingests one file (plain or gzip). A file that lacks the columns needed to place and
/// cost a row fails with an error naming them and writes nothing.
Result<IngestSummary> ingest_file(const IngestContext& context, const std::string& path,
                                  const IngestOptions& options);

}  // namespace aifinops::ingest
