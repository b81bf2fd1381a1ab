// Business inputs of the KPIs: what the ledger cannot know (value delivered per project and
// month, accuracy of training runs, milestones, required and offered model quality, busy
// GPU-hours), read from business.yaml or a CSV of monthly value, with errors that name the
// file, line and key. docs/kpi-and-maturity.md documents the file; config/business.example.yaml
// is an example for the demo organisation.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "allocate/tag_policy.h"
#include "core/money.h"
#include "core/result.h"
#include "core/time.h"
#include "ledger/ledger.h"

namespace aifinops::analyze {

/// Which records an input is about: dimension name -> value, every pair must match
/// ({project: support-chatbot}, {team: search, workload: training}).
using Scope = std::map<std::string, std::string>;

/// One AI initiative (usually a project): its milestones and the value it delivered.
struct ProjectInputs {
  std::string name;
  Scope scope;                           ///< default {project: name}
  std::optional<EpochSeconds> started;   ///< development started (a UTC day)
  std::optional<EpochSeconds> deployed;  ///< first production deploy; default: from the ledger
  std::optional<EpochSeconds> value_expected_by;  ///< when the target value was planned
  std::optional<EpochSeconds> value_reached;      ///< overrides "first month at target"
  std::optional<Money> value_target_per_month;    ///< the value the initiative should deliver
  std::optional<Money> alternative_cost_per_day;  ///< the same work without AI (break-even)
  std::map<EpochSeconds, Money> value_by_month;   ///< first day of a month -> value delivered
  std::string origin;                             ///< "business.yaml:12" for messages
};

/// A model training run and the quality it reached.
struct TrainingRun {
  std::string name;
  Scope scope;
  EpochSeconds from = 0;            ///< first day
  EpochSeconds to = 0;              ///< exclusive: the day after the last day
  Decimal accuracy;                 ///< the performance metric in points (95 = 95% accuracy), > 0
  std::string metric = "accuracy";  ///< what `accuracy` measures, for labels
  std::optional<Money> cost;        ///< overrides the ledger's cost of the scope in the dates
  std::string origin;
};

/// The minimum model quality a workload needs (e.g. an MMLU score of 54 for sentiment).
struct WorkloadQuality {
  std::string name;
  Scope scope;
  Decimal required_quality;
  std::string benchmark;  ///< the score's benchmark; empty = BusinessInputs::quality_benchmark
  std::string origin;
};

/// GPU-hours that GPUs were busy in a month, from telemetry (DCGM) or a scheduler, until the
/// ledger holds GPU telemetry itself.
struct GpuBusyHours {
  std::string name;
  Scope scope;
  EpochSeconds month = 0;  ///< first day of the month
  Decimal busy_gpu_hours;
  std::string origin;
};

/// Everything the business input files say. Plain value type.
struct BusinessInputs {
  std::vector<ProjectInputs> projects;
  std::vector<TrainingRun> training_runs;
  std::vector<WorkloadQuality> workloads;
  std::map<std::string, Decimal> model_quality;  ///< model name -> benchmark score
  std::string quality_benchmark = "MMLU";
  std::vector<GpuBusyHours> gpu_busy_hours;
  std::vector<std::string> files;  ///< the files read, in order

  bool empty() const {
    return projects.empty() && training_runs.empty() && workloads.empty() &&
           model_quality.empty() && gpu_busy_hours.empty();
  }
  const ProjectInputs* find_project(std::string_view name) const;
};

/// "project=support-chatbot, environment=production".
std::string scope_words(const Scope& scope);

/// Scopes matched against the rows of one ledger query grouped by the union of their
/// dimensions, so that one query answers every project (workload, budget, ...) at once.
/// Build with add(), query with dimensions(), then test rows with matches(). Plain value.
class ScopeSet {
 public:
  /// Adds a scope; its dimension names are a policy's custom dimensions (when `tags` is not
  /// null) or built-in ones. Returns its index; an unknown or time dimension is an error that
  /// starts with `origin` ("business.yaml:12").
  Result<size_t> add(const Scope& scope, const std::string& origin,
                     const allocate::TagPolicy* tags);

  /// The union of the scopes' dimensions, in the order first named: group a query by these.
  const std::vector<ledger::Dimension>& dimensions() const { return dimensions_; }
  size_t size() const { return dimensions_.size(); }
  size_t count() const { return scopes_.size(); }

  /// Whether a row is in scope `i`: `keys` from `offset` on are the values of dimensions().
  bool matches(size_t i, const std::vector<std::string>& keys, size_t offset = 0) const;
  /// Scope i as ledger filters, and as (name, value) pairs.
  std::vector<ledger::Filter> filters(size_t i) const;
  std::vector<std::pair<std::string, std::string>> terms(size_t i) const;

 private:
  std::vector<std::string> names_;
  std::vector<ledger::Dimension> dimensions_;
  std::vector<std::vector<std::pair<size_t, std::string>>> scopes_;  // (dimension index, value)
};

/// Reads business.yaml text into `into` (merging with what is there: a project named twice
/// is an error). Errors name the file, line and key path.
Result<void> parse_business_yaml(std::string_view text, std::string_view file_name,
                                 BusinessInputs& into);

/// Reads a CSV of value delivered: a header with the columns project, month and value_usd
/// (others are ignored), then one row per project and month. Merges into `into`; a project
/// not yet known is added with scope {project: NAME}. Errors name the file, line and column.
Result<void> parse_business_csv(std::string_view text, std::string_view file_name,
                                BusinessInputs& into);

/// Reads the files in order: ".csv" files as value CSVs, anything else as YAML.
Result<BusinessInputs> load_business_files(const std::vector<std::string>& paths);

}  // namespace aifinops::analyze
