// Renders reports as an aligned table, CSV or JSON: the report command's output (plain,
// --allocated, --compare previous), reused by demo, showback and tags; and the --period
// flag's time ranges.
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "allocate/shared_costs.h"
#include "cli/common.h"
#include "ledger/ledger.h"

namespace aifinops::cli {

/// Table: aligned, money to 2 decimals, a share column and a total line. CSV: header of
/// dimension labels then the metric name; full precision. JSON:
/// {"metric":...,"rows":[{...,"share":12.5}],"total":...}.
void print_report(std::FILE* out, const ledger::QuerySpec& spec, const ledger::QueryResult& result,
                  OutputFormat format);

/// A time range [from, to).
struct Period {
  EpochSeconds from = 0;
  EpochSeconds to = 0;
};

/// --period: a year (2025), a quarter (2025-Q4), a month (2025-10) or a day (2025-10-07).
Result<Period> parse_period(const std::string& text);

/// The period of the same length just before `p`: as many whole months when `p` is whole
/// months (2025-10 -> 2025-09, 2025-Q4 -> 2025-Q3), else as many seconds.
Period previous_period(const Period& p);

/// Reads --period, --from and --to together (--period excludes the other two). The error
/// names the flag and the accepted forms.
Result<void> read_time_flags(const std::string& period, const std::string& from,
                             const std::string& to, std::optional<EpochSeconds>& from_out,
                             std::optional<EpochSeconds>& to_out);

/// The month of the latest records in the ledger (rollup query), or nullopt when it is empty.
Result<std::optional<Period>> latest_month(ledger::Ledger& ledger);

/// "12.3" for 12.34%: `part` / `whole` in percent, rounded half away from zero to `places`
/// decimals; empty when `whole` is 0.
std::string percent_text(__int128 part, __int128 whole, int places);

/// A metric's value as text: money and GPU-hours to 2 decimals in tables, full precision
/// otherwise; counts as integers.
std::string format_metric(ledger::Metric metric, __int128 value, bool for_table);

/// Prints aligned columns: the header, a rule, the lines and, when `total_line` is given, a
/// rule and that line. Columns in [numeric_from, numeric_to) are right-aligned.
void print_aligned(std::FILE* out, const std::vector<std::string>& header,
                   const std::vector<std::vector<std::string>>& lines, size_t numeric_from,
                   const std::vector<std::string>* total_line, size_t numeric_to = SIZE_MAX);
/// The same as text, each line starting with `indent`.
std::string aligned_text(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& lines, size_t numeric_from,
                         const std::vector<std::string>* total_line, size_t numeric_to = SIZE_MAX,
                         const std::string& indent = "");

/// The rules and what each did, as a JSON array (docs/allocation.md).
void append_rules_json(std::string& out, const std::vector<allocate::SharedCostRule>& rules,
                       const std::vector<allocate::RuleOutcome>& outcomes, ledger::Metric metric);

/// One line per rule under a table: how much it split, how, over how many receivers.
void print_rule_lines(std::FILE* out, const std::vector<allocate::SharedCostRule>& rules,
                      const std::vector<allocate::RuleOutcome>& outcomes, ledger::Metric metric);

/// A report with the columns --allocated and --compare add.
struct ReportView {
  std::vector<std::string> labels;  ///< the group-by columns
  ledger::Metric metric = ledger::Metric::kEffectiveCost;
  std::optional<Period> period;  ///< the range asked for, when bounded on both sides

  struct Row {
    std::vector<std::string> keys;
    __int128 value = 0;            ///< the metric (with --allocated: direct + shared)
    __int128 direct = 0;           ///< --allocated: the group's own cost
    std::vector<__int128> shared;  ///< --allocated: received per rule
    __int128 previous = 0;         ///< --compare: the value in the previous period
  };
  std::vector<Row> rows;
  __int128 total = 0;

  bool allocated = false;
  std::vector<allocate::SharedCostRule> rules;  ///< --allocated
  std::vector<allocate::RuleOutcome> outcomes;  ///< --allocated, one per rule

  bool compare = false;
  Period previous;              ///< --compare
  __int128 previous_total = 0;  ///< --compare
};

/// Renders a ReportView. Table: the plain report's columns plus direct and shared
/// (--allocated) and previous, change and change % (--compare), then a line per rule.
/// CSV and JSON: see docs/allocation.md.
void print_report_view(std::FILE* out, const ReportView& view, OutputFormat format);

}  // namespace aifinops::cli
