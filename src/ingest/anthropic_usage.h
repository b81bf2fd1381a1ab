// Readers for Anthropic's Admin API usage report (/v1/organizations/usage_report/messages)
// and cost report (/v1/organizations/cost_report) pages.
#pragma once

#include <string>
#include <string_view>

#include "ingest/ingest.h"

namespace aifinops::ingest {

/// Ingests usage report pages (a JSON file, or a directory of them) as one batch, with
/// tokens in the record's OpenAI semantics: input = uncached + cache creation + cache read;
/// cached input = cache read; cache write = cache creation (5m and 1h). Priced from the
/// catalog (1-hour cache writes at twice the input price, as Anthropic bills them); a row
/// whose model is missing or unknown is quarantined with the reason.
Result<IngestSummary> ingest_anthropic_usage(const IngestContext& context, const std::string& path,
                                             const IngestOptions& options);
/// Ingests cost report pages as billed cost rows; amounts are in cents (minor units) as
/// decimal strings and are converted exactly.
Result<IngestSummary> ingest_anthropic_costs(const IngestContext& context, const std::string& path,
                                             const IngestOptions& options);

/// Detectors for --format auto.
bool looks_like_anthropic_usage(std::string_view head);
bool looks_like_anthropic_costs(std::string_view head);

}  // namespace aifinops::ingest
