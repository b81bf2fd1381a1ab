// Forecast accuracy on labelled synthetic series (analyze::evaluate_forecaster): the
// monthly-total MAPE and the coverage of the prediction interval over rolling origins, for
// the evaluation family (the acceptance targets) and a harder one with lasting level
// shifts, with the time it took. docs/forecast-and-budgets.md has the figures.
//
//   forecast_eval [--series N] [--origins N] [--horizon DAYS] [--interval PERCENT] [--seed N]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "analyze/forecast.h"

int main(int argc, char** argv) {
  aifinops::analyze::EvaluationSpec spec;
  spec.series = 1000;
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (!std::strcmp(argv[i], "--series") && has_value)
      spec.series = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--origins") && has_value)
      spec.origins = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--horizon") && has_value)
      spec.horizon = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--interval") && has_value)
      spec.interval = std::atof(argv[++i]) / 100;
    else if (!std::strcmp(argv[i], "--seed") && has_value)
      spec.seed = std::strtoull(argv[++i], nullptr, 10);
    else {
      std::fprintf(stderr,
                   "usage: forecast_eval [--series N] [--origins N] [--horizon DAYS] "
                   "[--interval PERCENT] [--seed N]\n");
      return 2;
    }
  }
  if (spec.series < 1 || spec.origins < 1 || spec.horizon < 1 || spec.interval <= 0 ||
      spec.interval >= 1) {
    std::fprintf(stderr,
                 "forecast_eval: series, origins and horizon must be positive, interval 1..99\n");
    return 2;
  }
  std::printf(
      "forecast_eval: %d series per family, %d origins a week apart, %d-day horizon, "
      "%.0f%% interval, seed %llu\n\n",
      spec.series, spec.origins, spec.horizon, spec.interval * 100, (unsigned long long)spec.seed);
  std::printf("%-13s %9s %10s %9s %10s %9s %14s %9s %8s %15s  %s\n", "family", "forecasts",
              "total MAPE", "total p90", "daily MAPE", "coverage", "total coverage", "wall ms",
              "CPU ms", "CPU ms/forecast", "targets");
  bool met = true;
  for (bool shifts : {false, true}) {
    spec.level_shifts = shifts;
    const auto wall_start = std::chrono::steady_clock::now();
    const std::clock_t cpu_start = std::clock();
    const auto r = aifinops::analyze::evaluate_forecaster(spec);
    const double cpu_ms = 1000.0 * (double)(std::clock() - cpu_start) / CLOCKS_PER_SEC;
    const double wall_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - wall_start)
            .count();
    // The targets hold for the evaluation family: MAPE <= 5%, coverage of an 80% interval 75-85%.
    const double low = spec.interval - 0.05, high = spec.interval + 0.05;
    const bool ok = r.monthly_total_mape <= 0.05 && r.coverage >= low && r.coverage <= high;
    if (!shifts) met = ok;
    std::printf("%-13s %9d %9.2f%% %8.2f%% %9.2f%% %8.1f%% %13.1f%% %9.0f %8.0f %15.3f  %s\n",
                shifts ? "level shifts" : "evaluation", r.forecasts, 100 * r.monthly_total_mape,
                100 * r.monthly_total_p90, 100 * r.daily_mape, 100 * r.coverage,
                100 * r.total_coverage, wall_ms, cpu_ms, cpu_ms / r.forecasts,
                shifts ? "(none: reported only)"
                : ok   ? "met"
                       : "NOT MET");
  }
  return met ? 0 : 1;
}
