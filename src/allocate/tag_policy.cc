#include "allocate/tag_policy.h"

#include <simdjson.h>

#include <cctype>
#include <map>

namespace aifinops::allocate {
namespace {

struct DefaultDimension {
  Attr attribute;
  std::vector<std::string> aliases;
};

// Common raw spellings seen in AWS, Azure, GCP and Kubernetes labels. Matching is on the
// normalised key, so "CostCenter", "cost-center" and "cost_center" are one alias each way.
const std::vector<DefaultDimension>& default_dimensions() {
  static const std::vector<DefaultDimension> kDefaults = {
      {Attr::kTeam, {"team", "owner-team", "owner_team", "team-name", "squad", "group"}},
      {Attr::kProject, {"project", "project-name", "app", "application", "service-name"}},
      {Attr::kEnvironment, {"environment", "env", "stage", "tier-environment"}},
      {Attr::kCostCenter, {"costcenter", "cost-center", "cost_center", "costcentre", "cc"}},
      {Attr::kWorkload, {"workload", "workload-type", "job-type"}},
      {Attr::kUsageType, {"usagetype", "usage-type", "usage_type"}},
      {Attr::kPurpose, {"purpose"}},
      {Attr::kCriticality, {"criticality", "business-criticality", "priority"}},
      {Attr::kShutdownEligible, {"shutdowneligible", "shutdown-eligible", "shutdown_eligible",
                                 "auto-shutdown"}},
  };
  return kDefaults;
}

}  // namespace

std::string normalize_tag_key(std::string_view key) {
  std::string out;
  out.reserve(key.size());
  for (char c : key) {
    if (c == '-' || c == ' ' || c == '.') c = '_';
    out.push_back((char)std::tolower((unsigned char)c));
  }
  return out;
}

TagPolicy TagPolicy::defaults() {
  TagPolicy policy;
  for (const DefaultDimension& d : default_dimensions()) {
    DimensionRule rule;
    rule.attribute = d.attribute;
    rule.aliases = d.aliases;
    for (const std::string& alias : d.aliases)
      policy.alias_to_attribute_.emplace(normalize_tag_key(alias), d.attribute);
    // The canonical name itself always maps ("cost_center", "shutdown_eligible").
    policy.alias_to_attribute_.emplace(std::string(attribute_name(d.attribute)), d.attribute);
    policy.rules_.push_back(std::move(rule));
  }
  return policy;
}

bool TagPolicy::extend(std::string_view dimension, const std::vector<std::string>& aliases,
                       const std::vector<std::string>& allowed, bool required) {
  Attr a = attribute_from_name(dimension);
  if (a < kFirstDimension || a > kLastDimension) return false;
  for (DimensionRule& rule : rules_) {
    if (rule.attribute != a) continue;
    for (const std::string& alias : aliases) {
      rule.aliases.push_back(alias);
      alias_to_attribute_[normalize_tag_key(alias)] = a;
    }
    if (!allowed.empty()) rule.allowed = allowed;
    rule.required = required;
    return true;
  }
  return false;
}

bool TagPolicy::add_custom(CustomDimension dimension) {
  Attr a = attribute_from_name(dimension.name);
  if (a != Attr::kCount || dimension.aliases.empty() || find_custom(dimension.name) != nullptr)
    return false;
  custom_.push_back(std::move(dimension));
  return true;
}

Attr TagPolicy::dimension_of(std::string_view raw_key) const {
  auto it = alias_to_attribute_.find(normalize_tag_key(raw_key));
  return it == alias_to_attribute_.end() ? Attr::kCount : it->second;
}

const CustomDimension* TagPolicy::find_custom(std::string_view name) const {
  for (const CustomDimension& d : custom_)
    if (d.name == name) return &d;
  return nullptr;
}

std::string TagPolicy::fingerprint() const {
  std::map<std::string, std::string> sorted;  // unordered_map order is not stable
  for (const auto& [alias, attribute] : alias_to_attribute_)
    sorted[alias] = std::string(attribute_name(attribute));
  std::string out;
  for (const auto& [alias, name] : sorted) out += alias + "=" + name + ";";
  return out;
}

bool TagPolicy::apply(std::string_view tags_json, std::array<std::string, kAttrCount>& storage,
                      AttributeViews& out) const {
  if (tags_json.empty()) return true;
  // Parsed only when a new attribute set is seen, so the DOM API's simplicity wins here.
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(tags_json.data(), tags_json.size()).get(doc) != simdjson::SUCCESS) return false;
  simdjson::dom::object object;
  if (doc.get_object().get(object) != simdjson::SUCCESS) return false;
  for (auto field : object) {
    auto it = alias_to_attribute_.find(normalize_tag_key(field.key));
    if (it == alias_to_attribute_.end()) continue;
    size_t slot = (size_t)it->second;
    if (!storage[slot].empty()) continue;  // the first matching key wins
    std::string value;
    std::string_view sv;
    if (field.value.get_string().get(sv) == simdjson::SUCCESS) {
      value = std::string(sv);
    } else if (field.value.is_null()) {
      continue;
    } else {
      value = simdjson::minify(field.value);
    }
    if (value.empty()) continue;
    storage[slot] = std::move(value);
  }
  for (size_t i = (size_t)kFirstDimension; i <= (size_t)kLastDimension; ++i)
    if (!storage[i].empty()) out[i] = storage[i];
  return true;
}

}  // namespace aifinops::allocate
