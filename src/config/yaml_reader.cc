#include "config/yaml_reader.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <set>
#include <sstream>

namespace aifinops::config {

Result<YAML::Node> load_yaml(std::string_view text, std::string_view file_name) {
  try {
    return YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    // yaml-cpp reports syntax errors by exception; this is the boundary where they become values.
    std::string where(file_name);
    if (e.mark.line >= 0)
      where += ':' + std::to_string(e.mark.line + 1) + ':' + std::to_string(e.mark.column + 1);
    return make_error(ErrorCode::kParse, where + ": not valid YAML: " + e.msg);
  }
}

Result<std::string> read_text_file(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kIo, path + ": cannot open the " + std::string(what));
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return make_error(ErrorCode::kIo, path + ": cannot read the " + std::string(what));
  return buffer.str();
}

std::string node_kind(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Null: return "nothing";
    default: return "a scalar";
  }
}

bool YamlReader::fail(const YAML::Node& node, const std::string& path, const std::string& what) {
  if (error_) return false;
  std::string where(file_name_);
  if (node.Mark().line >= 0) {
    where += ':';
    where += std::to_string(node.Mark().line + 1);
  }
  error_ = Unexpected{Error{ErrorCode::kInvalidArgument, where + ": " + path + ": " + what}};
  return false;
}

Unexpected YamlReader::fail_result(const YAML::Node& node, const std::string& path,
                                   const std::string& what) {
  fail(node, path, what);
  return *error_;
}

bool YamlReader::check_keys(const YAML::Node& map, const std::string& path,
                            std::initializer_list<std::string_view> allowed) {
  std::set<std::string> seen;
  for (const auto& item : map) {
    std::string prefix = path.empty() ? "" : path + ".";
    if (!item.first.IsScalar())
      return fail(item.first, path.empty() ? "(top level)" : path, "keys must be plain names");
    std::string key = item.first.Scalar();
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::string list;
      for (std::string_view a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      return fail(item.first, prefix + key, "unknown key (expected one of: " + list + ")");
    }
    if (!seen.insert(key).second) return fail(item.first, prefix + key, "is given twice");
  }
  return true;
}

bool YamlReader::scalar_text(const YAML::Node& node, const std::string& path,
                             std::string_view expected, std::string& out) {
  if (!node.IsScalar())
    return fail(node, path, "expected " + std::string(expected) + ", found " + node_kind(node));
  out = node.Scalar();
  return true;
}

bool YamlReader::read_string(const YAML::Node& node, const std::string& path, std::string& out) {
  if (node.IsNull()) {
    out.clear();
    return true;
  }
  return scalar_text(node, path, "a text value", out);
}

bool YamlReader::read_string_list(const YAML::Node& node, const std::string& path,
                                  std::vector<std::string>& out) {
  out.clear();
  if (node.IsNull()) return true;
  if (node.IsScalar()) {
    out.push_back(node.Scalar());
    return true;
  }
  if (!node.IsSequence()) return fail(node, path, "expected a list of names, found " + node_kind(node));
  for (size_t i = 0; i < node.size(); ++i) {
    std::string value;
    if (!scalar_text(node[i], path + "[" + std::to_string(i) + "]", "a text value", value)) return false;
    out.push_back(std::move(value));
  }
  return true;
}

bool YamlReader::read_bool(const YAML::Node& node, const std::string& path, bool& out) {
  std::string text;
  if (!scalar_text(node, path, "true or false", text)) return false;
  if (text == "true" || text == "yes") out = true;
  else if (text == "false" || text == "no") out = false;
  else return fail(node, path, "\"" + text + "\" is not true or false");
  return true;
}

bool YamlReader::read_decimal(const YAML::Node& node, const std::string& path,
                              std::optional<Decimal>& out) {
  if (node.IsNull()) {
    out.reset();
    return true;
  }
  std::string text;
  if (!scalar_text(node, path, "a decimal number", text)) return false;
  Decimal value;
  DecimalError why = DecimalError::kSyntax;
  if (!parse_decimal(text, value, &why)) return fail(node, path, "\"" + text + "\" " + decimal_error_text(why));
  if (value.nanos < 0) return fail(node, path, "\"" + text + "\" must not be negative");
  out = value;
  return true;
}

bool YamlReader::read_count(const YAML::Node& node, const std::string& path, int64_t& out) {
  std::string text;
  if (!scalar_text(node, path, "a whole number", text)) return false;
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 0)
    return fail(node, path, "\"" + text + "\" is not a whole number >= 0");
  out = value;
  return true;
}

bool YamlReader::read_string_map(const YAML::Node& node, const std::string& path,
                                 std::map<std::string, std::string>& out) {
  out.clear();
  if (node.IsNull()) return true;
  if (!node.IsMap()) return fail(node, path, "expected a mapping like {team: team-a}, found " + node_kind(node));
  for (const auto& item : node) {
    std::string key = item.first.Scalar(), value;
    if (!scalar_text(item.second, path + "." + key, "a text value", value)) return false;
    out[key] = value;
  }
  return true;
}

bool YamlReader::read_budget(const YAML::Node& n, const std::string& path, BudgetRule& b) {
  if (!n.IsMap()) return fail(n, path, "expected a mapping with scope, period, amount_usd, found " + node_kind(n));
  if (!check_keys(n, path, {"name", "scope", "period", "amount_usd", "enforce", "alert_at"})) return false;
  if (!n["scope"] || !n["amount_usd"]) return fail(n, path, "needs scope: and amount_usd:");
  if (!read_string_map(n["scope"], path + ".scope", b.scope)) return false;
  if (b.scope.empty()) return fail(n["scope"], path + ".scope", "must name at least one dimension, e.g. {team: team-a}");
  std::string period = "month", enforce = "hard";
  if (n["period"] && !read_string(n["period"], path + ".period", period)) return false;
  if (!period_from_name(period, b.period))
    return fail(n["period"], path + ".period", "\"" + period + "\" is not one of day, week, month");
  std::optional<Decimal> amount;
  if (!read_decimal(n["amount_usd"], path + ".amount_usd", amount)) return false;
  if (!amount || amount->nanos <= 0) return fail(n["amount_usd"], path + ".amount_usd", "must be more than 0");
  b.amount = *amount;
  if (n["enforce"] && !read_string(n["enforce"], path + ".enforce", enforce)) return false;
  if (enforce != "hard" && enforce != "soft") return fail(n["enforce"], path + ".enforce", "\"" + enforce + "\" is not hard or soft");
  b.hard = enforce == "hard";
  if (n["alert_at"]) {
    std::vector<std::string> thresholds;
    if (!read_string_list(n["alert_at"], path + ".alert_at", thresholds)) return false;
    for (const std::string& text : thresholds) {
      // "80%", "80", "forecast 100%"
      AlertThreshold t;
      std::string_view rest = text;
      if (rest.starts_with("forecast")) {
        t.forecast = true;
        rest.remove_prefix(8);
        while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
      }
      if (!rest.empty() && rest.back() == '%') rest.remove_suffix(1);
      bool digits = !rest.empty() && rest.size() <= 6;
      for (char c : rest) digits &= c >= '0' && c <= '9';
      if (!digits || std::stoll(std::string(rest)) == 0)
        return fail(n["alert_at"], path + ".alert_at",
                    "\"" + text + "\" is not a threshold; write a whole percent like \"80%\" or \"forecast 100%\"");
      t.percent = std::stoll(std::string(rest));
      b.alert_at.push_back(t);
    }
  }
  if (n["name"]) {
    if (!read_string(n["name"], path + ".name", b.name)) return false;
  } else {
    b.name = scope_text(b.scope) + " (" + period + ")";
  }
  return true;
}

}  // namespace aifinops::config
