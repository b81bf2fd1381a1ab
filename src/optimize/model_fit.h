// Model fit (R19): per workload (business.yaml workloads:), the cheapest model whose public
// benchmark score meets the workload's required quality, priced at the catalog for the
// workload's observed token mix, against the model it uses now.
#pragma once

#include <string>
#include <vector>

#include "optimize/recommend.h"

namespace aifinops::optimize {

/// A model with a public (or the organisation's own) benchmark score and an API price.
struct ScoredModel {
  std::string model;  ///< the catalog's name
  Decimal score;
  std::string score_source;  ///< "business.yaml model_quality", or URL (date)
  const pricing::ModelPrice* price = nullptr;
  const ModelScore* table_row = nullptr;  ///< the shipped row it matched; null for business.yaml
};

/// A model's score on `benchmark`: business.yaml's model_quality first (the organisation's
/// own figure, on its quality_benchmark), then the shipped table. `source` says which.
bool model_score(const RecommendContext& context, const std::string& benchmark,
                 const std::string& model, Decimal& score, std::string& source);

/// Whether a catalog price is something to buy: input and output prices set, not both zero,
/// and not a self-hosted model (registered at price 0 so that its traffic is metered).
bool is_api_offer(const pricing::ModelPrice& price);

/// Every model with a score on `benchmark` (business.yaml's and the shipped table's, with
/// aliases) that the catalog offers as an API at the context's as-of time; one per catalog name.
std::vector<ScoredModel> scored_api_models(const RecommendContext& context,
                                           const std::string& benchmark);

/// The `model-fit` recommendation kind.
Result<std::vector<Recommendation>> recommend_model_fit(const RecommendContext& context);

}  // namespace aifinops::optimize
