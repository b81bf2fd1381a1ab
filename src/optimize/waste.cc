#include "optimize/waste.h"

#include <algorithm>
#include <map>

namespace aifinops::optimize {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
  return out;
}

bool has(const std::string& text, std::string_view word) { return text.find(word) != std::string::npos; }

/// What the infrequent-access tier saves on stored GB against the hot tier: list prices per
/// GB-month, first tier, US regions, as published in 2025.
struct TierMove {
  const char* tier;
  const char* to;
  int64_t saving_permille;  ///< 1 - cool / hot
  const char* source;
};
constexpr TierMove kTierMoves[] = {
    {"s3-standard", "S3 Standard-IA", 456,
     "https://aws.amazon.com/s3/pricing/ (Standard $0.023, Standard-IA $0.0125 per GB-month)"},
    {"azure-hot", "the Cool tier", 444,
     "https://azure.microsoft.com/pricing/details/storage/blobs/ (Hot $0.018, Cool $0.01 per GB-month, LRS)"},
    {"gcs-standard", "Nearline", 500,
     "https://cloud.google.com/storage/pricing (Standard $0.020, Nearline $0.010 per GB-month)"},
};

const TierMove* tier_move(const std::string& tier) {
  for (const TierMove& t : kTierMoves)
    if (tier == t.tier) return &t;
  return nullptr;
}

std::string records_command(const RecommendContext& c, const std::string& filters) {
  return "aifinops report --by day" + filters + " --from " + format_date(c.from()) + " --to " +
         format_date(c.as_of);
}

Result<void> cross_region(const RecommendContext& c, std::vector<Recommendation>& out) {
  std::vector<ledger::Dimension> group = {
      attribute_dimension(Attr::kProviderName), attribute_dimension(Attr::kServiceName),
      attribute_dimension(Attr::kSkuMeter), attribute_dimension(Attr::kChargeDescription),
      attribute_dimension(Attr::kRegionId), attribute_dimension(Attr::kProject)};
  auto rows = query_window(c, group, {attribute_filter(Attr::kChargeCategory, "Usage")},
                           ledger::Metric::kEffectiveCost);
  if (!rows) return Unexpected{rows.error()};
  auto transfer = [](const std::vector<std::string>& k) {
    return is_cross_region_transfer(k[2] == "(none)" ? "" : k[2], k[3] == "(none)" ? "" : k[3]);
  };
  // The quantities (for the evidence) only when some charge is a cross-region transfer.
  if (std::none_of(rows->rows.begin(), rows->rows.end(), [&](const ledger::QueryRow& row) {
        return row.value > 0 && transfer(row.keys);
      }))
    return {};
  auto gb = query_window(c, group, {attribute_filter(Attr::kChargeCategory, "Usage")},
                         ledger::Metric::kQuantity);
  if (!gb) return Unexpected{gb.error()};
  std::map<std::vector<std::string>, __int128> quantity;
  for (const ledger::QueryRow& row : gb->rows) quantity[row.keys] = row.value;
  for (const ledger::QueryRow& row : rows->rows) {
    const auto& k = row.keys;
    if (row.value <= 0 || !transfer(k)) continue;
    Recommendation r;
    r.kind = "waste";
    r.id = "waste:cross-region/" + k[0] + "/" + k[4] + "/" + k[2] + "/" + k[5];
    r.subject = "data transfer out of " + k[4] + " (" + k[0] + ")" + (k[5] == "(none)" ? "" : ", project " + k[5]);
    r.title = "Cut cross-region data transfer from " + k[4] + (k[5] == "(none)" ? "" : " for project " + k[5]);
    r.action = "Keep the data and the compute (training, inference, retrieval) that reads it in one "
               "region, or replicate the data once instead of reading it across regions";
    r.monthly_saving = c.per_month(row.value);
    r.confidence = Confidence::kMedium;
    r.assumptions.push_back("the transfer can be avoided entirely by co-locating data and compute");
    r.evidence.push_back({"meter", k[2] + (k[3] == "(none)" ? "" : " (" + k[3] + ")")});
    r.evidence.push_back({"cost in window", money_text(row.value)});
    r.evidence.push_back({"quantity in window", format_decimal_fixed(quantity[k], 2) + " GB"});
    r.evidence.push_back({"records", records_command(c, " --filter provider=\"" + k[0] + "\" --filter region=\"" +
                                                            k[4] + "\" --filter sku_meter=\"" + k[2] + "\"")});
    if (k[5] != "(none)") r.dimensions.push_back({"project", k[5]});
    out.push_back(std::move(r));
  }
  return {};
}

Result<void> hot_storage(const RecommendContext& c, std::vector<Recommendation>& out) {
  std::vector<ledger::Dimension> group = {
      attribute_dimension(Attr::kProviderName), attribute_dimension(Attr::kResourceId),
      attribute_dimension(Attr::kSkuMeter), attribute_dimension(Attr::kChargeDescription),
      attribute_dimension(Attr::kProject), attribute_dimension(Attr::kServiceName)};
  auto rows = query_window(c, group,
                           {attribute_filter(Attr::kChargeCategory, "Usage"),
                            attribute_filter(Attr::kServiceCategory, "Storage")},
                           ledger::Metric::kEffectiveCost);
  if (!rows) return Unexpected{rows.error()};
  struct Resource {
    std::string provider, resource, tier, meter, project;
    __int128 stored = 0, access = 0;
  };
  std::map<std::string, Resource> resources;
  for (const ledger::QueryRow& row : rows->rows) {
    const auto& k = row.keys;
    if (k[1] == "(none)") continue;  // without a resource id there is nothing to move
    Resource& r = resources[k[0] + "|" + k[1]];
    r.provider = k[0];
    r.resource = k[1];
    if (r.project.empty() || r.project == "(none)") r.project = k[4];
    std::string meter = k[2] == "(none)" ? "" : k[2], description = k[3] == "(none)" ? "" : k[3];
    std::string tier = hot_storage_tier(k[0], k[5] == "(none)" ? "" : k[5], meter, description);
    if (!tier.empty()) {
      r.tier = tier;
      r.meter = meter;
      r.stored += row.value;
    } else if (is_storage_access_charge(meter, description)) {
      r.access += row.value;
    }
  }
  for (const auto& [key, s] : resources) {
    const TierMove* move = tier_move(s.tier);
    // "No access": access charges below 1% of the storage charge over the window.
    if (move == nullptr || s.stored <= 0 || s.access * 100 >= s.stored) continue;
    __int128 saving = mul_div_round(s.stored, move->saving_permille, 1000);
    Recommendation r;
    r.kind = "waste";
    r.id = "waste:hot-storage/" + s.provider + "/" + s.resource;
    r.subject = s.resource + " (" + s.provider + ")";
    r.title = "Move " + s.resource + " from hot storage to " + move->to;
    r.action = "Set a lifecycle rule that moves " + s.resource + " to " + move->to +
               " (objects are kept; reads cost a retrieval fee)";
    r.monthly_saving = c.per_month(saving);
    r.confidence = Confidence::kMedium;
    r.assumptions.push_back("access stays as low as in the window (access charges under 1% of storage)");
    r.assumptions.push_back("the cooler tier's minimum storage duration and retrieval fees are small "
                            "next to the saving");
    r.evidence.push_back({"hot storage meter", s.meter});
    r.evidence.push_back({"storage cost in window", money_text(s.stored)});
    r.evidence.push_back({"access cost in window", money_text(s.access)});
    r.evidence.push_back({"tier price difference", format_decimal_fixed((__int128)move->saving_permille * 100'000'000, 1) +
                                                       "% (" + move->source + ")"});
    r.evidence.push_back({"records", records_command(c, " --filter resource=\"" + s.resource + "\"")});
    if (s.project != "(none)") r.dimensions.push_back({"project", s.project});
    out.push_back(std::move(r));
  }
  return {};
}

/// Endpoints and deployments billed by the hour (or month) in the AI and Machine Learning
/// category, with no tokens and no requests on the same resource id anywhere in the ledger.
Result<void> idle_endpoints(const RecommendContext& c, std::vector<Recommendation>& out) {
  std::vector<ledger::Dimension> group = {
      attribute_dimension(Attr::kProviderName), attribute_dimension(Attr::kResourceId),
      attribute_dimension(Attr::kResourceName), attribute_dimension(Attr::kServiceCategory),
      attribute_dimension(Attr::kConsumedUnit), attribute_dimension(Attr::kProject)};
  std::vector<ledger::Filter> usage = {attribute_filter(Attr::kChargeCategory, "Usage")};
  auto cost = query_window(c, group, usage, ledger::Metric::kEffectiveCost);
  if (!cost) return Unexpected{cost.error()};
  struct Endpoint {
    std::string provider, id, name, project;
    __int128 cost = 0;
  };
  std::map<std::string, Endpoint> endpoints;
  for (const ledger::QueryRow& row : cost->rows) {
    const auto& k = row.keys;
    std::string unit = lower(k[4]);
    bool hourly = has(unit, "hour") || has(unit, "month");
    if (k[3] != "AI and Machine Learning" || !hourly || k[1] == "(none)" || row.value <= 0) continue;
    Endpoint& e = endpoints[k[0] + "|" + k[1]];
    e.provider = k[0];
    e.id = k[1];
    e.name = k[2] == "(none)" ? "" : k[2];
    if (e.project.empty() || e.project == "(none)") e.project = k[5];
    e.cost += row.value;
  }
  // No endpoint billed by the hour: the traffic queries below are not needed.
  if (endpoints.empty()) return {};
  // Traffic per resource id and per resource name (a deployment's name is often the model
  // name the gateway records): tokens and requests over every record in the window.
  std::vector<ledger::Dimension> by_resource = {attribute_dimension(Attr::kResourceId)};
  std::vector<ledger::Dimension> by_model = {attribute_dimension(Attr::kModel)};
  std::map<std::string, __int128> traffic_by_id, traffic_by_model;
  for (ledger::Metric m : {ledger::Metric::kTokens, ledger::Metric::kRequests}) {
    auto a = query_window(c, by_resource, {}, m);
    if (!a) return Unexpected{a.error()};
    for (const ledger::QueryRow& row : a->rows) traffic_by_id[row.keys[0]] += row.value;
    auto b = query_window(c, by_model, {}, m);
    if (!b) return Unexpected{b.error()};
    for (const ledger::QueryRow& row : b->rows) traffic_by_model[row.keys[0]] += row.value;
  }
  for (const auto& [key, e] : endpoints) {
    if (traffic_by_id[e.id] > 0 || (!e.name.empty() && traffic_by_model[e.name] > 0)) continue;
    Recommendation r;
    r.kind = "waste";
    r.id = "waste:idle-endpoint/" + e.provider + "/" + e.id;
    r.subject = (e.name.empty() ? e.id : e.name) + " (" + e.provider + ")";
    r.title = "Delete or scale to zero the model endpoint " + (e.name.empty() ? e.id : e.name) +
              ": it cost money and served no traffic";
    r.action = "Delete the endpoint or deployment, or set it to scale to zero when idle";
    r.monthly_saving = c.per_month(e.cost);
    r.confidence = Confidence::kMedium;
    r.assumptions.push_back(
        "traffic is metered in this ledger (gateway, usage API or OTLP records naming the "
        "resource id or deployment name); traffic metered nowhere would be missed");
    r.evidence.push_back({"cost in window", money_text(e.cost)});
    r.evidence.push_back({"tokens and requests on the resource in window", "0"});
    r.evidence.push_back({"records", records_command(c, " --filter resource=\"" + e.id + "\"")});
    if (e.project != "(none)") r.dimensions.push_back({"project", e.project});
    out.push_back(std::move(r));
  }
  return {};
}

}  // namespace

bool is_cross_region_transfer(std::string_view meter, std::string_view description) {
  std::string text = lower(meter) + " | " + lower(description);
  return has(text, "inter-region") || has(text, "interregion") || has(text, "inter region") ||
         has(text, "cross-region") || has(text, "cross region") || has(text, "region to region") ||
         has(text, "between regions") || has(text, "inter-continental") ||
         has(text, "intercontinental") || has(text, "inter zone") || has(text, "-awsus") ||
         (has(text, "egress") && has(text, "between"));
}

std::string hot_storage_tier(std::string_view provider, std::string_view service,
                             std::string_view meter, std::string_view description) {
  std::string text = lower(meter) + " | " + lower(description);
  if (has(text, "request") || has(text, "operation") || has(text, "retrieval")) return "";
  const std::string p = provider_key(provider), svc = lower(service);
  if (p == "aws") {
    bool s3 = has(svc, "s3") || has(svc, "simple storage") || has(text, "s3 ");
    if (s3 && (has(text, "standard") || has(text, "timedstorage-bytehrs")) && !has(text, "infrequent") &&
        !has(text, "-ia") && !has(text, "glacier") && !has(text, "sia") && !has(text, "one zone"))
      return "s3-standard";
    return "";
  }
  if (p == "azure") return has(text, "hot") && (has(text, "data stored") || has(text, "lrs") || has(text, "grs")) ? "azure-hot" : "";
  if (p == "gcp") return has(text, "standard storage") ? "gcs-standard" : "";
  return "";
}

bool is_storage_access_charge(std::string_view meter, std::string_view description) {
  std::string text = lower(meter) + " | " + lower(description);
  return has(text, "request") || has(text, "operation") || has(text, "retrieval") ||
         has(text, "read") || has(text, "get ") || has(text, "class a") || has(text, "class b");
}

Result<std::vector<Recommendation>> recommend_waste(const RecommendContext& context) {
  std::vector<Recommendation> out;
  if (auto r = cross_region(context, out); !r) return Unexpected{r.error()};
  if (auto r = hot_storage(context, out); !r) return Unexpected{r.error()};
  if (auto r = idle_endpoints(context, out); !r) return Unexpected{r.error()};
  return out;
}

}  // namespace aifinops::optimize
