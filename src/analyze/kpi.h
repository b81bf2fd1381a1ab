// The KPIs of the paper's "KPI and metrics" section, each computed exactly as defined there,
// with its formula, the numbers it came from and the records (a ledger query) behind them:
// cost per inference, training cost efficiency, cost per token, resource utilisation,
// anomaly rate and anomalous spend, ROI, cost per API call, time to value, time to first
// prompt and the model-selection quality gap. Ledger sums come from grouped queries that the
// rollups answer; what the ledger cannot know comes from BusinessInputs.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "allocate/tag_policy.h"
#include "analyze/anomaly.h"
#include "analyze/business_inputs.h"
#include "core/money.h"
#include "core/result.h"
#include "core/time.h"
#include "ledger/ledger.h"

namespace aifinops::analyze {

// ---- the paper's formulas, exact ---------------------------------------------------------
// Money and quantities are nano-units (Decimal); results are nano-units of their unit,
// rounded half-to-even. Callers check denominators for zero first.

/// cost / count: cost per inference, per API call, per token. $5,000 / 100,000 = $0.05.
__int128 cost_per_unit(__int128 cost_nanos, __int128 count);
/// cost / points (a decimal): training cost per accuracy point. $10,000 / 95 = $105.26.
__int128 cost_per_point(__int128 cost_nanos, __int128 points_nanos);
/// (benefit - cost) / cost x 100, in nano-percent. $50,000 on $20,000 = 150%.
__int128 roi_percent(__int128 benefit_nanos, __int128 cost_nanos);
/// part / whole x 100, in nano-percent: utilisation (800 of 1,000 GPU-hours = 80%), rates.
__int128 percent_of(__int128 part, __int128 whole);
/// Whole calendar months and the days left over from `from` to `to` (UTC days):
/// 2024-01-01 -> 2024-04-01 is {3, 0}.
std::pair<int64_t, int64_t> calendar_months_between(EpochSeconds from, EpochSeconds to);

// ---- the report --------------------------------------------------------------------------

/// One number a KPI was computed from, and where it came from.
struct KpiInput {
  std::string name;    ///< "inference cost"
  std::string value;   ///< exact decimal or date text: "5000", "100000", "2025-04-01"
  std::string unit;    ///< "USD", "requests", "tokens", "GPU-hours", "points", "date", "days"
  std::string source;  ///< "ledger", or the business file and line it was read from
};

/// How a KPI's value reads.
enum class KpiKind { kMoney, kPercent, kDays, kPoints };

/// One KPI for one group (a --by value, a project, a training run, a workload or a model).
struct Kpi {
  std::string id;       ///< "cost_per_inference" (docs/kpi-and-maturity.md lists them all)
  std::string name;     ///< "Cost per inference"
  std::string formula;  ///< "inference cost / inference requests"
  std::string unit;     ///< "USD per request"
  KpiKind kind = KpiKind::kMoney;
  /// What this row is about: the --by values first, then its own subject
  /// ({"project", "support-chatbot"}, {"model", "gpt-4o"}). Empty: the whole ledger.
  std::vector<std::pair<std::string, std::string>> group;
  std::optional<__int128> value;  ///< nano-units of `unit`; empty when it cannot be computed
  std::string display;  ///< the value as people read it: "$0.05", "150.0%", "91 days (3 months)"
  std::vector<KpiInput> inputs;
  std::string source;   ///< the records the ledger inputs sum, in words
  std::string command;  ///< an `aifinops report` command that shows those sums
  std::string note;     ///< why there is no value, or what to keep in mind
};

struct KpiReport {
  std::optional<EpochSeconds> from, to;  ///< the period (to exclusive); empty = open
  std::vector<std::string> group_by;     ///< the --by labels
  std::vector<std::string> business_files;
  std::vector<Kpi> kpis;  ///< in the order of the paper, groups by cost
};

/// A --period value: "2025-10" (a month), "2025-Q3", "2025" (a year), "FROM..TO" (dates,
/// TO exclusive) or "all". Errors say what is accepted.
struct Period {
  std::optional<EpochSeconds> from, to;
};
Result<Period> parse_period(std::string_view text);

/// Scores a daily series from `first_index` on; returns its anomalies (only `index`,
/// `actual`, `expected` and `impact` are read). By default detect_anomalies with the
/// defaults of `aifinops anomalies`; tests pass a fake so as not to depend on its tuning.
using AnomalyDetector =
    std::function<std::vector<PointAnomaly>(std::span<const double> values, size_t first_index)>;

struct KpiQuery {
  std::vector<ledger::Dimension> group_by;  ///< --by; empty = the whole ledger
  std::optional<EpochSeconds> from, to;     ///< the period
};

/// What the KPIs read beside the ledger. Pointers may be null.
struct KpiContext {
  const BusinessInputs* business = nullptr;
  /// Resolves the dimension names of business scopes (custom dimensions); null = built-in only.
  const allocate::TagPolicy* tags = nullptr;
  AnomalyDetector detect;  ///< empty: detect_anomalies with its defaults
};

/// Computes every KPI. Reads only (it records nothing in the ledger). A scope in the
/// business inputs that names an unknown dimension is an error naming its file and line.
Result<KpiReport> compute_kpis(ledger::Ledger& ledger, const KpiQuery& query,
                               const KpiContext& context);

/// The KPIs of one month of a trend.
struct KpiTrendMonth {
  EpochSeconds month = 0;  ///< its first second
  KpiReport report;
};

/// Every KPI for each of the `months` calendar months that end with the month before
/// `query.to` (which must be set), exactly as compute_kpis gives them month by month, but
/// with one ledger query grouped by month for each sum the KPIs read over a whole month
/// (the daily series of the anomaly KPIs are read per month, from the day rollup). For the
/// dashboard's KPI trend: one call instead of one per month.
Result<std::vector<KpiTrendMonth>> compute_kpi_trend(ledger::Ledger& ledger, const KpiQuery& query,
                                                     const KpiContext& context, int months);

/// The trend as JSON: [{"month":"2025-10","kpis":[{"id":..,"group":{..},"value":".."|null}]}].
std::string kpi_trend_json(const std::vector<KpiTrendMonth>& trend);

/// The report as JSON (docs/kpi-and-maturity.md shows the shape).
std::string kpi_report_json(const KpiReport& report);

/// Money for people: 2 decimals from $1 up, else the significant digits ("$0.0025").
std::string display_money(__int128 nanos);
/// "150.0%": one decimal.
std::string display_percent(__int128 nano_percent);

}  // namespace aifinops::analyze
