// Batch savings (R15, R19): non-realtime traffic (purpose batch_processing, or, at hourly
// grain, bulk traffic that runs off-hours) that the provider's batch API would serve at its
// batch discount (50% at OpenAI and Anthropic).
#pragma once

#include "optimize/recommend.h"

namespace aifinops::optimize {

/// The `batch` recommendation kind.
Result<std::vector<Recommendation>> recommend_batch(const RecommendContext& context);

/// Whether a purpose value says the work is not interactive ("batch_processing", "batch",
/// "offline", case-insensitive).
bool is_batch_purpose(std::string_view purpose);

}  // namespace aifinops::optimize
