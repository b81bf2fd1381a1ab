#include <cstdio>
#include <string>

#include "ledger/ledger.h"

namespace aifinops::ledger {
namespace {

constexpr std::string_view kMetricNames[] = {
    "effective_cost", "billed_cost", "list_cost", "contracted_cost", "cache_savings", "quantity", "tokens",
    "input_tokens", "output_tokens", "cached_tokens", "requests", "gpu_hours",
    "gpu_utilization", "gpu_memory_peak_mib", "energy_kwh", "co2e_kg", "gpu_observed_hours"};
static_assert(std::size(kMetricNames) == static_cast<size_t>(Metric::kCount));

struct Alias {
  std::string_view name;
  Attr attribute;
};
// Short names users type, beside every attribute's own name.
constexpr Alias kAliases[] = {
    {"provider", Attr::kProviderName},       {"publisher", Attr::kPublisherName},
    {"service", Attr::kServiceName},         {"region", Attr::kRegionId},
    {"resource", Attr::kResourceId},         {"sku", Attr::kSkuId},
    {"billing_account", Attr::kBillingAccountId}, {"sub_account", Attr::kSubAccountId},
    {"currency", Attr::kBillingCurrency},    {"invoice_issuer", Attr::kInvoiceIssuerName},
    {"commitment_discount", Attr::kCommitmentDiscountId}, {"gpu", Attr::kGpuType},
};

}  // namespace

std::string Fingerprint::hex() const {
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", (unsigned long long)high, (unsigned long long)low);
  return buf;
}

bool metric_from_name(std::string_view name, Metric& out) {
  for (size_t i = 0; i < std::size(kMetricNames); ++i) {
    if (kMetricNames[i] == name) {
      out = static_cast<Metric>(i);
      return true;
    }
  }
  return false;
}

std::string_view metric_name(Metric m) { return kMetricNames[static_cast<size_t>(m)]; }

bool metric_is_money(Metric m) { return m <= Metric::kCacheSavings; }

bool metric_is_decimal(Metric m) {
  return metric_is_money(m) || m == Metric::kQuantity || m == Metric::kGpuHours ||
         m == Metric::kGpuUtilization || m == Metric::kEnergyKwh || m == Metric::kCo2eKg ||
         m == Metric::kGpuObservedHours;
}

bool metric_is_ratio(Metric m) { return m == Metric::kGpuUtilization; }

bool metric_is_peak(Metric m) { return m == Metric::kGpuMemoryPeakMib; }

Result<Dimension> parse_dimension(std::string_view name) {
  Dimension d;
  d.label = std::string(name);
  if (name.rfind("tag:", 0) == 0) {
    if (name.size() == 4) return make_error(ErrorCode::kInvalidArgument, "dimension \"tag:\" needs a key, e.g. tag:Owner");
    d.kind = Dimension::Kind::kTag;
    d.tag_keys = {std::string(name.substr(4))};
    return d;
  }
  constexpr std::pair<std::string_view, Grain> kTimes[] = {
      {"hour", Grain::kHour}, {"day", Grain::kDay}, {"week", Grain::kWeek}, {"month", Grain::kMonth}};
  for (auto& [time_name, grain] : kTimes) {
    if (name == time_name) {
      d.kind = Dimension::Kind::kTime;
      d.grain = grain;
      return d;
    }
  }
  for (const Alias& a : kAliases) {
    if (a.name == name) {
      d.attribute = a.attribute;
      return d;
    }
  }
  Attr a = attribute_from_name(name);
  if (a != Attr::kCount && a != Attr::kTags && a != Attr::kExtra) {
    d.attribute = a;
    return d;
  }
  std::string allowed =
      "provider, service, service_category, region, resource, resource_type, sku, charge_category, "
      "billing_account, sub_account, model, currency, team, project, environment, cost_center, "
      "workload, usage_type, purpose, criticality, shutdown_eligible, tag:KEY, hour, day, week, "
      "month (or any attribute name, see docs/cli.md)";
  return make_error(ErrorCode::kInvalidArgument,
                    "unknown dimension \"" + std::string(name) + "\"; allowed: " + allowed);
}

}  // namespace aifinops::ledger
