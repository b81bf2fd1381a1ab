// The policy file (policy.yaml): allocation dimensions with their raw tag aliases, allowed
// values and required flags (an allocate::TagPolicy), shared-cost rules and budgets.
// `api_tokens` is accepted here and read by the server.
//
//   dimensions:
//     team: {aliases: [Team, owner-team], required: true, allowed: [alpha, beta, "team-*"]}
//     environment: {aliases: [Environment, env], allowed: [production, staging, development]}
//     owner: {aliases: [Owner, owner-email]}     # a custom dimension, read from raw tags
//
// A canonical dimension (team, project, environment, cost_center, workload, usage_type,
// purpose, criticality, shutdown_eligible) keeps its built-in aliases and gains these. Any
// other name adds a custom dimension that `report --by NAME` reads from the raw tags.
#pragma once

#include <string>
#include <string_view>

#include <vector>

#include "allocate/shared_costs.h"
#include "allocate/tag_policy.h"
#include "core/budget.h"
#include "core/result.h"

namespace aifinops::config {

/// Everything policy.yaml says.
struct Policy {
  allocate::TagPolicy tags = allocate::TagPolicy::defaults();
  std::vector<allocate::SharedCostRule> shared_costs;
  std::vector<BudgetRule> budgets;
  std::string source;  ///< the file read, or empty for the built-in defaults
};

/// Reads policy text; errors name the file, line and key path.
Result<Policy> parse_policy_yaml(std::string_view text, std::string_view file_name);

/// Reads a policy file; an empty path gives the built-in defaults. A missing file is an error.
Result<Policy> load_policy_file(const std::string& path);

}  // namespace aifinops::config
