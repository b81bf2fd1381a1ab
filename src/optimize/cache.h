// Cache savings (R15): per virtual key and model, the duplicate requests the gateway counted
// (cache on or off) and the saving an exact cache would make on them: the cost of repeats it
// did not answer. Records written before the count borrow the rate measured elsewhere.
#pragma once

#include "optimize/recommend.h"

namespace aifinops::optimize {

/// The `cache` recommendation kind.
Result<std::vector<Recommendation>> recommend_cache(const RecommendContext& context);

}  // namespace aifinops::optimize
