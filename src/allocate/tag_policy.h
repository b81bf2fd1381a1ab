// The tag policy: canonical allocation dimensions (team, project, environment, ...) and
// the raw tag spellings that map to each ("Team", "owner-team", "env", ...). Built once
// (defaults plus policy.yaml) and shared const.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/record.h"

namespace aifinops::allocate {

/// One canonical dimension and its aliases.
struct DimensionRule {
  Attr attribute = Attr::kCount;       ///< the column it fills (kTeam ... kShutdownEligible)
  std::vector<std::string> aliases;    ///< raw tag keys, matched case-insensitively
  std::vector<std::string> allowed;    ///< allowed values (exact, or with * wildcards); empty = any
  bool required = false;
};

/// A dimension a policy adds beyond the canonical ones ("owner", "product"). It has no
/// column of its own: queries read it from the raw tags, first alias present wins, so the
/// aliases are matched exactly as spelled.
struct CustomDimension {
  std::string name;
  std::vector<std::string> aliases;
  std::vector<std::string> allowed;
  bool required = false;
};

/// Maps raw tags to canonical dimension values. Immutable after construction; thread-safe.
class TagPolicy {
 public:
  /// The built-in policy: the paper's dimensions with common raw spellings.
  static TagPolicy defaults();

  /// Adds aliases and constraints for a dimension ("team", "cost_center", ...).
  /// Returns false if `dimension` is not a canonical dimension name.
  bool extend(std::string_view dimension, const std::vector<std::string>& aliases,
              const std::vector<std::string>& allowed, bool required);

  /// Fills the canonical dimension attributes of `out` from a raw tags JSON object
  /// (`{"Team":"a","env":"prod"}`). Values are copied into `storage` (one string per
  /// dimension) and `out` points at them. Keys that match no alias are left in the tags.
  /// Returns false if `tags_json` is not a JSON object of scalars (the dimensions are
  /// then left empty).
  bool apply(std::string_view tags_json, std::array<std::string, kAttrCount>& storage,
             AttributeViews& out) const;

  /// The canonical dimension a raw tag key maps to ("owner-team" -> kTeam), or kCount.
  Attr dimension_of(std::string_view raw_key) const;

  /// Adds a custom dimension; false if the name is canonical, already used, or has no alias.
  bool add_custom(CustomDimension dimension);
  const CustomDimension* find_custom(std::string_view name) const;
  const std::vector<CustomDimension>& custom_dimensions() const { return custom_; }

  const std::vector<DimensionRule>& rules() const { return rules_; }

  /// A text that changes whenever the alias mapping changes. Ingest mixes it into attribute
  /// fingerprints, so that rows ingested under a changed policy get their dimensions anew.
  std::string fingerprint() const;

 private:
  std::vector<DimensionRule> rules_;
  std::vector<CustomDimension> custom_;
  std::unordered_map<std::string, Attr> alias_to_attribute_;  // lower-cased, '-'/' ' -> '_'
};

/// Lower-cases and folds '-', ' ' and '.' to '_' so that "Cost-Center" == "cost_center".
std::string normalize_tag_key(std::string_view key);

}  // namespace aifinops::allocate
