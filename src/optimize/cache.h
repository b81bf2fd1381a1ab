// Cache savings (R15): the share of repeated requests per model, measured by the gateway's
// exact response cache where it is on, and the saving that cache would make on the same
// model's traffic through virtual keys that do not use it.
#pragma once

#include "optimize/recommend.h"

namespace aifinops::optimize {

/// The `cache` recommendation kind.
Result<std::vector<Recommendation>> recommend_cache(const RecommendContext& context);

}  // namespace aifinops::optimize
