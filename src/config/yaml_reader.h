// Shared pieces of config/'s YAML readers: loading text or a file into a tree (yaml-cpp's
// exceptions become error values here) and a base class that walks the tree, keeps the
// first error, and names the file, line and key path in it.
#pragma once

#include <yaml-cpp/yaml.h>

#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/budget.h"
#include "core/money.h"
#include "core/result.h"

namespace aifinops::config {

/// Parses YAML text; a syntax error names the file, line and column.
Result<YAML::Node> load_yaml(std::string_view text, std::string_view file_name);
/// Reads a whole file; the error names the file and says what it is (`what`).
Result<std::string> read_text_file(const std::string& path, std::string_view what);

/// "a mapping", "a list", "nothing", "a scalar": for "expected X, found Y" messages.
std::string node_kind(const YAML::Node& node);

/// Base of the readers: field readers return bool and keep the first error, so that a
/// reader is a list of plain calls instead of a Result per field.
class YamlReader {
 public:
  explicit YamlReader(std::string_view file_name) : file_name_(file_name) {}

 protected:
  /// Records "file:line: path: what" (first error wins) and returns false.
  bool fail(const YAML::Node& node, const std::string& path, const std::string& what);
  Unexpected fail_result(const YAML::Node& node, const std::string& path, const std::string& what);
  /// Every key must be one of `allowed` and appear once.
  bool check_keys(const YAML::Node& map, const std::string& path,
                  std::initializer_list<std::string_view> allowed);
  bool scalar_text(const YAML::Node& node, const std::string& path, std::string_view expected,
                   std::string& out);
  /// A text value; null reads as empty.
  bool read_string(const YAML::Node& node, const std::string& path, std::string& out);
  /// A list of text values (a single scalar is taken as a list of one).
  bool read_string_list(const YAML::Node& node, const std::string& path, std::vector<std::string>& out);
  bool read_bool(const YAML::Node& node, const std::string& path, bool& out);
  /// A non-negative exact decimal (read from its text, never through a float); null unsets.
  bool read_decimal(const YAML::Node& node, const std::string& path, std::optional<Decimal>& out);
  /// A whole number >= 0.
  bool read_count(const YAML::Node& node, const std::string& path, int64_t& out);
  /// A mapping of text keys to text values.
  bool read_string_map(const YAML::Node& node, const std::string& path,
                       std::map<std::string, std::string>& out);
  /// A budget: {name, scope, period, amount_usd, enforce, alert_at} (gateway.yaml and
  /// policy.yaml share the shape). The caller checks the scope's dimension names.
  bool read_budget(const YAML::Node& node, const std::string& path, BudgetRule& out);

  /// An optional list of mappings under `key`; read_item(node, "key[i]") reads each.
  template <typename F>
  bool read_list(const YAML::Node& root, const std::string& key, F read_item) {
    const YAML::Node list = root[key];
    if (!list || list.IsNull()) return true;
    if (!list.IsSequence()) return fail(list, key, "expected a list, found " + node_kind(list));
    for (size_t i = 0; i < list.size(); ++i) {
      std::string path = key + "[" + std::to_string(i) + "]";
      if (!list[i].IsMap()) return fail(list[i], path, "expected a mapping, found " + node_kind(list[i]));
      if (!read_item(list[i], path)) return false;
    }
    return true;
  }

  std::string_view file_name_;
  std::optional<Unexpected> error_;
};

}  // namespace aifinops::config
