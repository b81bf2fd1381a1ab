// Labelled synthetic daily series for evaluating the anomaly detector and the forecaster:
// a level with trend, weekly seasonality, multiplicative noise, optional level shifts, and
// injected spikes of known size, so that precision, recall, MAPE and interval coverage can
// be measured against a truth. Deterministic for a seed.
#pragma once

#include <cstdint>
#include <vector>

namespace aifinops::analyze {

struct SyntheticSpec {
  int days = 180;
  double level = 100.0;             ///< starting daily value
  double trend_per_day = 0.002;     ///< relative growth per day (0.002 = +0.2%/day)
  double weekly_amplitude = 0.25;   ///< weekday/weekend swing, relative to the level
  double noise = 0.05;              ///< standard deviation of the multiplicative noise
  double level_shift_probability = 0.0;  ///< per day: the level jumps by +-10..30% and stays
  double spike_probability = 0.0;   ///< per day (after the first 28 days)
  double min_spike = 0.3, max_spike = 1.5;  ///< spike size, relative to the clean value
};

struct LabelledSeries {
  std::vector<double> values;    ///< what a detector sees
  std::vector<double> clean;     ///< level * trend * season (no noise, no spikes)
  std::vector<double> spike;     ///< injected spike size relative to clean (0 = none)
  std::vector<double> shift;     ///< level shift starting that day, relative (-0.2 = 20% down)
};

/// One series; `seed` picks the noise, shifts and spikes (and a random weekly shape).
LabelledSeries generate_series(const SyntheticSpec& spec, uint64_t seed);

}  // namespace aifinops::analyze
