// Tag compliance (R6): how much cost the tag policy can allocate. Share of cost fully
// allocated (every required dimension present and allowed), coverage per dimension, values
// the policy does not allow, and the resources with the most unallocated cost.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "allocate/tag_policy.h"
#include "core/result.h"
#include "ledger/ledger.h"

namespace aifinops::allocate {

/// True when `value` matches `pattern`, where '*' stands for any run of characters
/// (none included) and everything else matches itself, case-sensitively: "team-*".
bool matches_pattern(std::string_view pattern, std::string_view value);

/// True when `allowed` is empty or one of its entries (exact or pattern) matches `value`.
bool value_allowed(const std::vector<std::string>& allowed, std::string_view value);

/// What to audit.
struct AuditRequest {
  std::optional<EpochSeconds> from;  ///< inclusive
  std::optional<EpochSeconds> to;    ///< exclusive
  size_t top_resources = 10;         ///< how many untagged resources to list; 0 = all
};

/// One dimension's coverage, by effective cost.
struct DimensionCoverage {
  std::string dimension;  ///< "team", or a custom dimension's name
  bool required = false;
  std::vector<std::string> allowed;  ///< empty = any value
  __int128 tagged = 0;               ///< cost whose records have a value
  __int128 valid = 0;                ///< ... and an allowed one
};

/// A value the policy does not allow, and the cost that carries it.
struct PolicyViolation {
  std::string dimension;
  std::string value;
  __int128 cost = 0;
};

/// A resource (or, for records without a resource id, a service) with cost that is not
/// fully allocated.
struct UntaggedResource {
  std::string resource;       ///< resource id, "(none)" when the records have none
  std::string resource_name;  ///< "(none)" when missing
  std::string service;
  std::string provider;
  __int128 cost = 0;                  ///< its cost that is not fully allocated
  std::vector<std::string> problems;  ///< "team missing", "environment=prod not allowed"
};

/// The audit. Costs in nanos of effective cost; shares are for the caller to compute.
struct ComplianceReport {
  __int128 total = 0;
  __int128 allocated = 0;             ///< cost with every required dimension present and allowed
  std::vector<std::string> required;  ///< the dimensions that must be present
  /// True when the policy requires nothing and `team` was required in its place.
  bool required_by_default = false;
  std::vector<DimensionCoverage> dimensions;  ///< canonical ones first, then custom ones
  std::vector<PolicyViolation> violations;    ///< every one, by cost, largest first
  std::vector<UntaggedResource> untagged;     ///< the top ones, by cost, largest first
  int64_t untagged_count = 0;                 ///< all resources with unallocated cost
};

/// Audits the ledger's cost over [from, to) against the policy, with one grouped query.
Result<ComplianceReport> audit_tags(ledger::Ledger& ledger, const TagPolicy& policy,
                                    const AuditRequest& request);

}  // namespace aifinops::allocate
