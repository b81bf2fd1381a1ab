// The FOCUS CSV reader (FOCUS 1.0-1.3, plain or gzip): header-driven column mapping,
// conformance counts, catalog pricing of rows without cost.
#pragma once

#include <string>
#include <string_view>

#include "ingest/ingest.h"

namespace aifinops::ingest {

/// Ingests one FOCUS CSV file as one batch. A file that lacks the columns needed to place
/// and cost a row fails with an error naming them and writes nothing.
Result<IngestSummary> ingest_focus(const IngestContext& context, const std::string& path,
                                   const IngestOptions& options);

/// True when the first bytes look like a FOCUS header (a CSV header naming
/// ChargePeriodStart and a cost column).
bool looks_like_focus(std::string_view head);

}  // namespace aifinops::ingest
