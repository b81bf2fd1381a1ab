#include "config/policy_yaml.h"

#include "config/yaml_reader.h"

namespace aifinops::config {
namespace {

class PolicyReader : public YamlReader {
 public:
  using YamlReader::YamlReader;

  Result<allocate::TagPolicy> read(const YAML::Node& root) {
    allocate::TagPolicy policy = allocate::TagPolicy::defaults();
    if (!root || root.IsNull()) return policy;
    if (!root.IsMap()) return fail_result(root, "(top level)", "expected a mapping with dimensions:");
    if (!check_keys(root, "", {"dimensions", "shared_costs", "budgets", "api_tokens"})) return *error_;
    const YAML::Node dimensions = root["dimensions"];
    if (!dimensions || dimensions.IsNull()) return policy;
    if (!dimensions.IsMap())
      return fail_result(dimensions, "dimensions", "expected a mapping of dimension names, found " + node_kind(dimensions));
    for (const auto& item : dimensions) {
      std::string name = item.first.Scalar();
      std::string path = "dimensions." + name;
      if (!read_dimension(name, item.second, path, policy)) return *error_;
    }
    return policy;
  }

 private:
  bool read_dimension(const std::string& name, const YAML::Node& node, const std::string& path,
                      allocate::TagPolicy& policy) {
    bool valid_name = !name.empty();
    for (char c : name) valid_name &= (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    if (!valid_name)
      return fail(node, path, "a dimension name is lower-case letters, digits and '_' (e.g. cost_center)");
    allocate::CustomDimension d;
    d.name = name;
    if (!node.IsNull()) {
      if (!node.IsMap()) return fail(node, path, "expected a mapping with aliases, allowed, required");
      if (!check_keys(node, path, {"aliases", "allowed", "required"})) return false;
      if (node["aliases"] && !read_string_list(node["aliases"], path + ".aliases", d.aliases)) return false;
      if (node["allowed"] && !read_string_list(node["allowed"], path + ".allowed", d.allowed)) return false;
      if (node["required"] && !read_bool(node["required"], path + ".required", d.required)) return false;
    }
    Attr attribute = attribute_from_name(name);
    if (attribute >= kFirstDimension && attribute <= kLastDimension)
      return policy.extend(name, d.aliases, d.allowed, d.required) || fail(node, path, "cannot extend");
    if (attribute != Attr::kCount)
      return fail(node, path, "\"" + name + "\" is a built-in column, not a tag dimension; choose another name");
    if (d.aliases.empty())
      return fail(node, path + ".aliases",
                  "a custom dimension needs at least one raw tag key, e.g. aliases: [" + name + "]");
    if (!policy.add_custom(d)) return fail(node, path, "is defined twice");
    return true;
  }
};

}  // namespace

Result<allocate::TagPolicy> parse_policy_yaml(std::string_view text, std::string_view file_name) {
  auto root = load_yaml(text, file_name);
  if (!root) return Unexpected{root.error()};
  try {
    return PolicyReader(file_name).read(*root);
  } catch (const YAML::Exception& e) {
    return make_error(ErrorCode::kParse, std::string(file_name) + ": " + e.msg);
  }
}

Result<allocate::TagPolicy> load_policy_file(const std::string& path) {
  if (path.empty()) return allocate::TagPolicy::defaults();
  auto text = read_text_file(path, "policy file (set with --config or $AIFINOPS_CONFIG)");
  if (!text) return Unexpected{text.error()};
  return parse_policy_yaml(*text, path);
}

}  // namespace aifinops::config
