#include "allocate/compliance.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

namespace aifinops::allocate {
namespace {

constexpr std::string_view kNone = "(none)";

/// A dimension the audit checks, with its place in the query's columns.
struct AuditedDimension {
  std::string name;
  bool required = false;
  std::vector<std::string> allowed;
  ledger::Dimension dimension;
};

ledger::Dimension attribute_dimension(Attr a) {
  ledger::Dimension d;
  d.attribute = a;
  d.label = std::string(attribute_name(a));
  return d;
}

struct ResourceKey {
  std::string resource, resource_name, service, provider;
  bool operator<(const ResourceKey& o) const {
    return std::tie(resource, resource_name, service, provider) <
           std::tie(o.resource, o.resource_name, o.service, o.provider);
  }
};

struct ResourceSums {
  __int128 cost = 0;
  std::set<std::pair<size_t, std::string>> problems;  // by dimension, in the policy's order
};

}  // namespace

bool matches_pattern(std::string_view pattern, std::string_view value) {
  // Greedy match with backtracking to the last '*': linear in practice, no recursion.
  size_t p = 0, v = 0, star = std::string_view::npos, resume = 0;
  while (v < value.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = v;
    } else if (p < pattern.size() && pattern[p] == value[v]) {
      ++p;
      ++v;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      v = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool value_allowed(const std::vector<std::string>& allowed, std::string_view value) {
  if (allowed.empty()) return true;
  return std::any_of(allowed.begin(), allowed.end(),
                     [&](const std::string& a) { return matches_pattern(a, value); });
}

Result<ComplianceReport> audit_tags(ledger::Ledger& ledger, const TagPolicy& policy,
                                    const AuditRequest& request) {
  std::vector<AuditedDimension> audited;
  for (const DimensionRule& rule : policy.rules())
    audited.push_back({std::string(attribute_name(rule.attribute)), rule.required, rule.allowed,
                       attribute_dimension(rule.attribute)});
  for (const CustomDimension& custom : policy.custom_dimensions()) {
    ledger::Dimension d;
    d.kind = ledger::Dimension::Kind::kTag;
    d.tag_keys = custom.aliases;
    d.label = custom.name;
    audited.push_back({custom.name, custom.required, custom.allowed, d});
  }
  ComplianceReport report;
  bool any_required = std::any_of(audited.begin(), audited.end(),
                                  [](const AuditedDimension& a) { return a.required; });
  if (!any_required) {
    // A policy that requires nothing would call every cost allocated; accountability
    // starts with an owning team, so audit that.
    report.required_by_default = true;
    for (AuditedDimension& a : audited)
      if (a.name == "team") a.required = true;
  }
  for (const AuditedDimension& a : audited) {
    if (a.required) report.required.push_back(a.name);
    report.dimensions.push_back({a.name, a.required, a.allowed, 0, 0});
  }

  ledger::QuerySpec spec;
  spec.from = request.from;
  spec.to = request.to;
  spec.metric = ledger::Metric::kEffectiveCost;
  for (const AuditedDimension& a : audited) spec.group_by.push_back(a.dimension);
  const size_t resource_column = spec.group_by.size();
  for (Attr a : {Attr::kResourceId, Attr::kResourceName, Attr::kServiceName, Attr::kProviderName})
    spec.group_by.push_back(attribute_dimension(a));
  auto result = ledger.query(spec);
  if (!result) return Unexpected{result.error()};

  std::map<std::pair<std::string, std::string>, __int128> violations;
  std::map<ResourceKey, ResourceSums> resources;
  for (const ledger::QueryRow& row : result->rows) {
    report.total += row.value;
    std::vector<std::pair<size_t, std::string>> problems;
    for (size_t i = 0; i < audited.size(); ++i) {
      const std::string& value = row.keys[i];
      DimensionCoverage& coverage = report.dimensions[i];
      bool present = value != kNone;
      bool ok = present && value_allowed(audited[i].allowed, value);
      if (present) coverage.tagged += row.value;
      if (ok) coverage.valid += row.value;
      if (present && !ok) violations[{audited[i].name, value}] += row.value;
      if (audited[i].required && !ok)
        problems.emplace_back(i, present ? audited[i].name + "=" + value + " not allowed"
                                         : audited[i].name + " missing");
    }
    if (problems.empty()) {
      report.allocated += row.value;
      continue;
    }
    ResourceSums& r = resources[{row.keys[resource_column], row.keys[resource_column + 1],
                                 row.keys[resource_column + 2], row.keys[resource_column + 3]}];
    r.cost += row.value;
    r.problems.insert(problems.begin(), problems.end());
  }

  for (const auto& [key, cost] : violations)
    report.violations.push_back({key.first, key.second, cost});
  std::stable_sort(
      report.violations.begin(), report.violations.end(),
      [](const PolicyViolation& a, const PolicyViolation& b) { return a.cost > b.cost; });
  for (const auto& [key, sums] : resources) {
    UntaggedResource u{key.resource, key.resource_name, key.service, key.provider, sums.cost, {}};
    for (const auto& [unused, problem] : sums.problems) u.problems.push_back(problem);
    report.untagged.push_back(std::move(u));
  }
  report.untagged_count = (int64_t)report.untagged.size();
  std::stable_sort(
      report.untagged.begin(), report.untagged.end(),
      [](const UntaggedResource& a, const UntaggedResource& b) { return a.cost > b.cost; });
  if (request.top_resources > 0 && report.untagged.size() > request.top_resources)
    report.untagged.resize(request.top_resources);
  return report;
}

}  // namespace aifinops::allocate
