#include "config/policy_yaml.h"

#include "config/yaml_reader.h"
#include "ledger/ledger.h"

namespace aifinops::config {
namespace {

class PolicyReader : public YamlReader {
 public:
  using YamlReader::YamlReader;

  Result<Policy> read(const YAML::Node& root) {
    Policy policy;
    policy.source = std::string(file_name_);
    if (!root || root.IsNull()) return policy;
    if (!root.IsMap()) return fail_result(root, "(top level)", "expected a mapping with dimensions:");
    if (!check_keys(root, "", {"dimensions", "shared_costs", "budgets", "api_tokens"})) return *error_;
    const YAML::Node dimensions = root["dimensions"];
    if (dimensions && !dimensions.IsNull()) {
      if (!dimensions.IsMap())
        return fail_result(dimensions, "dimensions", "expected a mapping of dimension names, found " + node_kind(dimensions));
      for (const auto& item : dimensions) {
        std::string name = item.first.Scalar();
        std::string path = "dimensions." + name;
        if (!read_dimension(name, item.second, path, policy.tags)) return *error_;
      }
    }
    bool ok = read_list(root, "shared_costs", [&](const YAML::Node& n, const std::string& p) {
      return read_shared_cost(n, p, policy);
    });
    ok = ok && read_list(root, "budgets", [&](const YAML::Node& n, const std::string& p) {
      BudgetRule b;
      if (!read_budget(n, p, b)) return false;
      for (const auto& [dimension, value] : b.scope)
        if (!known_dimension(policy.tags, dimension)) return fail(n["scope"], p + ".scope." + dimension, dimension_help(dimension));
      for (const BudgetRule& other : policy.budgets)
        if (other.name == b.name)
          return fail(n, p + ".name", "\"" + b.name + "\" is the name of another budget; give each budget its own name");
      policy.budgets.push_back(std::move(b));
      return true;
    });
    ok = ok && read_list(root, "api_tokens", [&](const YAML::Node& n, const std::string& p) {
      return read_api_token(n, p, policy);
    });
    if (!ok) return *error_;
    return policy;
  }

 private:
  /// A name `report --by` accepts: a policy's custom dimension or a built-in one.
  static bool known_dimension(const allocate::TagPolicy& tags, const std::string& name) {
    return tags.find_custom(name) != nullptr || ledger::parse_dimension(name).has_value();
  }
  static std::string dimension_help(const std::string& name) {
    auto parsed = ledger::parse_dimension(name);
    return "\"" + name + "\" is not a dimension: " + (parsed ? std::string() : parsed.error().message);
  }

  bool read_shared_cost(const YAML::Node& n, const std::string& path, Policy& policy) {
    if (!check_keys(n, path, {"name", "match", "split", "driver", "by", "weights"})) return false;
    allocate::SharedCostRule rule;
    if (!n["name"]) return fail(n, path + ".name", "missing (every shared cost rule needs a name)");
    if (!read_string(n["name"], path + ".name", rule.name)) return false;
    for (const auto& other : policy.shared_costs)
      if (other.name == rule.name) return fail(n["name"], path + ".name", "\"" + rule.name + "\" is used by another rule");
    if (!n["match"]) return fail(n, path + ".match", "missing: which records are shared, e.g. {service: \"GPU pool\"}");
    if (!read_string_map(n["match"], path + ".match", rule.match)) return false;
    if (rule.match.empty()) return fail(n["match"], path + ".match", "must name at least one dimension");
    for (const auto& [dimension, value] : rule.match)
      if (!known_dimension(policy.tags, dimension)) return fail(n["match"], path + ".match." + dimension, dimension_help(dimension));
    std::string split = "proportional";
    if (n["split"] && !read_string(n["split"], path + ".split", split)) return false;
    if (split == "even") rule.split = allocate::SplitMethod::kEven;
    else if (split == "proportional") rule.split = allocate::SplitMethod::kProportional;
    else if (split == "fixed") rule.split = allocate::SplitMethod::kFixed;
    else return fail(n["split"], path + ".split", "\"" + split + "\" is not one of even, proportional, fixed");
    std::string driver = "effective_cost";
    if (n["driver"] && !read_string(n["driver"], path + ".driver", driver)) return false;
    if (driver == "effective_cost") rule.driver = allocate::SplitDriver::kEffectiveCost;
    else if (driver == "tokens") rule.driver = allocate::SplitDriver::kTokens;
    else if (driver == "gpu_hours") rule.driver = allocate::SplitDriver::kGpuHours;
    else if (driver == "requests") rule.driver = allocate::SplitDriver::kRequests;
    else return fail(n["driver"], path + ".driver", "\"" + driver + "\" is not one of effective_cost, tokens, gpu_hours, requests");
    if (n["by"] && !read_string(n["by"], path + ".by", rule.by)) return false;
    if (!known_dimension(policy.tags, rule.by)) return fail(n["by"] ? n["by"] : n, path + ".by", dimension_help(rule.by));
    if (n["weights"]) {
      const YAML::Node w = n["weights"];
      if (!w.IsMap()) return fail(w, path + ".weights", "expected a mapping like {alpha: 0.7, beta: 0.3}, found " + node_kind(w));
      for (const auto& item : w) {
        std::optional<Decimal> weight;
        std::string key = item.first.Scalar();
        if (!read_decimal(item.second, path + ".weights." + key, weight)) return false;
        if (!weight || weight->nanos <= 0) return fail(item.second, path + ".weights." + key, "must be more than 0");
        rule.weights[key] = *weight;
      }
    }
    if (rule.split == allocate::SplitMethod::kFixed && rule.weights.empty())
      return fail(n, path + ".weights", "split: fixed needs weights, e.g. {alpha: 0.7, beta: 0.3}");
    if (rule.split != allocate::SplitMethod::kFixed && !rule.weights.empty())
      return fail(n["weights"], path + ".weights", "weights are only read with split: fixed");
    policy.shared_costs.push_back(std::move(rule));
    return true;
  }

  bool read_api_token(const YAML::Node& n, const std::string& path, Policy& policy) {
    if (!check_keys(n, path, {"id", "token_sha256", "scope", "restrict"})) return false;
    ApiToken token;
    token.line = n.Mark().line + 1;
    if (!n["id"]) return fail(n, path + ".id", "missing (every token needs an id, e.g. id: finance)");
    if (!read_string(n["id"], path + ".id", token.id)) return false;
    if (token.id.empty()) return fail(n["id"], path + ".id", "must not be empty");
    if (!n["token_sha256"])
      return fail(n, path + ".token_sha256",
                  "missing: the SHA-256 of the token as hex (aifinops serve tokens new prints it)");
    if (!read_string(n["token_sha256"], path + ".token_sha256", token.token_sha256)) return false;
    bool hex = token.token_sha256.size() == 64;
    for (char& c : token.token_sha256) {
      if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
      hex &= (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    }
    if (!hex)
      return fail(n["token_sha256"], path + ".token_sha256",
                  "expected 64 hex digits (the SHA-256 of the token, not the token itself)");
    std::string scope;
    if (!n["scope"]) return fail(n, path + ".scope", "missing: admin or viewer");
    if (!read_string(n["scope"], path + ".scope", scope)) return false;
    if (scope == "admin") token.scope = ApiScope::kAdmin;
    else if (scope == "viewer") token.scope = ApiScope::kViewer;
    else return fail(n["scope"], path + ".scope", "\"" + scope + "\" is not one of admin, viewer");
    if (const YAML::Node r = n["restrict"]; r && !r.IsNull()) {
      std::string rpath = path + ".restrict";
      if (!r.IsMap())
        return fail(r, rpath, "expected a mapping like {team: [team-a]}, found " + node_kind(r));
      if (token.scope == ApiScope::kAdmin)
        return fail(r, rpath, "an admin token sees everything; restrict a viewer token instead");
      for (const auto& item : r) {
        std::string dimension = item.first.Scalar();
        std::string dpath = rpath + "." + dimension;
        if (!known_dimension(policy.tags, dimension))
          return fail(item.second, dpath, dimension_help(dimension));
        std::vector<std::string> values;
        if (item.second.IsScalar()) {
          std::string one;
          if (!read_string(item.second, dpath, one)) return false;
          values.push_back(one);
        } else if (!read_string_list(item.second, dpath, values)) {
          return false;
        }
        if (values.empty()) return fail(item.second, dpath, "list at least one value the token may see");
        token.restrict.emplace_back(dimension, std::move(values));
      }
    }
    for (const ApiToken& other : policy.api_tokens) {
      if (other.id == token.id)
        return fail(n["id"], path + ".id", "\"" + token.id + "\" is the id of another token");
      if (other.token_sha256 == token.token_sha256)
        return fail(n["token_sha256"], path + ".token_sha256",
                    "the same token as \"" + other.id + "\"; give each token its own secret");
    }
    policy.api_tokens.push_back(std::move(token));
    return true;
  }

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

Result<Policy> parse_policy_yaml(std::string_view text, std::string_view file_name) {
  auto root = load_yaml(text, file_name);
  if (!root) return Unexpected{root.error()};
  try {
    return PolicyReader(file_name).read(*root);
  } catch (const YAML::Exception& e) {
    return make_error(ErrorCode::kParse, std::string(file_name) + ": " + e.msg);
  }
}

Result<Policy> load_policy_file(const std::string& path) {
  if (path.empty()) return Policy{};
  auto text = read_text_file(path, "policy file (set with --config or $AIFINOPS_CONFIG)");
  if (!text) return Unexpected{text.error()};
  return parse_policy_yaml(*text, path);
}

}  // namespace aifinops::config
