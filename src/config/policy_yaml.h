// The policy file (policy.yaml): allocation dimensions with their raw tag aliases, allowed
// values and required flags (an allocate::TagPolicy), shared-cost rules and budgets.
// `api_tokens` lists the bearer tokens `aifinops serve` accepts, stored as SHA-256 hashes:
//
//   api_tokens:
//     - {id: ops, token_sha256: "<hex>", scope: admin}
//     - {id: team-a-lead, token_sha256: "<hex>", scope: viewer, restrict: {team: [team-a]}}
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

/// What an API token may do: admin (everything) or viewer (read). Both only read today;
/// admin exists so that write endpoints have a scope to ask for.
enum class ApiScope { kAdmin, kViewer };

/// One entry of api_tokens: the token's SHA-256 (never the token itself) and its scope; a
/// viewer with `restrict` sees only records whose dimensions take one of the listed values.
struct ApiToken {
  std::string id;
  std::string token_sha256;  ///< 64 lower-case hex digits
  ApiScope scope = ApiScope::kViewer;
  /// dimension name (as in --by) -> allowed values, in file order; empty: unrestricted
  std::vector<std::pair<std::string, std::vector<std::string>>> restrict;
  int line = 0;  ///< where the entry is in the policy file, for messages
};

/// Everything policy.yaml says.
struct Policy {
  allocate::TagPolicy tags = allocate::TagPolicy::defaults();
  std::vector<allocate::SharedCostRule> shared_costs;
  std::vector<BudgetRule> budgets;
  std::vector<ApiToken> api_tokens;
  std::string source;  ///< the file read, or empty for the built-in defaults
};

/// Reads policy text; errors name the file, line and key path.
Result<Policy> parse_policy_yaml(std::string_view text, std::string_view file_name);

/// Reads a policy file; an empty path gives the built-in defaults. A missing file is an error.
Result<Policy> load_policy_file(const std::string& path);

}  // namespace aifinops::config
