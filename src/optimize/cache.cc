#include "optimize/cache.h"

#include <map>

namespace aifinops::optimize {
namespace {

/// The gateway writes {"upstream":..,"status":..,"cache_hit":"true"|"false"} in Extra.
bool extra_says_cache_hit(std::string_view extra) {
  return extra.find("\"cache_hit\":\"true\"") != std::string_view::npos;
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

  struct KeyModel {
    std::string provider, model, key, project;
    __int128 requests = 0, hits = 0, miss_cost = 0;
  };
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
    km.requests += row.value;
    if (extra_says_cache_hit(row.keys[4])) km.hits += row.value;
  }
  for (const ledger::QueryRow& row : cost->rows)
    if (!extra_says_cache_hit(row.keys[4])) at(row.keys).miss_cost += row.value;

  // Per model: the repeat rate the response cache measured on keys that use it.
  struct Measured {
    __int128 requests = 0, hits = 0;
    int keys = 0;
  };
  std::map<std::string, Measured> measured;
  for (const auto& [k, km] : keys)
    if (km.hits > 0) {
      Measured& m = measured[km.provider + "|" + km.model];
      m.requests += km.requests;
      m.hits += km.hits;
      ++m.keys;
    }
  std::vector<Recommendation> out;
  for (const auto& [k, km] : keys) {
    if (km.hits > 0 || km.requests <= 0 || km.miss_cost <= 0 || km.model == "(none)") continue;
    auto it = measured.find(km.provider + "|" + km.model);
    if (it == measured.end() || it->second.requests <= 0) continue;
    const Measured& m = it->second;
    __int128 saving = mul_div_round(km.miss_cost, m.hits, m.requests);
    if (saving <= 0) continue;
    double rate = (double)m.hits / (double)m.requests;
    Recommendation r;
    r.kind = "cache";
    r.id = "cache:" + km.key + "/" + km.model;
    r.subject = "virtual key " + km.key + " (" + km.model + ")";
    r.title = "Turn on the gateway's response cache for " + km.model + " on key " + km.key;
    r.action = "Enable the exact response cache for this virtual key (gateway.yaml cache:)";
    r.monthly_saving = c.per_month(saving);
    r.confidence = Confidence::kLow;
    r.assumptions.push_back(
        "gateway records carry no request hash, so duplicates cannot be counted on this key: the "
        "repeat rate is the cache-hit rate the response cache measured for the same model on "
        "other keys");
    r.assumptions.push_back("a cache hit costs nothing upstream");
    r.evidence.push_back({"requests on this key", std::to_string((long long)km.requests)});
    r.evidence.push_back({"cost on this key in window", money_text(km.miss_cost)});
    r.evidence.push_back({"measured repeat rate for " + km.model,
                          percent_text(rate) + " (" + std::to_string((long long)m.hits) + " cache hits in " +
                              std::to_string((long long)m.requests) + " requests on " +
                              std::to_string(m.keys) + " key(s))"});
    r.evidence.push_back({"records", "aifinops report --by day --metric requests --filter resource=\"" +
                                         km.key + "\" --filter model=\"" + km.model + "\" --from " +
                                         format_date(c.from()) + " --to " + format_date(c.as_of)});
    if (km.project != "(none)") r.dimensions.push_back({"project", km.project});
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace aifinops::optimize
