// The policy file (policy.yaml): allocation dimensions with their raw tag aliases, allowed
// values and required flags, read into an allocate::TagPolicy. Later sections (shared_costs,
// budgets, api_tokens) are accepted here and read by the modules that use them.
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

#include "allocate/tag_policy.h"
#include "core/result.h"

namespace aifinops::config {

/// Reads policy text; errors name the file, line and key path.
Result<allocate::TagPolicy> parse_policy_yaml(std::string_view text, std::string_view file_name);

/// Reads a policy file; an empty path gives the built-in defaults. A missing file is an error.
Result<allocate::TagPolicy> load_policy_file(const std::string& path);

}  // namespace aifinops::config
