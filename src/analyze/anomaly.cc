#include "analyze/anomaly.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <random>

#include "analyze/series.h"
#include "core/json_text.h"

namespace aifinops::analyze {
namespace {

/// Longest season the detector keeps on the stack (a week of hours).
constexpr size_t kMaxSeason = 168;
/// Seasons of history that seed the baseline.
constexpr size_t kWarmupSeasons = 3;
/// Median absolute deviation -> standard deviation, for normal errors.
constexpr double kMedianAbsToSd = 1.482602218505602;
/// A second, running 90th percentile of |error| keeps the scale from collapsing when most
/// errors are zero: an occasional workload (idle most days, busy on some) has a median
/// error near zero, and without it every busy day would be an anomaly. For normal errors
/// both estimate the same deviation; the percentile's estimate counts at 80%, so that it
/// only takes over when the median has collapsed.
constexpr double kHighQuantile = 0.9;
constexpr double kHighAbsToSd = 1.6448536269514722;  // 90th percentile of |N(0,1)|
constexpr double kHighFloor = 0.8;
/// Median and 90th percentile of |X - Y| for X, Y independent normal with sd 1.
constexpr double kMedianPairDiffToSd = 0.9538725524;  // 0.6745 * sqrt 2
constexpr double kHighPairDiffToSd = 2.3261944;       // 1.6449 * sqrt 2
/// The seed's scale comes from three weeks only, and the seasonal pattern it forecasts
/// with is as young: widen it until the running estimate has seen enough errors.
constexpr double kSeedScaleInflation = 1.7;
/// Weight of the seed scale, in errors, in the running median (whose step then decays to
/// scale_weight): the first weeks learn the scale quickly without trusting three errors.
constexpr double kSeedScaleWeight = 14.0;
/// The error scale (log units) never drops below 1%: a flat series (a fixed fee spread
/// daily) would otherwise call a 0.1% change a 50-sigma event.
constexpr double kMinScale = 0.01;
/// The trend never passes 7% a season (week) either way, about a doubling per quarter:
/// faster growth is a level shift, and the baseline follows those by moving its level.
constexpr double kMaxTrendPerSeason = 0.07;
/// The point that completes a level shift is still reported when its error is this many
/// times the first one's (log scale): the new level is then itself out of line.
constexpr double kEscalation = 1.5;
/// Inside the interval, an error moves the baseline by at most this many standard
/// deviations (a Huber-type bound: one noisy day cannot drag the level).
constexpr double kUpdateClip = 2.0;
/// The series is modelled as log(value + offset): seasonality, trend and noise of spend are
/// multiplicative (twice the traffic, twice the swing), and a level shift then leaves the
/// weekly pattern as it was. The offset, this share of the warm-up's mean non-zero value,
/// keeps days near zero (weekends of a weekday workload, idle days of an occasional one)
/// from becoming huge log swings: small values behave additively, large ones
/// multiplicatively.
constexpr double kOffsetShareOfMean = 0.5;

/// The index of the first value that counts: finite and above zero (the baseline starts
/// there; leading zeros are days before the spend existed).
size_t first_positive(std::span<const double> values) {
  size_t i = 0;
  while (i < values.size() && !(std::isfinite(values[i]) && values[i] > 0.0)) ++i;
  return i;
}

double median_in_place(double* first, size_t n) {
  double* mid = first + n / 2;
  std::nth_element(first, mid, first + n);
  if (n % 2 == 1) return *mid;
  const double upper = *mid;
  const double lower = *std::max_element(first, mid);
  return 0.5 * (lower + upper);
}

}  // namespace

std::vector<PointAnomaly> detect_anomalies(std::span<const double> values,
                                           const DetectorOptions& options, size_t first_index) {
  std::vector<PointAnomaly> out;
  const size_t n = values.size();
  const size_t season = std::clamp<size_t>(options.season_length, 1, kMaxSeason);
  const size_t warmup = kWarmupSeasons * season;
  const size_t begin = first_positive(values);
  if (begin + warmup >= n || first_index >= n) return out;

  // --- seed the baseline from the warm-up seasons with medians, so that a spike in the
  // first weeks does not become part of the expected pattern.
  std::array<double, kMaxSeason * kWarmupSeasons> buffer;
  double warmup_sum = 0;
  size_t positive = 0;
  for (size_t i = 0; i < warmup; ++i) {
    if (std::isfinite(values[begin + i]) && values[begin + i] > 0) {
      warmup_sum += values[begin + i];
      ++positive;
    }
  }
  const double offset = std::max(kOffsetShareOfMean * warmup_sum / (double)positive, 1e-9);
  // Net credits (negative) and anything not a number count as zero.
  auto log_value = [offset](double v) {
    return std::log((std::isfinite(v) && v > 0 ? v : 0.0) + offset);
  };
  std::array<double, kMaxSeason * kWarmupSeasons> logs;
  for (size_t i = 0; i < warmup; ++i) logs[i] = log_value(values[begin + i]);
  std::array<double, kWarmupSeasons> season_median;
  for (size_t w = 0; w < kWarmupSeasons; ++w) {
    std::copy_n(logs.begin() + (ptrdiff_t)(w * season), season, buffer.begin());
    season_median[w] = median_in_place(buffer.data(), season);
  }
  // The trend: the smaller of the two season-to-season slopes, or none when they disagree
  // in sign. A step inside the warm-up (a training run that starts) is not a trend, and a
  // wrong trend would bend every forecast after it.
  static_assert(kWarmupSeasons == 3);
  const double slope1 = (season_median[1] - season_median[0]) / (double)season;
  const double slope2 = (season_median[2] - season_median[1]) / (double)season;
  double trend = slope1 * slope2 <= 0 ? 0.0 : std::abs(slope1) < std::abs(slope2) ? slope1 : slope2;
  trend =
      std::clamp(trend, -kMaxTrendPerSeason / (double)season, kMaxTrendPerSeason / (double)season);
  const double center = 0.5 * (double)(season - 1);
  std::array<double, kMaxSeason> seasonal{};
  double seasonal_mean = 0;
  size_t pairs = 0;
  for (size_t d = 0; d < season; ++d) {
    std::array<double, kWarmupSeasons> deviation;
    for (size_t w = 0; w < kWarmupSeasons; ++w)
      deviation[w] = logs[w * season + d] - season_median[w] - trend * ((double)d - center);
    // The scale from differences between the same position in different seasons: free
    // of the seasonal pattern, and a single spike spoils only a few of them.
    for (size_t i = 0; i < kWarmupSeasons; ++i)
      for (size_t j = i + 1; j < kWarmupSeasons; ++j)
        buffer[pairs++] = std::abs(deviation[i] - deviation[j]);
    seasonal[d] = median_in_place(deviation.data(), kWarmupSeasons);
    seasonal_mean += seasonal[d];
  }
  seasonal_mean /= (double)season;
  for (size_t d = 0; d < season; ++d) seasonal[d] -= seasonal_mean;
  // The level at the last warm-up point; the seasonal terms were centred on the season's
  // median, and now on their mean, so the level takes the difference.
  double level = season_median[kWarmupSeasons - 1] + trend * center + seasonal_mean;
  // The seed scale: the median and the 90th percentile of those differences, each as a
  // standard deviation, and the larger (with the percentile at kHighFloor) as below.
  const double median_pair = median_in_place(buffer.data(), pairs);
  std::nth_element(buffer.begin(), buffer.begin() + (ptrdiff_t)(pairs * 9 / 10),
                   buffer.begin() + (ptrdiff_t)pairs);
  const double high_pair = buffer[pairs * 9 / 10];
  // The scale is a running median of |error| (each error moves it up or down by the same
  // factor): a spike or a level shift counts as one error above the median, however large,
  // so a series that jumps now and then does not widen its own interval.
  double median_abs = kSeedScaleInflation * median_pair / kMedianPairDiffToSd / kMedianAbsToSd;
  double high_abs = kSeedScaleInflation * high_pair / kHighPairDiffToSd * kHighAbsToSd;
  double sd =
      std::max({kMedianAbsToSd * median_abs, kHighFloor * high_abs / kHighAbsToSd, kMinScale});
  double errors_seen = kSeedScaleWeight;

  const double k = options.threshold;
  const double alpha = options.level_weight, beta = options.trend_weight;
  const double gamma = options.season_weight, phi = options.scale_weight;
  const double steady_up = std::exp(phi), steady_down = std::exp(-phi);
  const double steady_high_up = std::exp(2 * kHighQuantile * phi);
  const double steady_high_down = std::exp(-2 * (1 - kHighQuantile) * phi);
  const double max_trend = kMaxTrendPerSeason / (double)season;
  const bool report_up = options.direction != AnomalyDirection::kDown;
  const bool report_down = options.direction != AnomalyDirection::kUp;
  const int shift_after = options.level_shift_after;
  int run = 0;  // consecutive points beyond the interval on one side (+ above, - below)
  double run_error = 0, run_first_error = 0;
  auto report = [&](size_t t, double forecast, double z, double sd_now) {
    if (t < first_index || !((z > 0 && report_up) || (z < 0 && report_down))) return;
    const double expected = std::max(std::exp(forecast) - offset, 0.0);
    const double actual = values[t];
    if (std::abs(actual - expected) < options.min_impact) return;
    PointAnomaly a;
    a.index = t;
    a.expected = expected;
    a.lower = std::max(std::exp(forecast - k * sd_now) - offset, 0.0);
    a.upper = std::exp(forecast + k * sd_now) - offset;
    a.actual = actual;
    a.impact = actual - expected;
    a.score = z;
    out.push_back(a);
  };
  size_t d = 0;  // season position of index begin + warmup
  for (size_t t = begin + warmup; t < n; ++t, d = d + 1 == season ? 0 : d + 1) {
    const double x = log_value(values[t]);
    const double forecast = level + trend + seasonal[d];
    const double error = x - forecast;
    const double z = error / sd;
    const bool above = z > k, below = z < -k;
    if (above || below) {
      if (run == 0 || (run > 0) != above) run = 0, run_error = 0, run_first_error = error;
      run += above ? 1 : -1;
      run_error += error;
    } else {
      run = 0;
    }
    if (shift_after > 0 && std::abs(run) >= shift_after) {
      // A new level: move the baseline onto it (by the run's mean error) and keep the
      // season and the trend. This point is the new normal and not reported, unless it
      // is far beyond the run's first (spend that keeps climbing: a busy day, then a
      // machine left running round the clock).
      level += trend + run_error / std::abs(run);
      run = 0;
      if (std::abs(error) > kEscalation * std::abs(run_first_error)) report(t, forecast, z, sd);
      continue;
    }
    errors_seen += 1;
    const double step = std::max(phi, 1.0 / errors_seen);
    const bool young = step > phi;
    const double abs_error = std::abs(error);
    median_abs *= abs_error > median_abs ? (young ? std::exp(step) : steady_up)
                                         : (young ? std::exp(-step) : steady_down);
    high_abs *= abs_error > high_abs
                    ? (young ? std::exp(2 * kHighQuantile * step) : steady_high_up)
                    : (young ? std::exp(-2 * (1 - kHighQuantile) * step) : steady_high_down);
    const double sd_now = sd;
    sd = std::max({kMedianAbsToSd * median_abs, kHighFloor * high_abs / kHighAbsToSd, kMinScale});
    if (above || below) {
      // An outlier teaches the baseline nothing: the level follows its trend.
      level += trend;
      report(t, forecast, z, sd_now);
      continue;
    }
    const double e = std::clamp(error, -kUpdateClip * sd_now, kUpdateClip * sd_now);
    level += trend + alpha * e;
    trend = std::clamp(trend + alpha * beta * e, -max_trend, max_trend);
    seasonal[d] += gamma * (1.0 - alpha) * e;
  }
  return out;
}

}  // namespace aifinops::analyze

// ---------------------------------------------------------------------------------------
// Evaluation

namespace aifinops::analyze {

namespace {

/// CPU time of the calling thread: on a shared machine, what the detector itself used.
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

}  // namespace

SyntheticSpec default_evaluation_series() {
  SyntheticSpec spec;
  spec.days = 180;
  spec.level_shift_probability = 0.003;
  spec.spike_probability = 0.02;
  spec.min_spike = 0.1;
  spec.max_spike = 1.5;
  return spec;
}

double AnomalyEvaluation::precision() const {
  const size_t flagged = true_positives + false_positives;
  return flagged ? (double)true_positives / (double)flagged : 0.0;
}

double AnomalyEvaluation::strict_precision() const {
  const size_t flagged = true_positives + false_positives + shift_onsets_flagged;
  return flagged ? (double)true_positives / (double)flagged : 0.0;
}

double AnomalyEvaluation::recall(double min_size) const {
  size_t spikes = 0, detected = 0;
  for (const SpikeBucket& b : buckets) {
    if (b.from + 1e-12 < min_size) continue;
    spikes += b.spikes;
    detected += b.detected;
  }
  return spikes ? (double)detected / (double)spikes : 0.0;
}

double AnomalyEvaluation::f1(double min_size) const {
  const double p = precision(), r = recall(min_size);
  return p + r > 0 ? 2 * p * r / (p + r) : 0.0;
}

AnomalyEvaluation evaluate_anomaly_detector(const AnomalyEvaluationSpec& spec) {
  AnomalyEvaluation result;
  for (auto [from, to] : {std::pair{0.0, 0.2}, {0.2, 0.3}, {0.3, 0.5}, {0.5, 1.0}, {1.0, 1e300}}) {
    SpikeBucket b;
    b.from = from;
    b.to = to;
    result.buckets.push_back(b);
  }
  result.series = spec.series;
  std::mt19937_64 rng(spec.seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  // Generate a chunk, time the detector over it, then count: the clock sees only the
  // detector, and memory stays small at any number of series.
  constexpr size_t kChunk = 2048;
  std::vector<LabelledSeries> chunk;
  std::vector<std::vector<PointAnomaly>> found;
  for (size_t done = 0; done < spec.series;) {
    const size_t count = std::min(kChunk, spec.series - done);
    chunk.clear();
    for (size_t i = 0; i < count; ++i) {
      SyntheticSpec s = spec.synthetic;
      if (spec.vary) {
        s.level *= std::exp(-3.0 + 6.0 * unit(rng));
        s.trend_per_day *= -0.5 + 2.0 * unit(rng);
        s.weekly_amplitude *= 2.0 * unit(rng);
        s.noise *= 0.6 + 0.8 * unit(rng);
      }
      chunk.push_back(generate_series(s, rng()));
    }
    found.assign(count, {});
    const auto start = std::chrono::steady_clock::now();
    const double cpu_start = thread_cpu_seconds();
    for (size_t i = 0; i < count; ++i)
      found[i] = detect_anomalies(chunk[i].values, spec.detector, spec.first_scored);
    result.cpu_seconds += thread_cpu_seconds() - cpu_start;
    result.seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (size_t i = 0; i < count; ++i) {
      const LabelledSeries& series = chunk[i];
      const size_t n = series.values.size();
      result.points += n > spec.first_scored ? n - spec.first_scored : 0;
      std::vector<bool> flagged(n, false);
      for (const PointAnomaly& a : found[i]) flagged[a.index] = true;
      for (size_t t = spec.first_scored; t < n; ++t) {
        const double spike = series.spike[t];
        if (spike > 0) {
          ++result.spikes;
          for (SpikeBucket& b : result.buckets) {
            if (spike >= b.from && spike < b.to) {
              ++b.spikes;
              if (flagged[t]) ++b.detected;
            }
          }
        }
        if (!flagged[t]) continue;
        if (spike > 0)
          ++result.true_positives;
        else if (series.shift[t] != 0)
          ++result.shift_onsets_flagged;
        else
          ++result.false_positives;
      }
    }
    done += count;
  }
  return result;
}

}  // namespace aifinops::analyze

// ---------------------------------------------------------------------------------------
// Anomalies in the ledger

namespace aifinops::analyze {
namespace {

/// Weeks of history read before --since, for the baseline to settle (three seed the
/// baseline, the rest let it learn trend and scale).
constexpr int64_t kHistorySeasons = 13;
/// Same-position buckets (a week apart for days, a day apart for hours) whose median is a
/// sub-dimension value's baseline in explanations.
constexpr int kExplanationLags = 4;
/// A dimension explains an anomaly when at most this many of its values account for at
/// least kExplainedShare of the difference.
constexpr size_t kMaxValuesPerDimension = 3;
constexpr double kExplainedShare = 0.8;
constexpr size_t kMaxExplainingDimensions = 4;
constexpr size_t kMaxContributors = 8;
/// Anomalies listed in the run's note (the newest).
constexpr size_t kMaxNoteItems = 100;

bool same_dimension(const ledger::Dimension& a, const ledger::Dimension& b) {
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case ledger::Dimension::Kind::kAttribute:
      return a.attribute == b.attribute;
    case ledger::Dimension::Kind::kTag:
      return a.tag_keys == b.tag_keys;
    case ledger::Dimension::Kind::kTime:
      return a.grain == b.grain;
  }
  return false;
}

ledger::Dimension charge_frequency_dimension() {
  ledger::Dimension d;
  d.attribute = Attr::kChargeFrequency;
  d.label = "charge_frequency";
  return d;
}

constexpr const char* kRecurring = "Recurring";

/// Index of the first bucket the detector can score (after leading zeros and warm-up).
size_t first_scorable(std::span<const double> values, size_t season) {
  return first_positive(values) + kWarmupSeasons * std::clamp<size_t>(season, 1, kMaxSeason);
}

/// True when an hourly series set has values only at midnight: records that each cover a
/// day, for which hourly seasonality means nothing.
bool is_daily_data(const SeriesSet& set) {
  bool any = false;
  for (const Series& s : set.series) {
    for (size_t i = 0; i < s.values.size(); ++i) {
      if (s.values[i] == 0.0) continue;
      if (set.time_of(i) % 86400 != 0) return false;
      any = true;
    }
  }
  return any;
}

struct ValueSums {
  std::array<double, 1 + kExplanationLags> sums{};  ///< [0] the anomaly's bucket, then the lags
};

/// Splits the anomaly's difference over the values of each candidate dimension and keeps
/// the dimensions where a few values carry most of it.
std::vector<Contributor> rank_contributors(
    const std::vector<ledger::Dimension>& candidates,
    const std::vector<std::map<std::string, ValueSums>>& by_dim, int lags,
    const PointAnomaly& point) {
  struct Explaining {
    size_t dimension;
    std::vector<Contributor> values;
  };
  std::vector<Explaining> explaining;
  Contributor best_single;
  const double sign = point.impact >= 0 ? 1.0 : -1.0;
  for (size_t j = 0; j < candidates.size(); ++j) {
    const auto& values = by_dim[j];
    if (values.size() < 2) continue;  // one value throughout: true, and says nothing
    std::vector<Contributor> contributors;
    double base_total = 0;
    std::vector<double> bases;
    for (const auto& [value, v] : values) {
      std::array<double, kExplanationLags> lagged{};
      for (int l = 0; l < lags; ++l) lagged[(size_t)l] = v.sums[(size_t)l + 1];
      const double base = lags > 0 ? median_in_place(lagged.data(), (size_t)lags) : 0.0;
      bases.push_back(base);
      base_total += base;
    }
    size_t i = 0;
    for (const auto& [value, v] : values) {
      Contributor c;
      c.dimension = candidates[j].label;
      c.value = value;
      c.actual = v.sums[0];
      // The values' baselines, scaled so that they add up to the series' expected value.
      c.expected = base_total > 0 ? bases[i] * point.expected / base_total : 0.0;
      c.impact = c.actual - c.expected;
      c.share = point.impact != 0 ? c.impact / point.impact : 0.0;
      contributors.push_back(std::move(c));
      ++i;
    }
    std::sort(contributors.begin(), contributors.end(),
              [&](const Contributor& a, const Contributor& b) {
                if (a.impact != b.impact) return sign * a.impact > sign * b.impact;
                return a.value < b.value;
              });
    if (contributors[0].value != "(none)" && contributors[0].share > best_single.share)
      best_single = contributors[0];
    double cumulative = 0;
    std::vector<Contributor> chosen;
    for (const Contributor& c : contributors) {
      if (chosen.size() == kMaxValuesPerDimension || cumulative >= kExplainedShare || c.share <= 0)
        break;
      cumulative += c.share;
      chosen.push_back(c);
    }
    const bool names_none = std::any_of(chosen.begin(), chosen.end(),
                                        [](const Contributor& c) { return c.value == "(none)"; });
    if (cumulative >= kExplainedShare && !names_none) explaining.push_back({j, std::move(chosen)});
  }
  // In the candidates' order, most specific first: "model=gpt-4o" says more than
  // "provider=OpenAI", even when both carry the whole difference.
  std::stable_sort(
      explaining.begin(), explaining.end(),
      [](const Explaining& a, const Explaining& b) { return a.dimension < b.dimension; });
  std::vector<Contributor> out;
  for (size_t e = 0; e < explaining.size() && e < kMaxExplainingDimensions; ++e) {
    for (Contributor& c : explaining[e].values) {
      if (out.size() == kMaxContributors) break;
      out.push_back(std::move(c));
    }
  }
  // Nothing concentrated: the single largest value, when it carries a fair part.
  if (out.empty() && best_single.share >= 0.25) out.push_back(best_single);
  return out;
}

/// Explains one anomaly from its bucket and the same position in the previous seasons,
/// grouped by every candidate dimension at once.
Result<std::vector<Contributor>> explain_anomaly(ledger::Ledger& ledger, const AnomalyQuery& query,
                                                 const std::vector<ledger::Dimension>& candidates,
                                                 const Anomaly& anomaly, const SeriesSet& set,
                                                 size_t season, size_t& queries) {
  if (candidates.empty()) return std::vector<Contributor>{};
  std::vector<EpochSeconds> buckets;  // [0] the anomaly's, then 1..4 seasons before
  for (int l = 0; l <= kExplanationLags; ++l) {
    const EpochSeconds t = anomaly.time - (EpochSeconds)l * (EpochSeconds)season * set.step_s;
    if (l > 0 && t < set.start) break;
    buckets.push_back(t);
  }
  ledger::QuerySpec spec;
  spec.metric = query.metric;
  spec.filters = query.filters;
  for (size_t i = 0; i < query.group_by.size(); ++i)
    spec.filters.push_back({query.group_by[i], anomaly.keys[i]});
  spec.group_by = candidates;
  if (!query.include_recurring) spec.group_by.push_back(charge_frequency_dimension());
  std::vector<std::map<std::string, ValueSums>> by_dim(candidates.size());
  auto add = [&](const ledger::QueryRow& row, size_t first_key, size_t bucket) {
    if (!query.include_recurring && row.keys.back() == kRecurring) return;
    const double v = metric_value_to_double(query.metric, row.value);
    for (size_t j = 0; j < candidates.size(); ++j)
      by_dim[j][row.keys[first_key + j]].sums[bucket] += v;
  };
  if (query.grain == ledger::Grain::kDay) {
    // The day rollups are keyed by day first: a query per day reads only that day.
    for (size_t l = 0; l < buckets.size(); ++l) {
      spec.from = buckets[l];
      spec.to = buckets[l] + set.step_s;
      auto result = ledger.query(spec);
      ++queries;
      if (!result) return Unexpected{result.error()};
      for (const ledger::QueryRow& row : result->rows) add(row, 0, l);
    }
  } else {
    // Hours come from the records, which the ledger reads whole for any time range: one
    // query over the span, grouped by hour, reads them once instead of five times.
    ledger::Dimension hour;
    hour.kind = ledger::Dimension::Kind::kTime;
    hour.grain = ledger::Grain::kHour;
    hour.label = "hour";
    spec.group_by.insert(spec.group_by.begin(), hour);
    spec.from = buckets.back();
    spec.to = anomaly.time + set.step_s;
    auto result = ledger.query(spec);
    ++queries;
    if (!result) return Unexpected{result.error()};
    for (const ledger::QueryRow& row : result->rows) {
      auto t = parse_timestamp(row.keys[0]);
      if (!t)
        return make_error(ErrorCode::kInternal, "anomalies: unexpected time key " + row.keys[0]);
      auto it = std::find(buckets.begin(), buckets.end(), *t);
      if (it != buckets.end()) add(row, 1, (size_t)(it - buckets.begin()));
    }
  }
  return rank_contributors(candidates, by_dim, (int)buckets.size() - 1, anomaly.point);
}

void append_number(std::string& out, double v, const char* format = "%.2f") {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char text[64];
  std::snprintf(text, sizeof text, format, v);
  std::string s = text;
  if (s == "-0.00" || s == "-0.0000") s.erase(0, 1);
  out += s;
}

}  // namespace

std::vector<ledger::Dimension> default_explanation_dimensions() {
  std::vector<ledger::Dimension> out;
  // Most specific first: explanations are listed in this order.
  for (const char* name :
       {"model", "resource_name", "resource", "sku", "service", "operation", "sub_account",
        "region", "provider", "project", "environment", "team", "workload", "cost_center"}) {
    auto d = ledger::parse_dimension(name);
    if (d) out.push_back(*d);
  }
  return out;
}

Result<AnomalyRun> run_anomaly_detection(ledger::Ledger& ledger, const AnomalyQuery& query) {
  if (query.grain != ledger::Grain::kDay && query.grain != ledger::Grain::kHour)
    return make_error(ErrorCode::kInvalidArgument, "anomalies: the grain must be day or hour");
  for (const ledger::Dimension& d : query.group_by) {
    if (d.kind == ledger::Dimension::Kind::kTime)
      return make_error(ErrorCode::kInvalidArgument,
                        "anomalies: group by " + d.label +
                            " is not allowed: every series is already by " +
                            (query.grain == ledger::Grain::kDay ? "day" : "hour"));
  }
  const int64_t step = query.grain == ledger::Grain::kDay ? 86400 : 3600;
  DetectorOptions options;
  options.season_length = query.grain == ledger::Grain::kDay ? 7 : 24;
  options.min_impact = query.min_impact;
  options.direction = query.direction;
  const size_t season = options.season_length;

  AnomalyRun run;
  std::optional<EpochSeconds> since, from;
  if (query.since) {
    since = *query.since - (((*query.since % step) + step) % step);
    from = *since - kHistorySeasons * (int64_t)season * step;
  }
  SeriesSpec series_spec;
  series_spec.group_by = query.group_by;
  series_spec.filters = query.filters;
  series_spec.metric = query.metric;
  series_spec.grain = query.grain;
  series_spec.from = from;
  series_spec.to = query.to;
  series_spec.exclude_recurring = !query.include_recurring;
  auto set = load_series(ledger, series_spec);
  ++run.queries;
  if (!set) return Unexpected{set.error()};
  if (query.grain == ledger::Grain::kHour && is_daily_data(*set)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "anomalies --grain hour: every record in this range starts at midnight "
                      "(daily data, such as most cloud bills); use --grain day");
  }
  run.first_bucket = set->start;
  run.end_bucket = set->time_of(set->buckets);
  size_t first_index = 0;
  if (since && *since > set->start) first_index = (size_t)((*since - set->start) / step);

  std::vector<Anomaly> found;
  for (const Series& s : set->series) {
    ++run.series;
    const size_t scorable = std::max(first_index, first_scorable(s.values, season));
    if (scorable < s.values.size()) run.points += s.values.size() - scorable;
    for (const PointAnomaly& p : detect_anomalies(s.values, options, first_index)) {
      Anomaly a;
      a.keys = s.keys;
      a.time = set->time_of(p.index);
      a.point = p;
      found.push_back(std::move(a));
    }
  }
  std::sort(found.begin(), found.end(), [](const Anomaly& a, const Anomaly& b) {
    if (a.time != b.time) return a.time > b.time;
    if (std::abs(a.point.impact) != std::abs(b.point.impact))
      return std::abs(a.point.impact) > std::abs(b.point.impact);
    return a.keys < b.keys;
  });
  run.found = found.size();
  if (query.limit > 0 && found.size() > query.limit) found.resize(query.limit);

  // Explanations: the candidate dimensions that are not already fixed by the series.
  std::vector<ledger::Dimension> candidates;
  for (const ledger::Dimension& d :
       query.explain_by.empty() ? default_explanation_dimensions() : query.explain_by) {
    auto fixed = [&](const ledger::Dimension& g) { return same_dimension(g, d); };
    bool grouped = std::any_of(query.group_by.begin(), query.group_by.end(), fixed);
    bool filtered =
        std::any_of(query.filters.begin(), query.filters.end(),
                    [&](const ledger::Filter& f) { return same_dimension(f.dimension, d); });
    if (!grouped && !filtered && d.kind != ledger::Dimension::Kind::kTime) candidates.push_back(d);
  }
  if (!query.explain) candidates.clear();
  for (Anomaly& a : found) {
    auto explained = explain_anomaly(ledger, query, candidates, a, *set, season, run.queries);
    if (!explained) return Unexpected{explained.error()};
    a.explained_by = std::move(*explained);
  }
  run.anomalies = std::move(found);

  auto noted =
      ledger.note("anomalies_run", "last", anomaly_run_json(run, query, false, kMaxNoteItems));
  if (!noted) return Unexpected{noted.error()};
  return run;
}

Result<std::vector<Anomaly>> find_anomalies(ledger::Ledger& ledger, const AnomalyQuery& query) {
  auto run = run_anomaly_detection(ledger, query);
  if (!run) return Unexpected{run.error()};
  return std::move(run->anomalies);
}

std::string anomaly_run_json(const AnomalyRun& run, const AnomalyQuery& query, bool explanations,
                             size_t max_items) {
  std::string s = "{\"metric\":";
  append_json_string(s, ledger::metric_name(query.metric));
  s += ",\"grain\":";
  append_json_string(s, query.grain == ledger::Grain::kHour ? "hour" : "day");
  s += ",\"by\":[";
  for (size_t i = 0; i < query.group_by.size(); ++i) {
    if (i) s += ",";
    append_json_string(s, query.group_by[i].label);
  }
  s += "],\"filters\":{";
  for (size_t i = 0; i < query.filters.size(); ++i) {
    if (i) s += ",";
    append_json_string(s, query.filters[i].dimension.label);
    s += ":";
    append_json_string(s, query.filters[i].value);
  }
  s += "},\"since\":";
  if (query.since)
    append_json_string(s, format_timestamp(*query.since));
  else
    s += "null";
  s += ",\"direction\":";
  append_json_string(s, query.direction == AnomalyDirection::kUp     ? "up"
                        : query.direction == AnomalyDirection::kDown ? "down"
                                                                     : "both");
  s += ",\"min_impact\":";
  append_number(s, query.min_impact, "%.10g");
  const bool has_data = run.end_bucket > run.first_bucket;
  s += ",\"from\":";
  if (has_data)
    append_json_string(s, format_timestamp(run.first_bucket));
  else
    s += "null";
  s += ",\"to\":";
  if (has_data)
    append_json_string(s, format_timestamp(run.end_bucket));
  else
    s += "null";
  s += ",\"series\":" + std::to_string(run.series) + ",\"points\":" + std::to_string(run.points) +
       ",\"found\":" + std::to_string(run.found) + ",\"total_impact\":";
  double total = 0;
  for (const Anomaly& a : run.anomalies) total += a.point.impact;
  append_number(s, total);
  s += ",\"anomalies\":[";
  const size_t items =
      max_items > 0 ? std::min(max_items, run.anomalies.size()) : run.anomalies.size();
  for (size_t i = 0; i < items; ++i) {
    const Anomaly& a = run.anomalies[i];
    s += i ? ",{\"keys\":{" : "{\"keys\":{";
    for (size_t k = 0; k < a.keys.size() && k < query.group_by.size(); ++k) {
      if (k) s += ",";
      append_json_string(s, query.group_by[k].label);
      s += ":";
      append_json_string(s, a.keys[k]);
    }
    s += "},\"time\":";
    append_json_string(s, format_timestamp(a.time));
    s += ",\"expected\":";
    append_number(s, a.point.expected);
    s += ",\"lower\":";
    append_number(s, a.point.lower);
    s += ",\"upper\":";
    append_number(s, a.point.upper);
    s += ",\"actual\":";
    append_number(s, a.point.actual);
    s += ",\"impact\":";
    append_number(s, a.point.impact);
    s += ",\"score\":";
    append_number(s, a.point.score);
    if (explanations) {
      s += ",\"explained_by\":[";
      for (size_t c = 0; c < a.explained_by.size(); ++c) {
        const Contributor& e = a.explained_by[c];
        s += c ? ",{\"dimension\":" : "{\"dimension\":";
        append_json_string(s, e.dimension);
        s += ",\"value\":";
        append_json_string(s, e.value);
        s += ",\"expected\":";
        append_number(s, e.expected);
        s += ",\"actual\":";
        append_number(s, e.actual);
        s += ",\"impact\":";
        append_number(s, e.impact);
        s += ",\"share\":";
        append_number(s, e.share, "%.4f");
        s += "}";
      }
      s += "]";
    }
    s += "}";
  }
  s += "]}";
  return s;
}

}  // namespace aifinops::analyze
