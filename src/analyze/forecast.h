// Forecasts of daily spend and usage: trend (damped where history is short) and weekly
// seasonality with prediction intervals, rolled up to months; and a rolling-origin backtest
// that reports MAPE and interval coverage, so that a forecast comes with its track record.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"
#include "core/time.h"
#include "ledger/ledger.h"

namespace aifinops::analyze {

/// How one daily series was modelled: every input a forecast can be explained by.
/// Values are in the series' display units (dollars, tokens).
struct ForecastModel {
  /// "smoothing": damped-trend exponential smoothing of weekly-adjusted values;
  /// "mean": under 7 days of history; "zero": no non-zero value in the history.
  std::string method = "zero";
  int history_days = 0;       ///< days fitted (leading days without spend are skipped)
  int leading_zero_days = 0;  ///< skipped at the start of the history
  double alpha = 0;           ///< level smoothing (0..1): higher follows recent days faster
  double beta = 0;            ///< trend smoothing, as a share of alpha (when trend_window is 0)
  int trend_window = 0;       ///< > 0: trend = least-squares slope of the last N days
  double phi = 1;             ///< trend damping per day (1 = none)
  double level = 0;           ///< weekly-adjusted daily value at the end of the history
  double trend_per_day = 0;   ///< change of `level` per day at the end of the history
  /// Multiplicative weekly factors (mean 1): day i of the history has factor weekly[i % 7].
  std::array<double, 7> weekly{1, 1, 1, 1, 1, 1, 1};
  /// A charge that recurs on the first day of every month (subscriptions, commitments),
  /// found in at least two month starts and added to every forecast month start; 0 if none.
  double month_start_charge = 0;
  int month_starts_seen = 0;  ///< month starts the charge was measured on
  double noise = 0;           ///< robust relative day-to-day noise (0.05 = 5%)
  int error_samples = 0;      ///< in-sample forecast errors the intervals are read from
};

/// A sum over forecast days [first, last) with its central interval.
struct SumForecast {
  int first = 0, last = 0;
  double mean = 0, lower = 0, upper = 0;
};

struct DailyForecast {
  std::vector<double> mean, lower, upper;  ///< one per day after the history
  std::vector<SumForecast> sums;           ///< one per ForecastOptions::sums range
  ForecastModel model;
};

struct ForecastOptions {
  int horizon = 30;       ///< days to forecast (1..731)
  double interval = 0.8;  ///< central interval (0.8 = 80%), in (0, 1)
  /// The UTC day of history[0]: enables the month-start charge. Without it, months are unknown.
  std::optional<EpochSeconds> history_start;
  /// Ranges of forecast days [first, last) whose sums need their own interval (months,
  /// the rest of a budget period): the sum of daily bounds would overstate the spread.
  std::vector<std::pair<int, int>> sums;
};

/// Forecasts `horizon` days after `history` with a central `interval` (0.8 = 80%).
DailyForecast forecast_daily(std::span<const double> history, int horizon, double interval);
DailyForecast forecast_daily(std::span<const double> history, const ForecastOptions& options);

struct BacktestResult {
  int origins = 0;  ///< forecasts made (fewer than asked when history is short)
  int horizon = 0;
  int spacing_days = 7;  ///< days between consecutive origins
  double monthly_total_mape =
      0;  ///< mean |forecast sum - actual sum| / actual sum over the horizon
  double monthly_total_bias = 0;  ///< mean (forecast sum - actual sum) / actual sum
  double daily_mape = 0;          ///< over days with a non-zero actual
  double coverage = 0;            ///< share of actual days inside the interval
  double interval = 0.8;
};

/// Rolling origins over `history`, one week apart and ending `horizon` days before its end:
/// forecast `horizon` days from each (using only the days before it) and compare with what
/// happened. An origin needs at least 28 days of history before it.
BacktestResult backtest(std::span<const double> history, int horizon, double interval, int origins,
                        std::optional<EpochSeconds> history_start = std::nullopt);

/// The forecaster's accuracy over a family of labelled synthetic series (trend, weekly
/// seasonality, 2-10% noise, occasional spikes; with `level_shifts`, also lasting jumps of
/// 10-30%), measured by backtest(). The same code serves the unit test (small) and
/// bench/forecast_eval (large).
struct EvaluationSpec {
  int series = 200;
  int horizon = 30;
  double interval = 0.8;
  int origins = 4;  ///< per series
  bool level_shifts = false;
  uint64_t seed = 1;
};

struct EvaluationResult {
  int series = 0, forecasts = 0;
  double monthly_total_mape = 0;  ///< mean over all forecasts
  double monthly_total_p90 = 0;   ///< 90th percentile of the absolute percentage errors
  double daily_mape = 0;
  double coverage = 0;        ///< over all forecast days
  double total_coverage = 0;  ///< share of horizon totals inside their sum interval
};

EvaluationResult evaluate_forecaster(const EvaluationSpec& spec);

/// A forecast over the ledger, one per group.
struct ForecastQuery {
  std::vector<ledger::Dimension> group_by;
  std::vector<ledger::Filter> filters;
  ledger::Metric metric = ledger::Metric::kEffectiveCost;
  int horizon_days = 30;
  /// > 0: the horizon is this many calendar months from the first forecast day (3 from
  /// 2025-11-15 runs to 2026-02-14) and horizon_days is ignored.
  int horizon_months = 0;
  double interval = 0.8;
  /// History ends here (exclusive; floored to a UTC day). Default: after the last day with
  /// data, but never later than `today`.
  std::optional<EpochSeconds> as_of;
  /// The current, incomplete UTC day: never part of a default history.
  std::optional<EpochSeconds> today;
  int history_days = 120;    ///< at most this many days before as_of are read
  int backtest_origins = 0;  ///< > 0: also backtest every group (same horizon and interval)
  int max_groups = 0;        ///< > 0: model only the groups with the largest history totals
};

/// One calendar month touched by the forecast: the days already in the history plus the
/// forecast days, so that the current month's projection includes its spend so far.
struct MonthForecast {
  EpochSeconds month = 0;  ///< first day of the month
  double actual = 0;       ///< history days of this month
  int actual_days = 0;
  double forecast = 0, lower = 0, upper = 0;  ///< forecast days only
  int forecast_days = 0;
  bool complete = false;  ///< the forecast reaches the month's last day
};

struct GroupForecast {
  std::vector<std::string> keys;
  EpochSeconds first_day = 0;  ///< the first forecast day
  DailyForecast daily;
  std::vector<MonthForecast> months;
  double history_total = 0;  ///< sum of the history read
  double last_28_days = 0;   ///< sum of the last 28 history days, for comparison
  std::optional<BacktestResult> backtest;
};

struct ForecastReport {
  EpochSeconds history_start = 0;  ///< first day read
  EpochSeconds history_end = 0;    ///< exclusive: the first forecast day
  int horizon_days = 0;
  std::string source_table;           ///< which ledger table answered
  std::vector<GroupForecast> groups;  ///< by history total, largest first
  int groups_total = 0;               ///< groups with history, including those not modelled
};

Result<ForecastReport> forecast(ledger::Ledger& ledger, const ForecastQuery& query);

/// Month ranges [first, last) of forecast days starting at `first_day` for `horizon` days.
std::vector<std::pair<int, int>> month_ranges(EpochSeconds first_day, int horizon);

}  // namespace aifinops::analyze
