// Shared-cost rules (policy.yaml `shared_costs:`): which records are shared (a GPU pool, a
// platform team's gateway) and how their cost is split over a target dimension: evenly,
// in proportion to a usage driver, or by fixed weights. Split totals equal the original
// total to the nano-unit; rounding remainders go to receivers in a fixed order.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/money.h"

namespace aifinops::allocate {

enum class SplitMethod { kEven, kProportional, kFixed };
enum class SplitDriver { kEffectiveCost, kTokens, kGpuHours, kRequests };

const char* split_method_name(SplitMethod m);
const char* split_driver_name(SplitDriver d);

struct SharedCostRule {
  std::string name;
  /// dimension name (as `report --by` takes it) -> value; "(none)" matches a missing value
  std::map<std::string, std::string> match;
  SplitMethod split = SplitMethod::kProportional;
  SplitDriver driver = SplitDriver::kEffectiveCost;  ///< kProportional
  std::string by = "team";                           ///< the dimension that receives the split
  std::map<std::string, Decimal> weights;            ///< kFixed: receiver -> weight (> 0)
};

}  // namespace aifinops::allocate
