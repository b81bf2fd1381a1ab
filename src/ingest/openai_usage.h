// Readers for OpenAI's organisation Usage API pages (completions, embeddings, moderations,
// images, audio, vector stores, code interpreter, file and web search) and Costs API pages.
#pragma once

#include <string>
#include <string_view>

#include "ingest/ingest.h"

namespace aifinops::ingest {

/// Ingests Usage API pages (a JSON file, or a directory of them) as one batch. Token rows
/// are priced from the catalog; a token row whose model is missing or unknown is
/// quarantined with the reason. Other usage (images, audio, searches, sessions, storage)
/// is kept as quantities without cost: the Costs API carries that money.
Result<IngestSummary> ingest_openai_usage(const IngestContext& context, const std::string& path,
                                          const IngestOptions& options);
/// Ingests Costs API pages as billed cost rows (amount exactly as given).
Result<IngestSummary> ingest_openai_costs(const IngestContext& context, const std::string& path,
                                          const IngestOptions& options);

/// Detectors for --format auto: a page whose results are "organization.usage.*" or
/// "organization.costs.result" objects.
bool looks_like_openai_usage(std::string_view head);
bool looks_like_openai_costs(std::string_view head);

}  // namespace aifinops::ingest
