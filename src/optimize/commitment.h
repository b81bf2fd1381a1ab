// Commitment sizing (R18): the number of reserved instances / committed-use units, the
// savings-plan $/hour, or the Azure PTU count that saves the most over a usage history, and
// the exact solver behind all three (savings are concave in the level; the optimum is a
// quantile of the sorted history).
#pragma once

#include <cstdint>
#include <vector>

#include "core/result.h"
#include "optimize/recommend.h"

namespace aifinops::optimize {

/// A commitment over a history of T buckets (hours or days). One unit of commitment covers
/// up to `unit_coverage` of a bucket's usage and costs `unit_cost` nanos per bucket whether
/// used or not; usage it covers is worth value_num / value_den nanos per usage unit (for
/// money usage 1/1; for tokens the pay-as-you-go price per token).
/// The levels allowed are 0 and minimum_units + j × increment (j >= 0).
struct CommitmentProblem {
  std::vector<__int128> usage;  ///< per bucket, >= 0
  __int128 unit_coverage = 1;   ///< > 0
  __int128 unit_cost = 0;       ///< nanos per bucket, >= 0
  __int128 value_num = 1, value_den = 1;  ///< > 0
  int64_t minimum_units = 1;
  int64_t increment = 1;
};

/// savings(n) = value(Σ_t min(usage_t, n × unit_coverage)) − n × unit_cost × T, in nanos.
__int128 commitment_savings(const CommitmentProblem& p, int64_t units);

struct CommitmentSolution {
  int64_t units = 0;
  __int128 savings = 0;  ///< nanos over the history
  __int128 covered = 0;  ///< Σ min(usage, level): usage the commitment absorbs
};

/// The level that maximises savings (ties: the smaller level). Exact: savings are concave
/// in a continuous level e with slope value × #{usage_t > e} − unit_cost × T / coverage, so
/// the continuous optimum is the m-th largest usage with m = ⌊βT⌋ + 1 (β the break-even
/// utilisation) and the best allowed level is one of the two around it, or 0.
CommitmentSolution optimal_commitment(const CommitmentProblem& p);

/// The `commitment` recommendation kind.
Result<std::vector<Recommendation>> recommend_commitments(const RecommendContext& context);

}  // namespace aifinops::optimize
