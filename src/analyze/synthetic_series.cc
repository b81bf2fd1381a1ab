#include "analyze/synthetic_series.h"

#include <cmath>
#include <random>

namespace aifinops::analyze {

LabelledSeries generate_series(const SyntheticSpec& spec, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::normal_distribution<double> gauss(0.0, 1.0);
  // A weekly shape: working days high, weekend low, with some per-series variation.
  double season[7];
  for (int d = 0; d < 7; ++d) {
    bool weekend = d >= 5;
    season[d] = 1.0 + spec.weekly_amplitude * (weekend ? -1.0 : 0.4) * (0.7 + 0.6 * unit(rng));
  }
  const int phase = (int)(unit(rng) * 7);
  LabelledSeries out;
  out.values.resize(spec.days);
  out.clean.resize(spec.days);
  out.spike.assign(spec.days, 0.0);
  out.shift.assign(spec.days, 0.0);
  double level = spec.level;
  for (int t = 0; t < spec.days; ++t) {
    if (spec.level_shift_probability > 0 && t > 0 && unit(rng) < spec.level_shift_probability) {
      double size = 0.1 + 0.2 * unit(rng);
      const double factor = unit(rng) < 0.5 ? 1.0 - size : 1.0 + size;
      level *= factor;
      out.shift[t] = factor - 1.0;
    }
    const double clean = level * std::pow(1.0 + spec.trend_per_day, t) * season[(t + phase) % 7];
    double value = clean * std::max(0.05, 1.0 + spec.noise * gauss(rng));
    if (t >= 28 && spec.spike_probability > 0 && unit(rng) < spec.spike_probability) {
      const double size = spec.min_spike + (spec.max_spike - spec.min_spike) * unit(rng);
      out.spike[t] = size;
      value += clean * size;
    }
    out.clean[t] = clean;
    out.values[t] = value;
  }
  return out;
}

}  // namespace aifinops::analyze
