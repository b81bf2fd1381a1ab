// Time series from the ledger: one dense array per group (team, model, ...) of a metric per
// day or hour, gaps filled with 0, for the analyses that model time (anomalies, forecasts,
// budgets). Values are in display units (dollars, tokens) as doubles: statistics, not money;
// amounts shown to users are re-read exactly from the ledger.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/time.h"
#include "ledger/ledger.h"

namespace aifinops::analyze {

struct SeriesSpec {
  std::vector<ledger::Dimension> group_by;  ///< non-time dimensions; empty = one total series
  std::vector<ledger::Filter> filters;
  ledger::Metric metric = ledger::Metric::kEffectiveCost;
  ledger::Grain grain = ledger::Grain::kDay;  ///< kDay or kHour
  std::optional<EpochSeconds> from;  ///< inclusive; default: the first bucket with data
  std::optional<EpochSeconds> to;    ///< exclusive; default: after the last bucket with data
  /// Leaves out recurring charges (FOCUS ChargeFrequency "Recurring": monthly fees, support
  /// plans, taxes), which all land on the 1st of a month and look like spikes to a detector.
  bool exclude_recurring = false;
};

struct Series {
  std::vector<std::string> keys;  ///< the group's values, in group_by order
  std::vector<double> values;     ///< one per bucket from SeriesSet::start
};

struct SeriesSet {
  EpochSeconds start = 0;     ///< first bucket (all series share the buckets)
  int64_t step_s = 86400;     ///< bucket length
  size_t buckets = 0;
  std::vector<Series> series; ///< ordered by total descending
  /// The time of bucket i.
  EpochSeconds time_of(size_t i) const { return start + (EpochSeconds)i * step_s; }
};

/// Runs one grouped query (group_by + the time grain) and lays the rows out densely.
Result<SeriesSet> load_series(ledger::Ledger& ledger, const SeriesSpec& spec);

/// A metric's value in display units: nanos -> dollars (or GPU-hours), counts as they are.
double metric_value_to_double(ledger::Metric metric, __int128 value);

}  // namespace aifinops::analyze
