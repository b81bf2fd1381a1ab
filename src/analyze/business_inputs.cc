#include "analyze/business_inputs.h"

#include <algorithm>

#include "config/yaml_reader.h"

namespace aifinops::analyze {
namespace {

using config::node_kind;

/// "2025-05" -> its first day; nullopt unless exactly YYYY-MM with a real month.
std::optional<EpochSeconds> parse_month(std::string_view text) {
  if (text.size() != 7 || text[4] != '-') return std::nullopt;
  for (size_t i : {0, 1, 2, 3, 5, 6})
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
  auto t = parse_timestamp(std::string(text) + "-01");
  if (!t) return std::nullopt;
  return *t;
}

/// "2025-05-01" -> that UTC day; nullopt unless a plain date.
std::optional<EpochSeconds> parse_day(std::string_view text) {
  TimestampStyle style = TimestampStyle::kRfc3339;
  auto t = parse_timestamp(text, &style);
  if (!t || style != TimestampStyle::kDateOnly) return std::nullopt;
  return *t;
}

class BusinessReader : public config::YamlReader {
 public:
  BusinessReader(std::string_view file_name, BusinessInputs& into)
      : YamlReader(file_name), into_(into) {}

  Result<void> read(const YAML::Node& root) {
    if (!root || root.IsNull()) return {};
    if (!root.IsMap())
      return fail_result(root, "(top level)",
                         "expected a mapping with projects:, training_runs:, ...");
    if (!check_keys(root, "",
                    {"quality_benchmark", "model_quality", "projects", "training_runs", "workloads",
                     "gpu_busy_hours"}))
      return *error_;
    if (root["quality_benchmark"] &&
        !read_string(root["quality_benchmark"], "quality_benchmark", into_.quality_benchmark))
      return *error_;
    if (!read_model_quality(root["model_quality"])) return *error_;
    if (!read_projects(root["projects"])) return *error_;
    bool ok = read_list(root, "training_runs", [&](const YAML::Node& n, const std::string& p) {
      return read_training_run(n, p);
    });
    ok = ok && read_list(root, "workloads", [&](const YAML::Node& n, const std::string& p) {
           return read_workload(n, p);
         });
    ok = ok && read_list(root, "gpu_busy_hours", [&](const YAML::Node& n, const std::string& p) {
           return read_gpu_busy_hours(n, p);
         });
    if (!ok) return *error_;
    return {};
  }

 private:
  std::string origin(const YAML::Node& node) const {
    std::string where(file_name_);
    if (node.Mark().line >= 0) where += ":" + std::to_string(node.Mark().line + 1);
    return where;
  }

  bool read_name(const YAML::Node& n, const std::string& path, std::string& out) {
    if (!n["name"]) return fail(n, path + ".name", "missing (every entry needs a name)");
    if (!read_string(n["name"], path + ".name", out)) return false;
    if (out.empty()) return fail(n["name"], path + ".name", "must not be empty");
    return true;
  }

  /// A scope mapping; `fallback` is used when the key is absent (empty = required).
  bool read_scope(const YAML::Node& n, const std::string& path, const Scope& fallback, Scope& out) {
    if (!n["scope"]) {
      if (fallback.empty())
        return fail(n, path + ".scope",
                    "missing: which records this is about, e.g. {project: support-chatbot}");
      out = fallback;
      return true;
    }
    if (!read_string_map(n["scope"], path + ".scope", out)) return false;
    if (out.empty())
      return fail(n["scope"], path + ".scope",
                  "must name at least one dimension, e.g. {project: support-chatbot}");
    return true;
  }

  bool read_day(const YAML::Node& node, const std::string& path, std::optional<EpochSeconds>& out) {
    std::string text;
    if (!scalar_text(node, path, "a date like 2025-04-01", text)) return false;
    out = parse_day(text);
    if (!out) return fail(node, path, "\"" + text + "\" is not a date like 2025-04-01");
    return true;
  }

  /// A decimal > 0; a trailing '%' is allowed where `percent_ok`.
  bool read_positive(const YAML::Node& node, const std::string& path, Decimal& out,
                     bool percent_ok = false) {
    std::string text;
    if (!scalar_text(node, path, "a number", text)) return false;
    std::string_view digits = text;
    if (percent_ok && !digits.empty() && digits.back() == '%') digits.remove_suffix(1);
    Decimal value;
    DecimalError why = DecimalError::kSyntax;
    if (!parse_decimal(digits, value, &why))
      return fail(node, path, "\"" + text + "\" " + decimal_error_text(why));
    if (value.nanos <= 0) return fail(node, path, "\"" + text + "\" must be more than 0");
    out = value;
    return true;
  }

  bool read_money(const YAML::Node& node, const std::string& path, std::optional<Money>& out) {
    if (!read_decimal(node, path, out)) return false;
    return true;
  }

  bool read_model_quality(const YAML::Node& node) {
    if (!node || node.IsNull()) return true;
    if (!node.IsMap())
      return fail(node, "model_quality",
                  "expected a mapping of model names to scores, like {gpt-4o: 88.7}, found " +
                      node_kind(node));
    for (const auto& item : node) {
      std::string model = item.first.Scalar();
      Decimal score;
      if (!read_positive(item.second, "model_quality." + model, score)) return false;
      if (into_.model_quality.count(model))
        return fail(item.first, "model_quality." + model, "is given twice");
      into_.model_quality[model] = score;
    }
    return true;
  }

  bool read_projects(const YAML::Node& node) {
    if (!node || node.IsNull()) return true;
    if (!node.IsMap())
      return fail(node, "projects",
                  "expected a mapping of project names, found " + node_kind(node));
    for (const auto& item : node) {
      ProjectInputs p;
      p.name = item.first.Scalar();
      std::string path = "projects." + p.name;
      const YAML::Node& n = item.second;
      p.origin = origin(item.first);
      if (into_.find_project(p.name) != nullptr) return fail(item.first, path, "is given twice");
      if (!n.IsMap())
        return fail(n, path,
                    "expected a mapping with started:, value_usd:, ..., found " + node_kind(n));
      if (!check_keys(n, path,
                      {"scope", "started", "deployed", "value_expected_by", "value_reached",
                       "value_target_usd_per_month", "alternative_cost_usd_per_day", "value_usd"}))
        return false;
      if (!read_scope(n, path, Scope{{"project", p.name}}, p.scope)) return false;
      if (n["started"] && !read_day(n["started"], path + ".started", p.started)) return false;
      if (n["deployed"] && !read_day(n["deployed"], path + ".deployed", p.deployed)) return false;
      if (n["value_expected_by"] &&
          !read_day(n["value_expected_by"], path + ".value_expected_by", p.value_expected_by))
        return false;
      if (n["value_reached"] &&
          !read_day(n["value_reached"], path + ".value_reached", p.value_reached))
        return false;
      if (n["value_target_usd_per_month"] &&
          !read_money(n["value_target_usd_per_month"], path + ".value_target_usd_per_month",
                      p.value_target_per_month))
        return false;
      if (n["alternative_cost_usd_per_day"] &&
          !read_money(n["alternative_cost_usd_per_day"], path + ".alternative_cost_usd_per_day",
                      p.alternative_cost_per_day))
        return false;
      if (p.alternative_cost_per_day && p.alternative_cost_per_day->nanos == 0)
        return fail(n["alternative_cost_usd_per_day"], path + ".alternative_cost_usd_per_day",
                    "must be more than 0");
      if (p.started && p.deployed && *p.deployed < *p.started)
        return fail(n["deployed"], path + ".deployed", "is before started:");
      if (const YAML::Node v = n["value_usd"]; v && !v.IsNull()) {
        if (!v.IsMap())
          return fail(v, path + ".value_usd",
                      "expected a mapping of months to amounts, like {2025-05: 42000}, found " +
                          node_kind(v));
        for (const auto& month_item : v) {
          std::string key = month_item.first.Scalar();
          std::string month_path = path + ".value_usd." + key;
          auto month = parse_month(key);
          if (!month)
            return fail(month_item.first, month_path,
                        "\"" + key + "\" is not a month like 2025-05");
          std::optional<Money> amount;
          if (!read_money(month_item.second, month_path, amount)) return false;
          if (!amount) return fail(month_item.second, month_path, "needs an amount");
          if (!p.value_by_month.emplace(*month, *amount).second)
            return fail(month_item.first, month_path, "is given twice");
        }
      }
      into_.projects.push_back(std::move(p));
    }
    return true;
  }

  bool read_training_run(const YAML::Node& n, const std::string& path) {
    if (!check_keys(n, path, {"name", "scope", "from", "to", "accuracy", "metric", "cost_usd"}))
      return false;
    TrainingRun run;
    run.origin = origin(n);
    if (!read_name(n, path, run.name)) return false;
    for (const TrainingRun& other : into_.training_runs)
      if (other.name == run.name)
        return fail(n["name"], path + ".name", "\"" + run.name + "\" is the name of another run");
    if (!read_scope(n, path, {}, run.scope)) return false;
    if (!n["from"] || !n["to"])
      return fail(n, path, "needs from: and to: (the run's first and last day)");
    std::optional<EpochSeconds> from, to;
    if (!read_day(n["from"], path + ".from", from) || !read_day(n["to"], path + ".to", to))
      return false;
    if (*to < *from) return fail(n["to"], path + ".to", "is before from:");
    run.from = *from;
    run.to = *to + 86400;  // the last day is included
    if (!n["accuracy"])
      return fail(n, path + ".accuracy", "missing: the score the run reached, e.g. 95 (for 95%)");
    if (!read_positive(n["accuracy"], path + ".accuracy", run.accuracy, true)) return false;
    if (run.accuracy > Decimal::from_units(100))
      return fail(n["accuracy"], path + ".accuracy", "is a score out of 100 (95 for 95%)");
    if (n["metric"] && !read_string(n["metric"], path + ".metric", run.metric)) return false;
    if (n["cost_usd"] && !read_money(n["cost_usd"], path + ".cost_usd", run.cost)) return false;
    into_.training_runs.push_back(std::move(run));
    return true;
  }

  bool read_workload(const YAML::Node& n, const std::string& path) {
    if (!check_keys(n, path, {"name", "scope", "required_quality", "benchmark"})) return false;
    WorkloadQuality w;
    w.origin = origin(n);
    if (!read_name(n, path, w.name)) return false;
    for (const WorkloadQuality& other : into_.workloads)
      if (other.name == w.name)
        return fail(n["name"], path + ".name",
                    "\"" + w.name + "\" is the name of another workload");
    if (!read_scope(n, path, Scope{{"project", w.name}}, w.scope)) return false;
    if (!n["required_quality"])
      return fail(n, path + ".required_quality",
                  "missing: the lowest benchmark score the task needs, e.g. 54");
    if (!read_positive(n["required_quality"], path + ".required_quality", w.required_quality))
      return false;
    if (n["benchmark"] && !read_string(n["benchmark"], path + ".benchmark", w.benchmark)) return false;
    into_.workloads.push_back(std::move(w));
    return true;
  }

  bool read_gpu_busy_hours(const YAML::Node& n, const std::string& path) {
    if (!check_keys(n, path, {"name", "scope", "month", "busy_gpu_hours"})) return false;
    GpuBusyHours g;
    g.origin = origin(n);
    if (!read_name(n, path, g.name)) return false;
    if (!read_scope(n, path, {}, g.scope)) return false;
    std::string month;
    if (!n["month"]) return fail(n, path + ".month", "missing: the month measured, e.g. 2025-09");
    if (!scalar_text(n["month"], path + ".month", "a month like 2025-09", month)) return false;
    auto start = parse_month(month);
    if (!start)
      return fail(n["month"], path + ".month", "\"" + month + "\" is not a month like 2025-09");
    g.month = *start;
    for (const GpuBusyHours& other : into_.gpu_busy_hours)
      if (other.name == g.name && other.month == g.month)
        return fail(n, path, "\"" + g.name + "\" has " + month + " twice");
    if (!n["busy_gpu_hours"])
      return fail(n, path + ".busy_gpu_hours", "missing: GPU-hours the GPUs were busy");
    std::optional<Decimal> hours;
    if (!read_decimal(n["busy_gpu_hours"], path + ".busy_gpu_hours", hours)) return false;
    if (!hours) return fail(n["busy_gpu_hours"], path + ".busy_gpu_hours", "needs a number");
    g.busy_gpu_hours = *hours;
    into_.gpu_busy_hours.push_back(std::move(g));
    return true;
  }

  BusinessInputs& into_;
};

/// Splits one CSV record (RFC 4180 quotes; the record has no line break inside).
std::vector<std::string> split_csv_line(std::string_view line, bool& ok) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  ok = true;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back() += c;
      }
    } else if (c == '"' && fields.back().empty()) {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  ok = !quoted;
  for (std::string& f : fields) {
    while (!f.empty() && (f.back() == ' ' || f.back() == '\t')) f.pop_back();
    size_t start = f.find_first_not_of(" \t");
    f.erase(0, start == std::string::npos ? f.size() : start);
  }
  return fields;
}

bool ends_with_ci(std::string_view s, std::string_view suffix) {
  if (s.size() < suffix.size()) return false;
  for (size_t i = 0; i < suffix.size(); ++i) {
    char a = s[s.size() - suffix.size() + i];
    if (a >= 'A' && a <= 'Z') a = (char)(a - 'A' + 'a');
    if (a != suffix[i]) return false;
  }
  return true;
}

}  // namespace

std::string scope_words(const Scope& scope) {
  std::string s;
  for (const auto& [k, v] : scope) s += (s.empty() ? "" : ", ") + k + "=" + v;
  return s;
}

Result<size_t> ScopeSet::add(const Scope& scope, const std::string& origin,
                             const allocate::TagPolicy* tags) {
  std::vector<std::pair<size_t, std::string>> terms;
  for (const auto& [name, value] : scope) {
    size_t index = (size_t)(std::find(names_.begin(), names_.end(), name) - names_.begin());
    if (index == names_.size()) {
      ledger::Dimension d;
      if (const allocate::CustomDimension* custom =
              tags != nullptr ? tags->find_custom(name) : nullptr) {
        d.kind = ledger::Dimension::Kind::kTag;
        d.tag_keys = custom->aliases;
        d.label = name;
      } else {
        auto parsed = ledger::parse_dimension(name);
        if (!parsed)
          return make_error(ErrorCode::kInvalidArgument,
                            origin + ": scope: " + parsed.error().message);
        if (parsed->kind == ledger::Dimension::Kind::kTime)
          return make_error(ErrorCode::kInvalidArgument,
                            origin + ": scope: \"" + name + "\" is time, not a dimension to match");
        d = *parsed;
      }
      names_.push_back(name);
      dimensions_.push_back(std::move(d));
    }
    terms.push_back({index, value});
  }
  scopes_.push_back(std::move(terms));
  return scopes_.size() - 1;
}

bool ScopeSet::matches(size_t i, const std::vector<std::string>& keys, size_t offset) const {
  for (const auto& [index, value] : scopes_[i])
    if (keys[offset + index] != value) return false;
  return true;
}

std::vector<ledger::Filter> ScopeSet::filters(size_t i) const {
  std::vector<ledger::Filter> out;
  for (const auto& [index, value] : scopes_[i]) out.push_back({dimensions_[index], value});
  return out;
}

std::vector<std::pair<std::string, std::string>> ScopeSet::terms(size_t i) const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [index, value] : scopes_[i]) out.push_back({names_[index], value});
  return out;
}

const ProjectInputs* BusinessInputs::find_project(std::string_view name) const {
  for (const ProjectInputs& p : projects)
    if (p.name == name) return &p;
  return nullptr;
}

Result<void> parse_business_yaml(std::string_view text, std::string_view file_name,
                                 BusinessInputs& into) {
  auto root = config::load_yaml(text, file_name);
  if (!root) return Unexpected{root.error()};
  try {
    return BusinessReader(file_name, into).read(*root);
  } catch (const YAML::Exception& e) {
    // yaml-cpp throws on some malformed trees while walking them: the boundary is here.
    return make_error(ErrorCode::kParse, std::string(file_name) + ": " + e.msg);
  }
}

Result<void> parse_business_csv(std::string_view text, std::string_view file_name,
                                BusinessInputs& into) {
  std::string file(file_name);
  int project_col = -1, month_col = -1, value_col = -1;
  size_t header_width = 0;
  int64_t line_number = 0;
  bool header_seen = false;
  size_t pos = 0;
  if (text.starts_with("\xEF\xBB\xBF")) pos = 3;  // a spreadsheet's byte-order mark
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t,") == std::string_view::npos) continue;
    std::string where = file + ":" + std::to_string(line_number);
    bool ok = true;
    std::vector<std::string> fields = split_csv_line(line, ok);
    if (!ok) return make_error(ErrorCode::kParse, where + ": a quoted field is not closed");
    if (!header_seen) {
      header_seen = true;
      header_width = fields.size();
      for (size_t i = 0; i < fields.size(); ++i) {
        std::string name = fields[i];
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return (char)std::tolower(c); });
        if (name == "project")
          project_col = (int)i;
        else if (name == "month")
          month_col = (int)i;
        else if (name == "value_usd")
          value_col = (int)i;
      }
      if (project_col < 0 || month_col < 0 || value_col < 0)
        return make_error(
            ErrorCode::kParse,
            where + ": the header needs the columns project, month and value_usd (found: " +
                std::string(line) + ")");
      continue;
    }
    if (fields.size() != header_width)
      return make_error(ErrorCode::kParse, where + ": " + std::to_string(fields.size()) +
                                               " fields, the header has " +
                                               std::to_string(header_width));
    const std::string& project = fields[(size_t)project_col];
    const std::string& month_text = fields[(size_t)month_col];
    const std::string& value_text = fields[(size_t)value_col];
    if (project.empty()) return make_error(ErrorCode::kParse, where + ": column project: empty");
    auto month = parse_month(month_text);
    if (!month)
      return make_error(ErrorCode::kParse, where + ": column month: \"" + month_text +
                                               "\" is not a month like 2025-05");
    Decimal value;
    DecimalError why = DecimalError::kSyntax;
    if (!parse_decimal(value_text, value, &why))
      return make_error(ErrorCode::kParse, where + ": column value_usd: \"" + value_text + "\" " +
                                               decimal_error_text(why));
    if (value.nanos < 0)
      return make_error(ErrorCode::kParse,
                        where + ": column value_usd: \"" + value_text + "\" must not be negative");
    ProjectInputs* p = nullptr;
    for (ProjectInputs& candidate : into.projects)
      if (candidate.name == project) p = &candidate;
    if (p == nullptr) {
      ProjectInputs added;
      added.name = project;
      added.scope = Scope{{"project", project}};
      added.origin = where;
      into.projects.push_back(std::move(added));
      p = &into.projects.back();
    }
    if (!p->value_by_month.emplace(*month, value).second)
      return make_error(ErrorCode::kParse, where + ": " + project + " " + month_text +
                                               " already has a value (from " + p->origin + ")");
  }
  if (!header_seen)
    return make_error(ErrorCode::kParse,
                      file + ": empty; expected a header with project, month, value_usd");
  return {};
}

Result<BusinessInputs> load_business_files(const std::vector<std::string>& paths) {
  BusinessInputs inputs;
  for (const std::string& path : paths) {
    auto text = config::read_text_file(path, "business input file (set with --business)");
    if (!text) return Unexpected{text.error()};
    Result<void> read = ends_with_ci(path, ".csv") ? parse_business_csv(*text, path, inputs)
                                                   : parse_business_yaml(*text, path, inputs);
    if (!read) return Unexpected{read.error()};
    inputs.files.push_back(path);
  }
  return inputs;
}

}  // namespace aifinops::analyze
