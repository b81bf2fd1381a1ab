#include "optimize/cache.h"

#include <map>

namespace aifinops::optimize {
namespace {

/// The gateway writes {"upstream":..,"status":..,"cache_hit":"true"|"false"} in Extra, and
/// since it counts duplicates, "repeat":"true"|"false" after them.
bool extra_says_cache_hit(std::string_view extra) {
  return extra.find("\"cache_hit\":\"true\"") != std::string_view::npos;
}

enum class Repeat { kUntracked, kFirst, kRepeat };

Repeat extra_repeat(std::string_view extra) {
  if (extra.find("\"repeat\":\"true\"") != std::string_view::npos) return Repeat::kRepeat;
  if (extra.find("\"repeat\":\"false\"") != std::string_view::npos) return Repeat::kFirst;
  return Repeat::kUntracked;
}

std::string count_text(__int128 n) { return std::to_string(static_cast<long long>(n)); }

/// Per virtual key and model: the window's requests and cost, split by what the gateway
/// knew of each request.
struct KeyModel {
  std::string provider, model, key, project;
  __int128 requests = 0, hits = 0, miss_cost = 0;
  // Records the gateway counted repeats for: how many, how many repeated a request answered
  // within its window, and of those the ones the cache did not answer, with their cost.
  __int128 counted = 0, counted_cost = 0, repeats = 0, repeats_missed = 0, repeats_missed_cost = 0;
  // Records without a count (written before the gateway counted, or with it off).
  __int128 uncounted = 0, uncounted_miss_cost = 0;
};

/// Per provider and model, over every key: the repeat rate measured on other traffic, for
/// keys whose records carry no count.
struct Measured {
  __int128 requests = 0, repeats = 0;
  int keys = 0;
  bool counted = false;  ///< from the gateway's repeat count; else from cache hits
};

std::string records_command(const RecommendContext& c, const KeyModel& km) {
  return "aifinops report --by day --metric requests --filter resource=\"" + km.key +
         "\" --filter model=\"" + km.model + "\" --from " + format_date(c.from()) + " --to " +
         format_date(c.as_of);
}

}  // namespace

Result<std::vector<Recommendation>> recommend_cache(const RecommendContext& c) {
  // Gateway records only: one per request, under a virtual key.
  std::vector<ledger::Dimension> group = {
      attribute_dimension(Attr::kProviderName), attribute_dimension(Attr::kModel),
      attribute_dimension(Attr::kResourceId), attribute_dimension(Attr::kProject),
      attribute_dimension(Attr::kExtra)};
  std::vector<ledger::Filter> filters = {attribute_filter(Attr::kResourceType, "Virtual key")};
  auto requests = query_window(c, group, filters, ledger::Metric::kRequests);
  if (!requests) return Unexpected{requests.error()};
  auto cost = query_window(c, group, filters, ledger::Metric::kEffectiveCost);
  if (!cost) return Unexpected{cost.error()};

  std::map<std::string, KeyModel> keys;
  auto at = [&](const std::vector<std::string>& k) -> KeyModel& {
    KeyModel& km = keys[k[0] + "|" + k[1] + "|" + k[2] + "|" + k[3]];
    km.provider = k[0];
    km.model = k[1];
    km.key = k[2];
    km.project = k[3];
    return km;
  };
  for (const ledger::QueryRow& row : requests->rows) {
    KeyModel& km = at(row.keys);
    const bool hit = extra_says_cache_hit(row.keys[4]);
    km.requests += row.value;
    if (hit) km.hits += row.value;
    switch (extra_repeat(row.keys[4])) {
      case Repeat::kUntracked:
        km.uncounted += row.value;
        break;
      case Repeat::kFirst:
        km.counted += row.value;
        break;
      case Repeat::kRepeat:
        km.counted += row.value;
        km.repeats += row.value;
        if (!hit) km.repeats_missed += row.value;
        break;
    }
  }
  for (const ledger::QueryRow& row : cost->rows) {
    KeyModel& km = at(row.keys);
    const bool hit = extra_says_cache_hit(row.keys[4]);
    const Repeat repeat = extra_repeat(row.keys[4]);
    if (!hit) km.miss_cost += row.value;
    if (repeat == Repeat::kUntracked) {
      if (!hit) km.uncounted_miss_cost += row.value;
    } else {
      km.counted_cost += row.value;
      if (repeat == Repeat::kRepeat && !hit) km.repeats_missed_cost += row.value;
    }
  }

  // Per model, for keys without a count: the repeat rate counted on other keys, or where
  // nothing was counted, the cache-hit rate of keys that use the cache (the older measure).
  std::map<std::string, Measured> measured;
  for (const auto& [k, km] : keys)
    if (km.counted > 0) {
      Measured& m = measured[km.provider + "|" + km.model];
      if (!m.counted) m = Measured{0, 0, 0, true};
      m.requests += km.counted;
      m.repeats += km.repeats;
      ++m.keys;
    }
  for (const auto& [k, km] : keys)
    if (km.hits > 0) {
      Measured& m = measured[km.provider + "|" + km.model];
      if (m.counted) continue;
      m.requests += km.requests;
      m.repeats += km.hits;
      ++m.keys;
    }

  std::vector<Recommendation> out;
  for (const auto& [k, km] : keys) {
    if (km.requests <= 0 || km.model == "(none)") continue;
    Recommendation r;
    r.kind = "cache";
    r.id = "cache:" + km.key + "/" + km.model;
    if (km.project != "(none)") r.dimensions.push_back({"project", km.project});

    if (km.counted > 0) {
      // Counted by the gateway: the saving is the cost of the repeats the cache did not
      // answer, exactly; older records of the same key in the window take this key's rate.
      if (km.repeats_missed <= 0 || km.repeats_missed_cost <= 0) continue;
      const __int128 counted_miss_cost = km.counted_cost;  // hits cost nothing
      __int128 extrapolated = 0;
      if (km.uncounted_miss_cost > 0 && counted_miss_cost > 0)
        extrapolated =
            mul_div_round(km.uncounted_miss_cost, km.repeats_missed_cost, counted_miss_cost);
      const __int128 saving = km.repeats_missed_cost + extrapolated;
      const double rate = (double)km.repeats / (double)km.counted;
      const bool cache_on = km.hits > 0;
      r.subject = "virtual key " + km.key + " (" + km.model + ")";
      if (cache_on) {
        r.title = "Answer the " + count_text(km.repeats_missed) + " repeated " + km.model +
                  " requests the cache missed on key " + km.key;
        r.action =
            "The response cache is on for this key but answers only temperature-0 requests: send "
            "the header x-aifinops-cache: true on requests that may share an answer, or raise "
            "cache.ttl_s or cache.max_mb in gateway.yaml if entries expire or are pushed out first";
      } else {
        r.title = "Turn on the gateway's response cache for " + km.model + " on key " + km.key;
        r.action =
            "Enable the exact response cache (gateway.yaml cache: enabled: true); it answers "
            "temperature-0 requests, and others that send the header x-aifinops-cache: true";
      }
      r.monthly_saving = c.per_month(saving);
      r.confidence = Confidence::kMedium;
      r.assumptions.push_back(
          "a repeat is a request with the same scope, route, stream flag and body (white space "
          "aside) as one the gateway answered within its repeat window (cache.repeat_window_s); "
          "the cache would answer it only if the caller accepts the same answer again (some "
          "repeats at a temperature above 0 want a new one)");
      r.assumptions.push_back("a cache hit costs nothing upstream");
      if (extrapolated > 0)
        r.assumptions.push_back("records of this key written before the gateway counted repeats (" +
                                count_text(km.uncounted) + " requests, " +
                                money_text(km.uncounted_miss_cost) +
                                ") are assumed to repeat as the counted ones did");
      r.evidence.push_back({"requests counted on this key", count_text(km.counted)});
      r.evidence.push_back({"repeat rate", percent_text(rate) + " (" + count_text(km.repeats) +
                                               " repeats in " + count_text(km.counted) +
                                               " requests in window)"});
      if (cache_on) r.evidence.push_back({"cache hits", count_text(km.hits)});
      r.evidence.push_back({"repeats not answered from the cache",
                            count_text(km.repeats_missed) + " requests costing " +
                                money_text(km.repeats_missed_cost)});
      if (extrapolated > 0)
        r.evidence.push_back({"estimated on uncounted records", money_text(extrapolated)});
      r.evidence.push_back({"records", records_command(c, km)});
      out.push_back(std::move(r));
      continue;
    }

    // No count on this key's records: borrow the rate measured for the model elsewhere.
    if (km.hits > 0 || km.miss_cost <= 0) continue;
    auto it = measured.find(km.provider + "|" + km.model);
    if (it == measured.end() || it->second.requests <= 0) continue;
    const Measured& m = it->second;
    __int128 saving = mul_div_round(km.miss_cost, m.repeats, m.requests);
    if (saving <= 0) continue;
    double rate = (double)m.repeats / (double)m.requests;
    r.subject = "virtual key " + km.key + " (" + km.model + ")";
    r.title = "Turn on the gateway's response cache for " + km.model + " on key " + km.key;
    r.action = "Enable the exact response cache for this virtual key (gateway.yaml cache:)";
    r.monthly_saving = c.per_month(saving);
    r.confidence = Confidence::kLow;
    r.assumptions.push_back(
        std::string("this key's records carry no repeat count (written before the gateway "
                    "counted repeats, or with cache.repeat_window_s: 0), so duplicates cannot "
                    "be counted on this key: the repeat rate is the ") +
        (m.counted ? "repeat rate the gateway counted"
                   : "cache-hit rate the response cache measured") +
        " for the same model on other keys");
    r.assumptions.push_back("a cache hit costs nothing upstream");
    r.evidence.push_back({"requests on this key", count_text(km.requests)});
    r.evidence.push_back({"cost on this key in window", money_text(km.miss_cost)});
    r.evidence.push_back({"measured repeat rate for " + km.model,
                          percent_text(rate) + " (" + count_text(m.repeats) +
                              (m.counted ? " repeats in " : " cache hits in ") +
                              count_text(m.requests) + " requests on " + std::to_string(m.keys) +
                              " key(s))"});
    r.evidence.push_back({"records", records_command(c, km)});
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace aifinops::optimize
