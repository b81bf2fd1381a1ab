// Shared-cost rules (policy.yaml `shared_costs:`): which records are shared (a GPU pool, a
// platform team's gateway) and how their cost is split over a target dimension: evenly,
// in proportion to a usage driver, or by fixed weights. Split totals equal the original
// total to the nano-unit; rounding remainders go to receivers in a fixed order.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "allocate/tag_policy.h"
#include "core/money.h"
#include "core/result.h"
#include "ledger/ledger.h"

namespace aifinops::allocate {

/// How a rule splits: equal parts, in proportion to a driver, or by the rule's weights.
enum class SplitMethod { kEven, kProportional, kFixed };
/// What a proportional split follows.
enum class SplitDriver { kEffectiveCost, kTokens, kGpuHours, kRequests };

/// The policy.yaml spelling: "even", "proportional", "fixed".
const char* split_method_name(SplitMethod m);
/// The policy.yaml spelling: "effective_cost", "tokens", "gpu_hours", "requests".
const char* split_driver_name(SplitDriver d);
/// The ledger metric a driver sums (tokens = input + output tokens).
ledger::Metric driver_metric(SplitDriver d);

/// One `shared_costs:` entry, as config/policy_yaml reads it. Plain value type.
struct SharedCostRule {
  std::string name;
  /// dimension name (as `report --by` takes it) -> value; "(none)" matches a missing value
  std::map<std::string, std::string> match;
  SplitMethod split = SplitMethod::kProportional;
  SplitDriver driver = SplitDriver::kEffectiveCost;  ///< kProportional
  std::string by = "team";                           ///< the dimension that receives the split
  std::map<std::string, Decimal> weights;            ///< kFixed: receiver -> weight (> 0)
};

/// What allocated output shows for cost that neither a tag nor a rule gives a value.
inline constexpr std::string_view kUnallocated = "(unallocated)";

/// Splits `amount` in proportion to `weights` so that the parts add up to `amount` exactly
/// (largest-remainder method): each part is rounded towards zero, then the nano-units left
/// over go one each to the parts with the largest remainders, ties to the lower index.
/// Weights must be >= 0 with at least one > 0; weights are scaled down (deterministically)
/// when their sum passes 2^62, so that every product fits in 128 bits.
std::vector<__int128> split_exact(__int128 amount, const std::vector<__int128>& weights);

/// A dimension name as policy rules and `--by` use it: the policy's custom dimension of that
/// name first, then the built-in names (ledger::parse_dimension).
Result<ledger::Dimension> resolve_dimension(const TagPolicy& policy, std::string_view name);

/// True when two dimensions read the same column ("service" and "service_name").
bool same_dimension(const ledger::Dimension& a, const ledger::Dimension& b);

/// True for the dimensions that allocation fills (team, project, ... and tag or custom
/// dimensions): a missing value there is shown as kUnallocated by allocated output.
bool is_allocation_dimension(const ledger::Dimension& d);

/// What to allocate: a grouped sum like a ledger query, after shared costs are split.
struct AllocationRequest {
  std::optional<EpochSeconds> from;  ///< inclusive
  std::optional<EpochSeconds> to;    ///< exclusive
  std::vector<ledger::Dimension> group_by;
  /// Applied to the result of the split, so that `team=alpha` keeps alpha's share of shared
  /// costs. "(none)" and kUnallocated both match a missing value.
  std::vector<ledger::Filter> filters;
  ledger::Metric metric = ledger::Metric::kEffectiveCost;  ///< a money metric: what is split
  /// Usage summed per row where it happened (tokens, gpu_hours, ...); usage is never moved.
  std::vector<ledger::Metric> usage_metrics;
};

/// One group of an allocated report.
struct AllocatedRow {
  /// Values of group_by, in order; a missing allocation dimension reads kUnallocated,
  /// another missing value "(none)".
  std::vector<std::string> keys;
  __int128 direct = 0;           ///< the group's own cost, less what the rules moved away
  std::vector<__int128> shared;  ///< received from each rule, in the rules' order
  std::vector<__int128> usage;   ///< AllocationRequest::usage_metrics, in order
  __int128 total() const;        ///< direct + every shared part
};

/// What one rule did over the whole request.
struct RuleOutcome {
  std::string name;
  __int128 matched = 0;                ///< cost of the records the rule selected
  __int128 allocated = 0;              ///< split over receivers
  __int128 unallocated = 0;            ///< left where it was: no receiver in its month and workload
  std::vector<std::string> receivers;  ///< values that received a part, sorted
};

/// An allocated report. The rows' totals add up to `total`, which without filters equals
/// the ledger's total for the same time range to the nano-unit.
struct Allocation {
  std::vector<AllocatedRow> rows;  ///< time columns ascending, then total descending, keys
  __int128 total = 0;
  std::vector<RuleOutcome> rules;  ///< one per rule, in the policy's order
};

/// Applies the shared-cost rules to the ledger's sums and regroups the result.
///
/// Each rule selects records by its `match` (the first rule that matches a record wins) and
/// splits their cost over the values of its `by` dimension found on the other records:
/// every value alike (even), in proportion to the values' driver (proportional; values
/// with a driver of 0 get nothing), or by the rule's weights (fixed; receivers need not
/// have records). The split runs separately in each month (or finer time bucket the request
/// groups by) and, when the shared records name a workload (training, inference), only
/// over records of that workload. A receiver's part is spread over its own groups in
/// proportion to their driver (proportional) or cost (even, fixed). Cost with no receiver
/// stays where it was. Everything is computed from grouped ledger queries (rollups), never
/// from single records.
Result<Allocation> allocate_costs(ledger::Ledger& ledger, const TagPolicy& policy,
                                  const std::vector<SharedCostRule>& rules,
                                  const AllocationRequest& request);

// --- showback -----------------------------------------------------------------------------

/// One line of a showback statement: the owner's direct cost and tokens for one resource
/// (or, for rows without a resource id, one service) and model.
struct ShowbackLine {
  std::string service, resource, resource_name, model;  ///< "(none)" when missing
  __int128 cost = 0;
  __int128 tokens = 0;
};

/// A model the owner used.
struct ShowbackModel {
  std::string model;
  __int128 cost = 0;
  __int128 tokens = 0;
};

/// One owner's statement (one team, project, ...), for chargeback.
struct ShowbackStatement {
  std::string owner;             ///< a value of the dimension, or kUnallocated
  __int128 direct = 0;           ///< sum of `lines`
  std::vector<__int128> shared;  ///< received per rule, in the rules' order
  __int128 total = 0;            ///< direct + shared
  __int128 tokens = 0;
  std::vector<ShowbackLine>
      lines;  ///< by cost, largest first; lines of 0 cost and 0 tokens left out
  std::vector<ShowbackModel> models;  ///< by cost, largest first (models named only)
};

/// Every owner's statement for a period; statements' totals add up to `total`.
struct Showback {
  std::vector<std::string> rule_names;
  std::vector<ShowbackStatement> statements;  ///< by total, largest first; kUnallocated last
  __int128 total = 0;
  std::vector<RuleOutcome> rules;
};

/// Builds one statement per value of `owner` (after the shared-cost split) over [from, to).
Result<Showback> build_showback(ledger::Ledger& ledger, const TagPolicy& policy,
                                const std::vector<SharedCostRule>& rules,
                                const ledger::Dimension& owner, std::optional<EpochSeconds> from,
                                std::optional<EpochSeconds> to);

}  // namespace aifinops::allocate
