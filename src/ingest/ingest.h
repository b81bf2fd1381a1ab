// Ingest: read a source file into the ledger as one all-or-nothing batch, quarantining
// rows that cannot be read, so that rows read = ingested + quarantined, always.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "allocate/tag_policy.h"
#include "core/result.h"
#include "ledger/ledger.h"
#include "pricing/catalog.h"
#include "pricing/gpu_models.h"

namespace aifinops::ingest {

/// How a file conforms to FOCUS: one problem kind in one column, with the number of rows
/// that have it (0 for a problem of the column itself, such as a missing column).
struct ConformanceIssue {
  std::string column;
  std::string problem;
  int64_t count = 0;
};

/// What the GPU telemetry readers (dcgm, nvidia-smi) need besides the file: docs/gpu.md.
struct GpuTelemetryOptions {
  std::string host;                ///< --host: the GPUs' host when the input does not name it
  std::string region;              ///< --region: where the GPUs run (region_id; grid intensity)
  int64_t interval_ms = 30'000;    ///< --interval: time a reading covers when no next one says
  std::optional<int64_t> at_ms;    ///< --at: time of readings that carry none (else file mtime)
  /// Grid intensity of `region` in g CO2e per kWh, resolved by the caller; unset = no co2e.
  std::optional<Decimal> grid_gco2e_per_kwh;
  Decimal pue{1'200'000'000};      ///< data-centre power usage effectiveness
  /// Board power per model, for energy when a reading has no power value; may be null.
  const pricing::GpuModelTable* gpu_models = nullptr;
};

struct IngestOptions {
  std::string format = "auto";  ///< "auto" or a name from formats() (formats.h)
  bool replace = false;         ///< replace earlier batches from the same path
  bool strict = false;          ///< any quarantined row aborts the file (nothing written)
  /// Called now and then with bytes read so far (for a progress line); may be empty.
  std::function<void(int64_t bytes_done, int64_t bytes_total, int64_t rows)> progress;
  GpuTelemetryOptions gpu;      ///< dcgm and nvidia-smi only
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
  /// Items read that are not cost rows and so are neither ingested nor quarantined (e.g.
  /// OTLP spans that are not GenAI calls); outside rows_read.
  int64_t rows_skipped = 0;
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

/// Ingests one input (a file, plain or gzip, or a directory of pages for formats that take
/// them) as one batch, in the format options.format names, or the one format whose
/// detector accepts it for "auto" (formats.h). An input that cannot be read as a whole
/// (missing columns, not the format) fails with an error and writes nothing.
Result<IngestSummary> ingest_file(const IngestContext& context, const std::string& path,
                                  const IngestOptions& options);

}  // namespace aifinops::ingest
