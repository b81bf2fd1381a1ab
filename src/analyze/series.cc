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
  const int64_t step = spec.grain == ledger::Grain::kDay ? 86400 : 3600;
  ledger::QuerySpec q;
  q.from = spec.from;
  q.to = spec.to;
  q.filters = spec.filters;
  q.metric = spec.metric;
  // Time first in the grouping: SQLite sorts the groups about a quarter faster that way on
  // the day rollups.
  ledger::Dimension time;
  time.kind = ledger::Dimension::Kind::kTime;
  time.grain = spec.grain;
  time.label = spec.grain == ledger::Grain::kDay ? "day" : "hour";
  q.group_by.push_back(time);
  q.group_by.insert(q.group_by.end(), spec.group_by.begin(), spec.group_by.end());
  if (spec.exclude_recurring) {
    ledger::Dimension frequency;
    frequency.attribute = Attr::kChargeFrequency;
    frequency.label = "charge_frequency";
    q.group_by.push_back(frequency);
  }
  auto result = ledger.query(q);
  if (!result) return Unexpected{result.error()};

  struct Point {
    size_t series;
    EpochSeconds time;
    double value;
  };
  std::map<std::vector<std::string>, size_t> index;
  std::vector<std::vector<std::string>> keys;
  std::vector<Point> points;
  std::string last_time_key;
  EpochSeconds t = 0;
  std::optional<EpochSeconds> first, last;
  const size_t dims = spec.group_by.size();
  for (const ledger::QueryRow& row : result->rows) {
    if (spec.exclude_recurring && row.keys.back() == "Recurring") continue;
    if (row.keys[0] != last_time_key) {  // many rows share a bucket: parse it once per run
      auto parsed = parse_timestamp(row.keys[0]);
      if (!parsed) return make_error(ErrorCode::kInternal, "series: unexpected time key " + row.keys[0]);
      t = *parsed;
      last_time_key = row.keys[0];
    }
    std::vector<std::string> k(row.keys.begin() + 1, row.keys.begin() + 1 + (ptrdiff_t)dims);
    auto [it, added] = index.try_emplace(std::move(k), keys.size());
    if (added) keys.push_back(it->first);
    points.push_back({it->second, t, metric_value_to_double(spec.metric, row.value)});
    if (!first || t < *first) first = t;
    if (!last || t > *last) last = t;
  }
  SeriesSet set;
  set.step_s = step;
  EpochSeconds start = spec.from ? *spec.from : first.value_or(0);
  start -= ((start % step) + step) % step;
  const EpochSeconds end = spec.to ? *spec.to : (last ? *last + step : start);
  set.start = start;
  set.buckets = end > start ? (size_t)((end - start + step - 1) / step) : 0;
  std::vector<Series> series(keys.size());
  std::vector<double> totals(keys.size(), 0.0);
  for (size_t i = 0; i < keys.size(); ++i) {
    series[i].keys = std::move(keys[i]);
    series[i].values.assign(set.buckets, 0.0);
  }
  for (const Point& p : points) {
    if (p.time < start) continue;
    const size_t i = (size_t)((p.time - start) / step);
    if (i < set.buckets) series[p.series].values[i] += p.value;
    totals[p.series] += p.value;
  }
  // Largest total first, then by keys.
  std::vector<size_t> order(series.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (totals[a] != totals[b]) return totals[a] > totals[b];
    return series[a].keys < series[b].keys;
  });
  for (size_t i : order) set.series.push_back(std::move(series[i]));
  return set;
}

}  // namespace aifinops::analyze
