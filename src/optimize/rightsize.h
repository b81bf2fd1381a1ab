// Rightsizing (R17): GPU hosts whose peak GPU memory and utilisation fit a cheaper GPU
// instance from the catalog, or no GPU at all; the saving at catalog prices.
#pragma once

#include "optimize/idle_gpu.h"
#include "optimize/recommend.h"

namespace aifinops::optimize {

/// Headroom kept when fitting: peak memory × 1.2 must fit a candidate GPU's memory, and the
/// compute used on the busiest day must stay under 80% of the candidate's throughput.
inline constexpr int64_t kMemoryHeadroomPercent = 120;
inline constexpr int64_t kComputeCeilingPercent = 80;

/// The `rightsize` recommendation kind. Hosts whose GPUs are all idle are left to idle-gpu.
Result<std::vector<Recommendation>> recommend_rightsize(const RecommendContext& context);

}  // namespace aifinops::optimize
