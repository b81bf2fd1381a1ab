// Forecasts of daily spend and usage: trend (damped where history is short) and weekly
// seasonality with prediction intervals, rolled up to months; and a rolling-origin backtest
// that reports MAPE and interval coverage, so that a forecast comes with its track record.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/time.h"
#include "ledger/ledger.h"

namespace aifinops::analyze {

struct DailyForecast {
  std::vector<double> mean, lower, upper;  ///< one per day after the history
};

/// Forecasts `horizon` days after `history` with a central `interval` (0.8 = 80%).
DailyForecast forecast_daily(std::span<const double> history, int horizon, double interval);

struct BacktestResult {
  int origins = 0;
  double monthly_total_mape = 0;  ///< mean |forecast sum - actual sum| / actual sum over the horizon
  double daily_mape = 0;
  double coverage = 0;            ///< share of actual days inside the interval
};

/// Rolling origins over `history`: forecast `horizon` days from each and compare.
BacktestResult backtest(std::span<const double> history, int horizon, double interval, int origins);

struct ForecastQuery {
  std::vector<ledger::Dimension> group_by;
  std::vector<ledger::Filter> filters;
  ledger::Metric metric = ledger::Metric::kEffectiveCost;
  int horizon_days = 30;
  double interval = 0.8;
  std::optional<EpochSeconds> as_of;  ///< history ends here (exclusive); default: after the last data
};

struct GroupForecast {
  std::vector<std::string> keys;
  EpochSeconds first_day = 0;  ///< the first forecast day
  DailyForecast daily;
};

Result<std::vector<GroupForecast>> forecast(ledger::Ledger& ledger, const ForecastQuery& query);

}  // namespace aifinops::analyze
