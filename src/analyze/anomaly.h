// Anomaly detection on spend and usage series: a robust baseline with weekly seasonality
// and trend, a prediction interval around it, and an anomaly where the actual value leaves
// the interval by more than a minimum impact; each one explained by the sub-dimension values
// (model, key, resource, ...) that account for most of the difference.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/time.h"
#include "ledger/ledger.h"

namespace aifinops::analyze {

struct DetectorOptions {
  double min_impact = 0.0;  ///< |actual - expected| below this is never an anomaly (display units)
  // (tuning knobs of the baseline live here too)
};

/// One anomalous point of a series.
struct PointAnomaly {
  size_t index = 0;            ///< bucket
  double expected = 0, lower = 0, upper = 0;  ///< baseline and its prediction interval
  double actual = 0;
  double impact = 0;           ///< actual - expected
  double score = 0;            ///< how far outside the interval, in robust standard deviations
};

/// Scores every point of `values` from `first_index` on (earlier points are history only).
std::vector<PointAnomaly> detect_anomalies(std::span<const double> values, const DetectorOptions& options,
                                           size_t first_index = 0);

/// What explains an anomaly: a sub-dimension value and its share of the difference.
struct Contributor {
  std::string dimension;  ///< "model"
  std::string value;      ///< "gpt-4o"
  double expected = 0, actual = 0, impact = 0;
};

struct Anomaly {
  std::vector<std::string> keys;  ///< the series' group values (in AnomalyQuery::group_by order)
  EpochSeconds time = 0;          ///< the bucket's start
  PointAnomaly point;
  std::vector<Contributor> explained_by;  ///< largest impact first
};

struct AnomalyQuery {
  std::vector<ledger::Dimension> group_by;  ///< empty = the total
  std::vector<ledger::Filter> filters;
  ledger::Metric metric = ledger::Metric::kEffectiveCost;
  ledger::Grain grain = ledger::Grain::kDay;
  std::optional<EpochSeconds> since;  ///< report anomalies from here (history before it is read)
  std::optional<EpochSeconds> to;
  double min_impact = 0.0;
};

/// Finds the anomalies in the ledger, newest first. Records the run as a note
/// (kind "anomalies_run") so that maturity can see detection is in use.
Result<std::vector<Anomaly>> find_anomalies(ledger::Ledger& ledger, const AnomalyQuery& query);

}  // namespace aifinops::analyze
