// Anomaly detection on spend and usage series: a robust baseline with weekly seasonality
// and trend, a prediction interval around it, and an anomaly where the actual value leaves
// the interval by more than a minimum impact; each one explained by the sub-dimension values
// (model, key, resource, ...) that account for most of the difference.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "analyze/synthetic_series.h"
#include "core/result.h"
#include "core/time.h"
#include "ledger/ledger.h"

namespace aifinops::analyze {

/// Which side of the interval counts. Spend that jumps is what FinOps asks about; drops
/// (an outage, a lost customer) are there for whoever wants them.
enum class AnomalyDirection { kUp, kDown, kBoth };

/// The detector's knobs. The defaults are the ones bench/anomaly_eval measures
/// (docs/anomalies.md); change them together with the figures there.
struct DetectorOptions {
  /// Buckets per season: 7 for daily series (weekly seasonality), 24 for hourly ones.
  size_t season_length = 7;
  /// Half-width of the prediction interval, in robust standard deviations of the
  /// one-step-ahead error (on the log scale).
  double threshold = 3.0;
  /// |actual - expected| below this is never an anomaly (display units: dollars, tokens).
  double min_impact = 0.0;
  AnomalyDirection direction = AnomalyDirection::kUp;
  /// Smoothing weights of the robust Holt-Winters baseline (level, trend, season) and of
  /// the error scale. Small values learn slowly and forget slowly.
  double level_weight = 0.15, trend_weight = 0.02, season_weight = 0.15, scale_weight = 0.02;
  /// This many consecutive points beyond the interval on the same side are a new level,
  /// not a run of anomalies: the baseline moves there and the last of them is not reported
  /// (the first ones are), unless its error is 1.5 times the first one's (spend still
  /// climbing). 0 disables.
  int level_shift_after = 2;
};

/// One anomalous point of a series.
struct PointAnomaly {
  size_t index = 0;                           ///< bucket
  double expected = 0, lower = 0, upper = 0;  ///< baseline and its prediction interval
  double actual = 0;
  double impact = 0;  ///< actual - expected
  double score = 0;   ///< (log actual - log expected) in robust standard deviations
};

/// Scores every point of `values` from `first_index` on (earlier points are history only),
/// in index order. The baseline starts at the first non-zero value and needs three seasons
/// of history (21 days, 72 hours) before it scores anything: earlier points are never
/// reported. Linear in the length, no allocation beyond the result; a pure function, safe to
/// call from any thread.
std::vector<PointAnomaly> detect_anomalies(std::span<const double> values,
                                           const DetectorOptions& options, size_t first_index = 0);

/// What explains an anomaly: a sub-dimension value and its part of the difference.
struct Contributor {
  std::string dimension;  ///< "model"
  std::string value;      ///< "gpt-4o"
  double expected = 0, actual = 0, impact = 0;
  double share = 0;  ///< impact / the anomaly's impact (1 = all of it)
};

/// An anomaly in the ledger: which series, when, the detector's numbers, and why.
struct Anomaly {
  std::vector<std::string> keys;  ///< the series' group values (in AnomalyQuery::group_by order)
  EpochSeconds time = 0;          ///< the bucket's start
  PointAnomaly point;
  /// For each sub-dimension (most specific first, at most 4) whose top 3 values or fewer
  /// account for at least 80% of the difference, those values, largest impact first. Empty
  /// when nothing concentrated explains it.
  std::vector<Contributor> explained_by;
};

/// What to scan: the series (one per value of `group_by`, within `filters`), the metric and
/// grain, what to report. The `aifinops anomalies` flags map one to one onto it.
struct AnomalyQuery {
  std::vector<ledger::Dimension> group_by;  ///< empty = the total
  std::vector<ledger::Filter> filters;
  ledger::Metric metric = ledger::Metric::kEffectiveCost;
  ledger::Grain grain = ledger::Grain::kDay;  ///< kDay or kHour
  std::optional<EpochSeconds> since;  ///< report anomalies from here (history before it is read)
  std::optional<EpochSeconds> to;     ///< exclusive; default: after the last data
  double min_impact = 0.0;
  AnomalyDirection direction = AnomalyDirection::kUp;
  /// Recurring charges (monthly fees, support, tax: FOCUS ChargeFrequency "Recurring") land
  /// on the first day of a month and would be a spike every month; left out by default.
  bool include_recurring = false;
  /// Anomalies reported (and explained) at most; the newest are kept. 0 = all.
  size_t limit = 0;
  /// Sub-dimensions tried as explanations, most specific first (explanations are listed in
  /// this order); empty = default_explanation_dimensions(). The ones grouped or filtered
  /// on are skipped.
  std::vector<ledger::Dimension> explain_by;
  /// False: no explanations (each costs a query per lag); for callers that only count the
  /// anomalies and sum their impact, such as /metrics.
  bool explain = true;
};

/// What a run looked at, besides the anomalies it found.
struct AnomalyRun {
  std::vector<Anomaly> anomalies;  ///< newest first, then largest impact first
  size_t series = 0;               ///< series scored
  size_t points = 0;               ///< points scored (from `since`, after each warm-up)
  size_t found = 0;                ///< anomalies before `limit`
  EpochSeconds first_bucket = 0, end_bucket = 0;  ///< the buckets read [first, end)
  size_t queries = 0;                             ///< ledger queries made
};

/// Finds the anomalies in the ledger, newest first, and explains each one. Records the run
/// as a note (kind "anomalies_run", key "last", detail a JSON summary: see docs/anomalies.md)
/// so that KPIs and maturity can see that detection is in use and what it found.
Result<AnomalyRun> run_anomaly_detection(ledger::Ledger& ledger, const AnomalyQuery& query);

/// The anomalies of run_anomaly_detection alone.
Result<std::vector<Anomaly>> find_anomalies(ledger::Ledger& ledger, const AnomalyQuery& query);

/// The default explanation dimensions (see AnomalyQuery::explain_by).
std::vector<ledger::Dimension> default_explanation_dimensions();

/// The run as JSON (docs/anomalies.md): the query, the counts, and the first `max_items`
/// anomalies (0 = all), with their explanations when `explanations`. The note of a run is
/// this without explanations and with at most 100 anomalies; `--format json` is this whole.
std::string anomaly_run_json(const AnomalyRun& run, const AnomalyQuery& query, bool explanations,
                             size_t max_items = 0);

// --- evaluation on labelled synthetic series (bench/anomaly_eval, the unit test) -------

/// The evaluation's base series: 180 days, the generator's default shape (5% noise,
/// +0.2%/day, weekly swing), level shifts of 10-30% on 0.3% of days, and spikes of 10% to
/// 150% on 2% of days.
SyntheticSpec default_evaluation_series();

/// Which series to generate and how to score them.
struct AnomalyEvaluationSpec {
  size_t series = 1000;
  uint64_t seed = 1;
  /// The base shape; with `vary`, each series draws its level (x e^-3..e^3), trend
  /// (-0.5..1.5 x), weekly amplitude (0..2 x) and noise (0.6..1.4 x) around it.
  SyntheticSpec synthetic = default_evaluation_series();
  bool vary = true;
  DetectorOptions detector;
  size_t first_scored = 28;  ///< points before it are history (spikes start there too)
};

/// Spikes of a size range and how many the detector found.
struct SpikeBucket {
  double from = 0, to = 0;  ///< spike size relative to the clean value, [from, to)
  size_t spikes = 0, detected = 0;
  double recall() const { return spikes ? (double)detected / (double)spikes : 0.0; }
};

/// Counts over every scored point. A flag on a spike is a true positive whatever the
/// spike's size; a flag on the first day of a level shift is counted apart (a step in
/// spend is worth reporting, but it is not a labelled spike); any other flag is false.
struct AnomalyEvaluation {
  std::vector<SpikeBucket> buckets;  ///< < 20%, 20-30%, 30-50%, 50-100%, 100%+
  size_t series = 0, points = 0, spikes = 0;
  size_t true_positives = 0, false_positives = 0, shift_onsets_flagged = 0;
  double seconds = 0;      ///< wall time in detect_anomalies only (generation excluded)
  double cpu_seconds = 0;  ///< the same as CPU time of the (one) thread

  /// TP / (TP + FP): flags on level-shift onsets are neither.
  double precision() const;
  /// TP / (TP + FP + flags on level-shift onsets).
  double strict_precision() const;
  /// Share of spikes at least `min_size` (0.3 = 30% over the clean value) that were found.
  double recall(double min_size) const;
  /// Harmonic mean of precision() and recall(min_size).
  double f1(double min_size) const;
};

/// Generates `spec.series` labelled series (deterministic for the seed), runs the
/// detector on each, and counts.
AnomalyEvaluation evaluate_anomaly_detector(const AnomalyEvaluationSpec& spec);

}  // namespace aifinops::analyze
