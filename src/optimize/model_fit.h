// Model fit (R19): per workload (business.yaml workloads:), the cheapest model whose public
// benchmark score meets the workload's required quality, priced at the catalog for the
// workload's observed token mix, against the model it uses now.
#pragma once

#include "optimize/recommend.h"

namespace aifinops::optimize {

/// The `model-fit` recommendation kind.
Result<std::vector<Recommendation>> recommend_model_fit(const RecommendContext& context);

}  // namespace aifinops::optimize
