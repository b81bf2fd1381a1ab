#include "analyze/forecast.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
#include <numeric>
#include <random>

#include "analyze/series.h"
#include "analyze/synthetic_series.h"

namespace aifinops::analyze {
namespace {

constexpr int64_t kDay = 86400;
/// Weekly factors below this are days without spend (weekends of office-hours workloads):
/// they carry no information about the level.
constexpr double kMinFactor = 0.05;
/// Day errors beyond this many noise widths are clipped before they move the level, so
/// that one spike does not lift every forecast day after it.
constexpr double kClip = 3.0;
/// The weekly factors and noise are read from at most this many recent days.
constexpr int kSeasonWindow = 84;
/// Quantiles need at least this many in-sample errors; fewer fall back to the noise model.
constexpr int kMinErrorSamples = 30;
constexpr int kMinSumSamples = 20;
constexpr int kPoolSize = 150;
/// Widening of the in-sample error quantiles: 1 + this * 56 / history days.
constexpr double kOptimismCorrection = 0.2;
/// ... and of the in-sample errors of sums (months, budget periods): a further + this.
constexpr double kSumCorrection = 0.2;

double median_of(std::vector<double> v) {
  if (v.empty()) return 0;
  size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + (ptrdiff_t)mid, v.end());
  double m = v[mid];
  if (v.size() % 2 == 0) m = (m + *std::max_element(v.begin(), v.begin() + (ptrdiff_t)mid)) / 2;
  return m;
}

/// The p-quantile (0..1) of v with linear interpolation; reorders v.
double quantile_of(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  double pos = p * (double)(v.size() - 1);
  size_t i = (size_t)pos;
  std::nth_element(v.begin(), v.begin() + (ptrdiff_t)i, v.end());
  double a = v[i];
  if (i + 1 >= v.size()) return a;
  double b = *std::min_element(v.begin() + (ptrdiff_t)i + 1, v.end());
  return a + (pos - (double)i) * (b - a);
}

/// Inverse of the standard normal CDF (Acklam's rational approximation, |error| < 1.2e-9).
double normal_quantile(double p) {
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,  -2.759285104469687e+02,
                             1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01, -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  p = std::clamp(p, 1e-12, 1 - 1e-12);
  if (p < 0.02425) {
    double q = std::sqrt(-2 * std::log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
           ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - 0.02425) return -normal_quantile(1 - p);
  double q = p - 0.5, r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
         (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

bool is_month_start(EpochSeconds history_start, int index) {
  EpochSeconds t = history_start + (EpochSeconds)index * kDay;
  return floor_month(t) == t;
}

/// The series as the smoother sees it, indexed like the caller's history.
struct Prepared {
  int n = 0;              ///< history length
  int offset = 0;         ///< first day with spend
  std::vector<double> y;  ///< history, negatives as 0, month-start charges taken out
  std::array<double, 7> season{1, 1, 1, 1, 1, 1, 1};
  double noise = 0.05;
  double scale = 1;  ///< typical weekly-adjusted value, a floor for relative errors
  double charge = 0;
  int charges_seen = 0;
  std::optional<EpochSeconds> history_start;
  int fit_days() const { return n - offset; }
};

/// Weekly factors as medians of each day's ratio to its centred 7-day mean over the
/// recent window; the median keeps spikes and month-start charges out.
void fit_season(Prepared& p) {
  const int s0 = std::max(p.offset, p.n - kSeasonWindow);
  p.season.fill(1.0);
  std::vector<double> deviations;
  if (p.n - s0 < 14) {
    // Too short for a weekly shape: noise from the spread around the median.
    std::vector<double> values(p.y.begin() + s0, p.y.end());
    double m = median_of(values);
    if (m > 0)
      for (double v : values) deviations.push_back(std::abs(v / m - 1));
    p.noise = std::clamp(1.4826 * median_of(deviations), 0.01, 2.0);
    return;
  }
  std::array<std::vector<double>, 7> ratios;
  std::vector<double> centred(p.n, 0.0);
  double window = 0;
  for (int t = s0; t < s0 + 7; ++t) window += p.y[t];
  for (int t = s0 + 3; t + 3 < p.n; ++t) {
    centred[t] = window / 7;
    if (t + 4 < p.n) window += p.y[t + 4] - p.y[t - 3];
    if (centred[t] > 0) ratios[t % 7].push_back(p.y[t] / centred[t]);
  }
  std::array<double, 7> raw{};
  double mean = 0;
  for (int d = 0; d < 7; ++d) {
    raw[d] = ratios[d].empty() ? 1.0 : median_of(ratios[d]);
    // Few weeks: pull towards flat, since one week's accident is not a pattern.
    const double k = (double)ratios[d].size();
    if (k < 4) raw[d] = 1.0 + (raw[d] - 1.0) * k / (k + 1.0);
    mean += raw[d] / 7;
  }
  if (mean <= 0) return;
  for (int d = 0; d < 7; ++d) p.season[d] = raw[d] / mean;
  for (int t = s0 + 3; t + 3 < p.n; ++t) {
    const double expected = centred[t] * p.season[t % 7];
    if (expected > 0) deviations.push_back(std::abs(p.y[t] / expected - 1));
  }
  p.noise = std::clamp(1.4826 * median_of(deviations), 0.01, 2.0);
}

/// A charge on the first of every month: each month start (with a week of history before
/// it) is compared with the weekly-adjusted median of the week before. Recurring when
/// every one of at least two is clearly above it.
void fit_month_start_charge(Prepared& p) {
  if (!p.history_start) return;
  std::vector<std::pair<int, double>> excess;
  for (int i = p.offset + 7; i < p.n; ++i) {
    if (!is_month_start(*p.history_start, i)) continue;
    std::vector<double> week;
    for (int j = i - 7; j < i; ++j)
      if (p.season[j % 7] >= kMinFactor) week.push_back(p.y[j] / p.season[j % 7]);
    const double baseline = median_of(week) * p.season[i % 7];
    excess.push_back({i, p.y[i] - baseline});
    if (p.y[i] - baseline <= 3 * p.noise * baseline + 1e-12) return;  // not every month
  }
  if (excess.size() < 2) return;
  std::vector<double> recent;
  for (size_t k = excess.size() >= 3 ? excess.size() - 3 : 0; k < excess.size(); ++k)
    recent.push_back(excess[k].second);
  p.charge = median_of(recent);
  p.charges_seen = (int)excess.size();
  for (const auto& [i, e] : excess) p.y[i] -= e;
  // Month starts in the first week have no week before them to measure against.
  for (int i = p.offset; i < std::min(p.n, p.offset + 7); ++i)
    if (is_month_start(*p.history_start, i)) p.y[i] = std::max(0.0, p.y[i] - p.charge);
}

Prepared prepare(std::span<const double> history, std::optional<EpochSeconds> history_start) {
  Prepared p;
  p.n = (int)history.size();
  p.y.resize(p.n);
  for (int t = 0; t < p.n; ++t)
    p.y[t] = std::isfinite(history[t]) ? std::max(0.0, history[t]) : 0.0;
  while (p.offset < p.n && p.y[p.offset] == 0) p.offset++;
  p.history_start = history_start;
  if (p.fit_days() < 7) return p;
  fit_season(p);
  fit_month_start_charge(p);
  if (p.charge > 0) fit_season(p);  // again, without the charges in the ratios
  double sum = 0;
  int count = 0;
  for (int t = std::max(p.offset, p.n - kSeasonWindow); t < p.n; ++t)
    if (p.season[t % 7] >= kMinFactor) {
      sum += p.y[t] / p.season[t % 7];
      count++;
    }
  p.scale = count > 0 && sum > 0 ? sum / count : 1.0;
  return p;
}

struct Params {
  double alpha = 0.2, beta = 0.1, phi = 0.9;
  /// > 0: the trend is the least-squares slope of the last `window` weekly-adjusted days
  /// (steadier than a smoothed trend when growth is steady); 0: smoothed with beta.
  int window = 0;
};

/// Least-squares slope over a sliding window of (t, value) points.
class SlidingSlope {
 public:
  explicit SlidingSlope(int window) : window_(window) {}
  void add(int t, double v) {
    points_.push_back({t, v});
    include(t, v, 1);
    while (!points_.empty() && points_.front().first <= t - window_) {
      include(points_.front().first, points_.front().second, -1);
      points_.pop_front();
    }
  }
  /// 0 until half the window has points.
  double slope() const {
    if ((int)points_.size() * 2 < window_) return 0;
    const double n = (double)points_.size();
    const double d = n * stt_ - st_ * st_;
    return d > 0 ? (n * stv_ - st_ * sv_) / d : 0;
  }

 private:
  void include(int t, double v, int sign) {
    st_ += sign * (double)t;
    stt_ += sign * (double)t * t;
    sv_ += sign * v;
    stv_ += sign * (double)t * v;
  }
  int window_;
  std::deque<std::pair<int, double>> points_;
  double st_ = 0, stt_ = 0, sv_ = 0, stv_ = 0;
};

/// Damped-trend exponential smoothing (error-correction form) of the weekly-adjusted
/// values; calls visit(t, level, trend) with the state after day t.
template <typename Visit>
void smooth(const Prepared& p, const Params& q, Visit&& visit) {
  double level = 0;
  int count = 0;
  for (int t = p.offset; t < std::min(p.n, p.offset + 7); ++t)
    if (p.season[t % 7] >= kMinFactor) {
      level += p.y[t] / p.season[t % 7];
      count++;
    }
  level = count > 0 ? level / count : 0;
  double trend = 0;
  const double floor = 0.1 * p.scale;
  SlidingSlope slope(std::max(1, q.window));
  for (int t = p.offset; t < p.n; ++t) {
    const double f = level + q.phi * trend;
    const double s = p.season[t % 7];
    if (s >= kMinFactor) {
      const double limit = kClip * p.noise * std::max(f, floor);
      const double e = std::clamp(p.y[t] / s - f, -limit, limit);
      // Spend does not go below zero, and neither does its level.
      level = std::max(0.0, f + q.alpha * e);
      if (q.window > 0) {
        slope.add(t - p.offset, f + e);
        trend = slope.slope();
      } else {
        trend = q.phi * trend + q.alpha * q.beta * e;
      }
    } else {
      level = std::max(0.0, f);
      trend = q.phi * trend;
    }
    visit(t, level, trend);
  }
}

/// damped[h] = phi + phi^2 + ... + phi^h.
std::vector<double> damped_sums(double phi, int horizon) {
  std::vector<double> out(horizon + 1, 0.0);
  double power = 1;
  for (int h = 1; h <= horizon; ++h) {
    power *= phi;
    out[h] = out[h - 1] + power;
  }
  return out;
}

int warm_up_days(const Prepared& p) { return std::min(14, p.fit_days() / 3); }

/// Damping by history length: a trend seen over a few weeks is a weak promise.
double damping_for(int days) {
  if (days < 28) return 0.85;
  if (days < 56) return 0.92;
  if (days < 112) return 0.97;
  return 0.99;
}

/// Picks alpha and beta by the in-sample accuracy of the sums the forecast is used for
/// (the next week and the next four weeks) from every origin after the warm-up.
Params select_params(const Prepared& p, int horizon) {
  Params best;
  best.phi = damping_for(p.fit_days());
  const int warm = warm_up_days(p);
  const int long_h = std::min({horizon, 28, (p.fit_days() - warm) / 2});
  if (p.fit_days() < 28 || long_h < 7) return best;
  const int short_h = 7;
  std::vector<double> prefix(p.n + 1, 0.0);
  for (int t = 0; t < p.n; ++t) prefix[t + 1] = prefix[t] + p.y[t];
  double best_score = INFINITY;
  for (double alpha : {0.03, 0.06, 0.1, 0.15, 0.25, 0.4, 0.6}) {
    for (int variant = 0; variant < 8; ++variant) {
      static constexpr double kBetas[] = {0.0, 0.02, 0.05, 0.1, 0.2};
      static constexpr int kWindows[] = {28, 56, 84};
      Params q{alpha, variant < 5 ? kBetas[variant] : 0.0, best.phi,
               variant < 5 ? 0 : kWindows[variant - 5]};
      if (q.window > p.fit_days()) continue;
      const std::vector<double> damped = damped_sums(q.phi, long_h);
      // Sums of seasonal factors (and damped trend weights) over the next h days, by origin
      // weekday.
      std::array<double, 7> a_long{}, b_long{}, a_short{}, b_short{};
      for (int r = 0; r < 7; ++r)
        for (int h = 1; h <= long_h; ++h) {
          const double s = p.season[(r + h) % 7];
          a_long[r] += s;
          b_long[r] += damped[h] * s;
          if (h <= short_h) {
            a_short[r] += s;
            b_short[r] += damped[h] * s;
          }
        }
      double error_long = 0, error_short = 0;
      int count_long = 0, count_short = 0;
      smooth(p, q, [&](int t, double level, double trend) {
        if (t < p.offset + warm) return;
        const int r = t % 7;
        if (t + long_h < p.n) {
          const double actual = prefix[t + long_h + 1] - prefix[t + 1];
          if (actual > 0) {
            error_long += std::abs(level * a_long[r] + trend * b_long[r] - actual) / actual;
            count_long++;
          }
        }
        if (t + short_h < p.n) {
          const double actual = prefix[t + short_h + 1] - prefix[t + 1];
          if (actual > 0) {
            error_short += std::abs(level * a_short[r] + trend * b_short[r] - actual) / actual;
            count_short++;
          }
        }
      });
      if (count_long == 0 || count_short == 0) continue;
      const double score = error_long / count_long + error_short / count_short;
      if (score < best_score) {
        best_score = score;
        best = q;
      }
    }
  }
  return best;
}

/// Under a week of history: flat at the mean, with a wide interval.
DailyForecast forecast_from_mean(const Prepared& p, const ForecastOptions& o) {
  DailyForecast out;
  out.model.method = "mean";
  out.model.history_days = p.fit_days();
  out.model.leading_zero_days = p.offset;
  double mean = 0;
  for (int t = p.offset; t < p.n; ++t) mean += p.y[t] / p.fit_days();
  double spread = 0.5;
  if (p.fit_days() >= 3 && mean > 0) {
    double sq = 0;
    for (int t = p.offset; t < p.n; ++t) sq += (p.y[t] / mean - 1) * (p.y[t] / mean - 1);
    spread = std::max(0.1, std::sqrt(sq / (p.fit_days() - 1)));
  }
  const double z = normal_quantile(0.5 + o.interval / 2);
  const double half = 1.5 * z * spread * std::sqrt(1.0 + 1.0 / p.fit_days());
  out.model.level = mean;
  out.model.noise = spread;
  out.mean.assign(o.horizon, mean);
  out.lower.assign(o.horizon, std::max(0.0, mean * (1 - half)));
  out.upper.assign(o.horizon, mean * (1 + half));
  for (auto [first, last] : o.sums) {
    SumForecast s{first, last};
    for (int h = first; h < last; ++h) s.mean += mean;
    // Level error dominates a short history: fully correlated days.
    s.lower = std::max(0.0, s.mean * (1 - half));
    s.upper = s.mean * (1 + half);
    out.sums.push_back(s);
  }
  return out;
}

}  // namespace

DailyForecast forecast_daily(std::span<const double> history, int horizon, double interval) {
  ForecastOptions options;
  options.horizon = horizon;
  options.interval = interval;
  return forecast_daily(history, options);
}

DailyForecast forecast_daily(std::span<const double> history, const ForecastOptions& options) {
  ForecastOptions o = options;
  o.horizon = std::max(0, o.horizon);
  o.interval = std::clamp(o.interval, 0.01, 0.99);
  for (auto& [first, last] : o.sums) {
    first = std::clamp(first, 0, o.horizon);
    last = std::clamp(last, first, o.horizon);
  }
  const Prepared p = prepare(history, o.history_start);
  const int H = o.horizon;
  if (p.fit_days() == 0) {
    DailyForecast out;
    out.model.leading_zero_days = p.n;
    out.mean.assign(H, 0.0);
    out.lower.assign(H, 0.0);
    out.upper.assign(H, 0.0);
    for (auto [first, last] : o.sums) out.sums.push_back({first, last, 0, 0, 0});
    return out;
  }
  if (p.fit_days() < 7) return forecast_from_mean(p, o);

  const Params q = select_params(p, H);
  const std::vector<double> damped = damped_sums(q.phi, std::max(H, 1));
  const int warm = warm_up_days(p);
  auto month_start_at = [&](int index) {
    return p.charge > 0 && p.history_start && is_month_start(*p.history_start, index);
  };

  // In-sample errors of the final model from every origin, relative to the forecast, by
  // horizon; and of the requested sums.
  std::vector<std::vector<double>> errors(H + 1);
  std::vector<std::vector<double>> sum_errors(o.sums.size());
  double level = 0, trend = 0;
  std::vector<double> predicted(H + 1);
  smooth(p, q, [&](int t, double l, double b) {
    level = l;
    trend = b;
    if (t < p.offset + warm) return;
    const int reach = std::min(H, p.n - 1 - t);
    for (int h = 1; h <= reach; ++h) {
      predicted[h] = std::max(0.0, (l + b * damped[h]) * p.season[(t + h) % 7]);
      // Relative to the forecast, but never to less than a tenth of a typical day: after
      // a gap in the data a near-zero forecast would turn any spend into a huge error.
      const double denominator = std::max(predicted[h], 0.1 * p.scale);
      errors[h].push_back((p.y[t + h] - predicted[h]) / denominator);
    }
    for (size_t k = 0; k < o.sums.size(); ++k) {
      auto [first, last] = o.sums[k];
      if (last == first || last > reach) continue;
      double f = 0, a = 0;
      for (int h = first + 1; h <= last; ++h) {
        f += predicted[h];
        a += p.y[t + h];
      }
      sum_errors[k].push_back((a - f) / std::max(f, 0.1 * p.scale * (last - first)));
    }
  });

  DailyForecast out;
  ForecastModel& m = out.model;
  m.method = "smoothing";
  m.history_days = p.fit_days();
  m.leading_zero_days = p.offset;
  m.alpha = q.alpha;
  m.beta = q.beta;
  m.trend_window = q.window;
  m.phi = q.phi;
  m.level = level;
  m.trend_per_day = trend;
  m.weekly = p.season;
  m.month_start_charge = p.charge;
  m.month_starts_seen = p.charges_seen;
  m.noise = p.noise;
  for (const auto& e : errors) m.error_samples += (int)e.size();

  // Quantiles of the relative errors by horizon, pooled over neighbouring horizons; where
  // the history has too few origins, the last well-measured horizon widened by sqrt(h).
  const double tail = (1 - o.interval) / 2;
  const double z = normal_quantile(1 - tail);
  std::vector<double> q_low(H + 1, 0.0), q_high(H + 1, 0.0);
  int measured = 0;
  std::vector<double> pool;
  for (int h = 1; h <= H; ++h) {
    // Neighbours join until the pool is large enough for a stable tail quantile.
    pool.assign(errors[h].begin(), errors[h].end());
    for (int d = 1; d <= 3 && (int)pool.size() < kPoolSize; ++d) {
      if (h - d >= 1) pool.insert(pool.end(), errors[h - d].begin(), errors[h - d].end());
      if (h + d <= H) pool.insert(pool.end(), errors[h + d].begin(), errors[h + d].end());
    }
    if ((int)pool.size() < kMinErrorSamples) break;
    // A model that was biased in-sample still gets an interval around its forecast.
    q_low[h] = std::min(0.0, quantile_of(pool, tail));
    q_high[h] = std::max(0.0, quantile_of(pool, 1 - tail));
    measured = h;
  }
  // In-sample errors flatter a model fitted to the same days, the more so the shorter the
  // history; this correction was calibrated on the evaluation series (docs).
  const double inflate = 1 + kOptimismCorrection * 56.0 / p.fit_days();
  for (int h = 1; h <= measured; ++h) {
    q_low[h] *= inflate;
    q_high[h] *= inflate;
  }
  for (int h = measured + 1; h <= H; ++h) {
    if (measured > 0) {
      const double widen = std::sqrt((double)h / measured);
      q_low[h] = q_low[measured] * widen;
      q_high[h] = q_high[measured] * widen;
    } else {
      const double half = 1.5 * z * p.noise * std::sqrt(1.0 + 0.1 * h);
      q_low[h] = -half;
      q_high[h] = half;
    }
  }

  out.mean.resize(H);
  out.lower.resize(H);
  out.upper.resize(H);
  for (int h = 1; h <= H; ++h) {
    const int index = p.n - 1 + h;
    const double base = std::max(0.0, (level + trend * damped[h]) * p.season[index % 7]);
    const double charge = month_start_at(index) ? p.charge : 0.0;
    out.mean[h - 1] = base + charge;
    out.lower[h - 1] = std::max(0.0, base * (1 + q_low[h])) + charge;
    out.upper[h - 1] = std::max(base * (1 + q_high[h]), base) + charge;
  }
  for (size_t k = 0; k < o.sums.size(); ++k) {
    auto [first, last] = o.sums[k];
    SumForecast s{first, last};
    double charges = 0;
    for (int h = first + 1; h <= last; ++h) {
      s.mean += out.mean[h - 1];
      if (month_start_at(p.n - 1 + h)) charges += p.charge;
    }
    const double base = s.mean - charges;
    if ((int)sum_errors[k].size() >= kMinSumSamples) {
      // Sums from overlapping origins are fewer and correlated: widened a little more.
      const double low =
          std::min(0.0, quantile_of(sum_errors[k], tail)) * (inflate + kSumCorrection);
      const double high =
          std::max(0.0, quantile_of(sum_errors[k], 1 - tail)) * (inflate + kSumCorrection);
      s.lower = std::max(0.0, base * (1 + low)) + charges;
      s.upper = base * (1 + high) + charges;
    } else {
      // Too few origins for this range: day noise adds up independently, the rest of each
      // day's spread (level and trend error) adds up in full.
      double noise_sq = 0, shared_low = 0, shared_high = 0;
      for (int h = first + 1; h <= last; ++h) {
        const double b = out.mean[h - 1] - (month_start_at(p.n - 1 + h) ? p.charge : 0.0);
        const double day_noise = z * p.noise * b;
        noise_sq += day_noise * day_noise;
        const double low = out.mean[h - 1] - out.lower[h - 1],
                     high = out.upper[h - 1] - out.mean[h - 1];
        shared_low += std::sqrt(std::max(0.0, low * low - day_noise * day_noise));
        shared_high += std::sqrt(std::max(0.0, high * high - day_noise * day_noise));
      }
      s.lower = std::max(0.0, s.mean - std::sqrt(noise_sq) - shared_low);
      s.upper = s.mean + std::sqrt(noise_sq) + shared_high;
    }
    out.sums.push_back(s);
  }
  return out;
}

BacktestResult backtest(std::span<const double> history, int horizon, double interval, int origins,
                        std::optional<EpochSeconds> history_start) {
  constexpr int kMinHistory = 28;
  BacktestResult r;
  r.horizon = horizon;
  r.interval = interval;
  const int n = (int)history.size();
  double ape = 0, bias = 0, daily = 0;
  int totals = 0, daily_count = 0, inside = 0, days = 0;
  for (int k = 0; k < origins && horizon > 0; ++k) {
    const int origin = n - horizon - r.spacing_days * k;
    if (origin < kMinHistory) break;
    ForecastOptions o;
    o.horizon = horizon;
    o.interval = interval;
    o.history_start = history_start;
    const DailyForecast f = forecast_daily(history.first((size_t)origin), o);
    double forecast_sum = 0, actual_sum = 0;
    for (int h = 0; h < horizon; ++h) {
      const double a = history[origin + h];
      forecast_sum += f.mean[h];
      actual_sum += a;
      if (a > 0) {
        daily += std::abs(f.mean[h] - a) / a;
        daily_count++;
      }
      inside += a >= f.lower[h] && a <= f.upper[h];
      days++;
    }
    r.origins++;
    if (actual_sum > 0) {
      ape += std::abs(forecast_sum - actual_sum) / actual_sum;
      bias += (forecast_sum - actual_sum) / actual_sum;
      totals++;
    }
  }
  if (totals > 0) {
    r.monthly_total_mape = ape / totals;
    r.monthly_total_bias = bias / totals;
  }
  if (daily_count > 0) r.daily_mape = daily / daily_count;
  if (days > 0) r.coverage = (double)inside / days;
  return r;
}

EvaluationResult evaluate_forecaster(const EvaluationSpec& spec) {
  EvaluationResult out;
  std::mt19937_64 rng(spec.seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<double> errors;
  double daily = 0;
  int inside_days = 0, totals_inside = 0;
  double covered = 0;
  for (int i = 0; i < spec.series; ++i) {
    SyntheticSpec s;
    const int history = 56 + (int)(unit(rng) * 309);  // 8 weeks to a year
    s.days = history + spec.horizon + 7 * (spec.origins - 1);
    s.level = std::exp(std::log(10.0) + unit(rng) * std::log(1000.0));
    s.trend_per_day = -0.002 + 0.006 * unit(rng);
    s.weekly_amplitude = 0.4 * unit(rng);
    s.noise = 0.02 + 0.08 * unit(rng);
    s.spike_probability = 0.01;
    s.level_shift_probability = spec.level_shifts ? 0.01 : 0.0;
    const uint64_t seed = rng();
    const LabelledSeries series = generate_series(s, seed);
    const int n = (int)series.values.size();
    for (int k = 0; k < spec.origins; ++k) {
      const int origin = n - spec.horizon - 7 * k;
      std::span<const double> all(series.values);
      ForecastOptions o;
      o.horizon = spec.horizon;
      o.interval = spec.interval;
      o.sums = {{0, spec.horizon}};
      const DailyForecast f = forecast_daily(all.first((size_t)origin), o);
      double forecast_sum = 0, actual_sum = 0;
      for (int h = 0; h < spec.horizon; ++h) {
        const double a = all[origin + h];
        forecast_sum += f.mean[h];
        actual_sum += a;
        daily += std::abs(f.mean[h] - a) / a;
        covered += a >= f.lower[h] && a <= f.upper[h];
        inside_days++;
      }
      errors.push_back(std::abs(forecast_sum - actual_sum) / actual_sum);
      totals_inside += actual_sum >= f.sums[0].lower && actual_sum <= f.sums[0].upper;
    }
    out.series++;
  }
  out.forecasts = (int)errors.size();
  if (out.forecasts > 0) {
    out.monthly_total_mape = std::accumulate(errors.begin(), errors.end(), 0.0) / out.forecasts;
    out.monthly_total_p90 = quantile_of(errors, 0.9);
    out.daily_mape = daily / inside_days;
    out.coverage = covered / inside_days;
    out.total_coverage = (double)totals_inside / out.forecasts;
  }
  return out;
}

std::vector<std::pair<int, int>> month_ranges(EpochSeconds first_day, int horizon) {
  std::vector<std::pair<int, int>> out;
  int first = 0;
  while (first < horizon) {
    const EpochSeconds day = first_day + (EpochSeconds)first * kDay;
    const int last = std::min(horizon, first + (int)((next_month(day) - day) / kDay));
    out.push_back({first, last});
    first = last;
  }
  return out;
}

namespace {

/// The same day of the month `months` later (clamped to the month's last day).
EpochSeconds add_months(EpochSeconds day, int months) {
  int64_t y = 0;
  unsigned m = 0, d = 0;
  civil_from_days(floor_day(day) / kDay, y, m, d);
  const int64_t index = y * 12 + (m - 1) + months;
  const int64_t ny = index / 12;
  const unsigned nm = (unsigned)(index % 12) + 1;
  const EpochSeconds first = days_from_civil(ny, nm, 1) * kDay;
  const unsigned length = (unsigned)((next_month(first) - first) / kDay);
  return first + (EpochSeconds)(std::min(d, length) - 1) * kDay;
}

struct DenseDays {
  std::string source_table;
  std::vector<std::pair<std::vector<std::string>, std::vector<double>>> groups;
};

/// One grouped query by day over [from, to), laid out densely (missing days are 0).
Result<DenseDays> load_days(ledger::Ledger& ledger, const ForecastQuery& query, EpochSeconds from,
                            EpochSeconds to) {
  ledger::QuerySpec spec;
  spec.from = from;
  spec.to = to;
  spec.filters = query.filters;
  spec.metric = query.metric;
  // Day first: the store reads the day rollup in its own order (measurably faster).
  ledger::Dimension day;
  day.kind = ledger::Dimension::Kind::kTime;
  day.grain = ledger::Grain::kDay;
  day.label = "day";
  spec.group_by.push_back(day);
  spec.group_by.insert(spec.group_by.end(), query.group_by.begin(), query.group_by.end());
  auto result = ledger.query(spec);
  if (!result) return Unexpected{result.error()};
  const size_t days = (size_t)((to - from) / kDay);
  std::map<std::vector<std::string>, std::vector<double>> groups;
  for (const ledger::QueryRow& row : result->rows) {
    auto t = parse_timestamp(row.keys[0]);
    if (!t) return make_error(ErrorCode::kInternal, "forecast: unexpected day key " + row.keys[0]);
    std::vector<std::string> keys(row.keys.begin() + 1, row.keys.end());
    std::vector<double>& values = groups[std::move(keys)];
    if (values.empty()) values.assign(days, 0.0);
    if (*t >= from && *t < to)
      values[(size_t)((*t - from) / kDay)] += metric_value_to_double(query.metric, row.value);
  }
  DenseDays out;
  out.source_table = result->source_table;
  for (auto& [keys, values] : groups) out.groups.push_back({keys, std::move(values)});
  return out;
}

}  // namespace

namespace {

/// The index of the last day with data in any group, or -1.
int last_day_with_data(const DenseDays& days) {
  int last = -1;
  for (const auto& [keys, values] : days.groups)
    for (int i = (int)values.size() - 1; i > last; --i)
      if (values[i] != 0) {
        last = i;
        break;
      }
  return last;
}

/// The first day of the last month with data, from the month rollup (a few rows).
Result<std::optional<EpochSeconds>> last_month_with_data(ledger::Ledger& ledger,
                                                         const ForecastQuery& query) {
  ledger::QuerySpec months;
  months.filters = query.filters;
  months.metric = query.metric;
  ledger::Dimension month;
  month.kind = ledger::Dimension::Kind::kTime;
  month.grain = ledger::Grain::kMonth;
  month.label = "month";
  months.group_by.push_back(month);
  if (query.today) months.to = next_month(*query.today);
  auto result = ledger.query(months);
  if (!result) return Unexpected{result.error()};
  std::optional<EpochSeconds> last;
  for (const ledger::QueryRow& row : result->rows) {
    auto t = parse_timestamp(row.keys[0] + "-01");
    if (row.value != 0 && t && (!last || *t > *last)) last = *t;
  }
  return last;
}

}  // namespace

Result<ForecastReport> forecast(ledger::Ledger& ledger, const ForecastQuery& query) {
  if (query.horizon_months > 24 || query.horizon_months < 0)
    return make_error(ErrorCode::kInvalidArgument, "forecast horizon must be 1 to 24 months");
  if (query.horizon_months == 0 && (query.horizon_days < 1 || query.horizon_days > 731))
    return make_error(ErrorCode::kInvalidArgument, "forecast horizon must be 1 to 731 days");
  if (!(query.interval > 0 && query.interval < 1))
    return make_error(ErrorCode::kInvalidArgument,
                      "forecast interval must be between 0 and 1 (0.8 = 80%)");
  if (query.history_days < 1)
    return make_error(ErrorCode::kInvalidArgument, "forecast history must be at least 1 day");
  ForecastReport report;
  const EpochSeconds window = (EpochSeconds)query.history_days * kDay;
  EpochSeconds end = 0;
  if (query.as_of) {
    end = floor_day(*query.as_of);
  } else {
    // The last month with data from the month rollup (a few rows), then its last day from
    // one month of day totals: the history ends there, however long ago that was.
    auto last_month = last_month_with_data(ledger, query);
    if (!last_month) return Unexpected{last_month.error()};
    if (!*last_month) return report;  // nothing to forecast from
    EpochSeconds month_end = next_month(**last_month);
    if (query.today) month_end = std::min(month_end, floor_day(*query.today));
    ForecastQuery totals = query;
    totals.group_by.clear();
    auto month_days = load_days(ledger, totals, **last_month, month_end);
    if (!month_days) return Unexpected{month_days.error()};
    const int last = last_day_with_data(*month_days);
    end = last >= 0 ? **last_month + (EpochSeconds)(last + 1) * kDay : month_end;
  }
  EpochSeconds start = end - window;
  auto days = load_days(ledger, query, start, end);
  if (!days) return Unexpected{days.error()};
  if (!query.as_of) {
    const int last = last_day_with_data(*days);
    if (last < 0) return report;
    end = start + (EpochSeconds)(last + 1) * kDay;
    for (auto& [keys, values] : days->groups) values.resize((size_t)(last + 1));
  }
  // History starts on the first day with data in any group.
  size_t first = SIZE_MAX;
  for (const auto& [keys, values] : days->groups)
    for (size_t i = 0; i < values.size() && i < first; ++i)
      if (values[i] != 0) {
        first = i;
        break;
      }
  if (first != SIZE_MAX && first > 0) {
    start += (EpochSeconds)first * kDay;
    for (auto& [keys, values] : days->groups)
      values.erase(values.begin(), values.begin() + (ptrdiff_t)first);
  }
  report.history_start = start;
  report.history_end = end;
  report.source_table = days->source_table;
  report.horizon_days = query.horizon_months > 0
                            ? (int)((add_months(end, query.horizon_months) - end) / kDay)
                            : query.horizon_days;

  // Largest history first; only the groups that will be shown are modelled.
  std::vector<std::pair<double, size_t>> order;
  for (size_t i = 0; i < days->groups.size(); ++i) {
    const std::vector<double>& values = days->groups[i].second;
    order.push_back({std::accumulate(values.begin(), values.end(), 0.0), i});
  }
  std::stable_sort(order.begin(), order.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  report.groups_total = (int)order.size();
  if (query.max_groups > 0 && order.size() > (size_t)query.max_groups)
    order.resize((size_t)query.max_groups);

  ForecastOptions options;
  options.horizon = report.horizon_days;
  options.interval = query.interval;
  options.history_start = start;
  options.sums = month_ranges(end, report.horizon_days);
  for (const auto& [total, index] : order) {
    const auto& [keys, values] = days->groups[index];
    GroupForecast g;
    g.keys = keys;
    g.first_day = end;
    g.history_total = total;
    g.daily = forecast_daily(values, options);
    for (size_t i = values.size() >= 28 ? values.size() - 28 : 0; i < values.size(); ++i)
      g.last_28_days += values[i];
    for (const SumForecast& s : g.daily.sums) {
      MonthForecast m;
      m.month = floor_month(end + (EpochSeconds)s.first * kDay);
      m.forecast = s.mean;
      m.lower = s.lower;
      m.upper = s.upper;
      m.forecast_days = s.last - s.first;
      m.complete = end + (EpochSeconds)s.last * kDay == next_month(m.month);
      for (EpochSeconds t = std::max(m.month, start); t < end; t += kDay) {
        m.actual += values[(size_t)((t - start) / kDay)];
        m.actual_days++;
      }
      g.months.push_back(m);
    }
    if (query.backtest_origins > 0)
      g.backtest =
          backtest(values, report.horizon_days, query.interval, query.backtest_origins, start);
    report.groups.push_back(std::move(g));
  }
  return report;
}

}  // namespace aifinops::analyze
