#include "analyze/series.h"

#include <algorithm>
#include <map>

namespace aifinops::analyze {

double metric_value_to_double(ledger::Metric metric, __int128 value) {
  if (!ledger::metric_is_decimal(metric)) return (double)value;
  // Whole units and the nano remainder separately, so that large sums keep their cents.
  const __int128 units = value / 1'000'000'000, nanos = value % 1'000'000'000;
  return (double)units + (double)nanos / 1e9;
}

Result<SeriesSet> load_series(ledger::Ledger& ledger, const SeriesSpec& spec) {
  if (spec.grain != ledger::Grain::kDay && spec.grain != ledger::Grain::kHour)
    return make_error(ErrorCode::kInvalidArgument, "series grain must be day or hour");
  ledger::QuerySpec q;
  q.from = spec.from;
  q.to = spec.to;
  q.filters = spec.filters;
  q.metric = spec.metric;
  q.group_by = spec.group_by;
  ledger::Dimension time;
  time.kind = ledger::Dimension::Kind::kTime;
  time.grain = spec.grain;
  time.label = spec.grain == ledger::Grain::kDay ? "day" : "hour";
  q.group_by.push_back(time);
  auto result = ledger.query(q);
  if (!result) return Unexpected{result.error()};

  SeriesSet set;
  set.step_s = spec.grain == ledger::Grain::kDay ? 86400 : 3600;
  const size_t n = spec.group_by.size();
  // Time keys come back as timestamps ("2025-10-01T00:00:00Z"); parse each once.
  std::map<std::vector<std::string>, std::vector<std::pair<EpochSeconds, double>>> groups;
  std::optional<EpochSeconds> first, last;
  for (const ledger::QueryRow& row : result->rows) {
    auto t = parse_timestamp(row.keys[n]);
    if (!t) return make_error(ErrorCode::kInternal, "series: unexpected time key " + row.keys[n]);
    std::vector<std::string> keys(row.keys.begin(), row.keys.begin() + (ptrdiff_t)n);
    groups[std::move(keys)].push_back({*t, metric_value_to_double(spec.metric, row.value)});
    if (!first || *t < *first) first = *t;
    if (!last || *t > *last) last = *t;
  }
  EpochSeconds start = spec.from ? *spec.from : first.value_or(0);
  start -= ((start % set.step_s) + set.step_s) % set.step_s;
  EpochSeconds end = spec.to ? *spec.to : (last ? *last + set.step_s : start);
  set.start = start;
  set.buckets = end > start ? (size_t)((end - start + set.step_s - 1) / set.step_s) : 0;
  std::vector<std::pair<double, Series>> ordered;
  for (auto& [keys, points] : groups) {
    Series s;
    s.keys = keys;
    s.values.assign(set.buckets, 0.0);
    double total = 0;
    for (const auto& [t, v] : points) {
      if (t < start) continue;
      size_t i = (size_t)((t - start) / set.step_s);
      if (i < set.buckets) s.values[i] += v;
      total += v;
    }
    ordered.push_back({total, std::move(s)});
  }
  std::stable_sort(ordered.begin(), ordered.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (auto& [total, s] : ordered) set.series.push_back(std::move(s));
  return set;
}

}  // namespace aifinops::analyze
