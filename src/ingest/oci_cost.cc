// Oracle Cloud Infrastructure cost reports (the CSV files under reports/cost-csv) to FOCUS:
// interval, my cost, service, region, compartment, corrections and defined/free-form tags.
#include <strings.h>

#include "ingest/native_export.h"

namespace aifinops::ingest {
namespace {

bool equals_nocase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

class OciCostMapper final : public NativeRowMapper {
 public:
  OciCostMapper(const NativeHeader& h, const FocusMappings& mappings)
      : mappings_(mappings), names_(h.names()) {
    start_ = h.find("lineItem/intervalUsageStart");
    end_ = h.find("lineItem/intervalUsageEnd");
    cost_ = h.find("cost/myCost");
    unit_price_ = h.find("cost/unitPrice");
    quantity_ = h.find("usage/billedQuantity");
    currency_ = h.find("cost/currencyCode");
    service_ = h.find("product/service");
    description_ = h.find("product/Description");
    sku_ = h.find("cost/productSku");
    region_ = h.find("product/region");
    domain_ = h.find("product/availabilityDomain");
    resource_ = h.find("product/resourceId");
    compartment_ = h.find("product/compartmentId");
    compartment_name_ = h.find("product/compartmentName");
    tenant_ = h.find("lineItem/tenantId");
    subscription_ = h.find("cost/subscriptionId");
    unit_ = h.find_any({"cost/skuUnitDescription", "cost/billingUnitReadable"});
    correction_ = h.find("lineItem/isCorrection");
    reference_ = h.find("lineItem/referenceNo");
    for (size_t i = 0; i < names_.size(); ++i)
      if (names_[i].size() > 5 && strncasecmp(names_[i].c_str(), "tags/", 5) == 0)
        tag_columns_.push_back(i);
  }

  bool ready(std::string& missing) const {
    if (start_ < 0)
      missing = "lineItem/intervalUsageStart";
    else if (cost_ < 0)
      missing = "cost/myCost";
    return missing.empty();
  }

  std::string label() const override { return "OCI cost report"; }

  bool map(const std::vector<std::string_view>& f, Record& r, RowProblem& problem) override {
    r = Record{};
    UsageFacts& facts = r.facts;
    auto start = parse_native_time(field(f, start_));
    if (!start)
      return bad_value(problem, names_[(size_t)start_], field(f, start_), "is not a date-time");
    facts.charge_period_start = *start;
    auto end = parse_native_time(field(f, end_));
    facts.charge_period_end = end ? *end : *start;
    Money cost, unit_price;
    Decimal quantity;
    bool has_cost = false;
    if (!parse_native_decimal(f[(size_t)cost_], cost, &has_cost))
      return bad_value(problem, names_[(size_t)cost_], f[(size_t)cost_], "is not a decimal number");
    if (!has_cost)
      return bad_value(problem, names_[(size_t)cost_], f[(size_t)cost_],
                       "is empty: the row has no cost");
    if (quantity_ >= 0 && !parse_native_decimal(f[(size_t)quantity_], quantity))
      return bad_value(problem, names_[(size_t)quantity_], f[(size_t)quantity_],
                       "is not a decimal number");
    if (unit_price_ >= 0 && !parse_native_decimal(f[(size_t)unit_price_], unit_price))
      return bad_value(problem, names_[(size_t)unit_price_], f[(size_t)unit_price_],
                       "is not a decimal number");

    // The report gives the tenancy's own cost only: no public list price, no amortisation.
    facts.billed_cost = cost;
    facts.effective_cost = cost;
    facts.contracted_cost = cost;
    facts.list_cost = cost;
    facts.consumed_quantity = quantity;
    facts.pricing_quantity = quantity;

    std::string_view correction = field(f, correction_);
    bool is_correction =
        equals_nocase(correction, "true") || correction == "1" || equals_nocase(correction, "Y");
    if (is_correction) {
      r[Attr::kChargeCategory] = cost.nanos < 0 ? "Credit" : "Adjustment";
      r[Attr::kChargeClass] = "Correction";
    } else {
      r[Attr::kChargeCategory] = "Usage";
      r[Attr::kChargeFrequency] = "Usage-Based";
    }
    r[Attr::kProviderName] = "Oracle";
    r[Attr::kPublisherName] = "Oracle";
    r[Attr::kInvoiceIssuerName] = "Oracle";
    r[Attr::kBillingAccountId] = field(f, tenant_);
    r[Attr::kSubAccountId] = field(f, compartment_);
    r[Attr::kSubAccountName] = field(f, compartment_name_);
    r[Attr::kBillingCurrency] = field(f, currency_);
    std::string_view service = field(f, service_);
    r[Attr::kServiceName] = service;
    r[Attr::kServiceCategory] = mappings_.oci_category(service);
    std::string_view description = field(f, description_);
    r[Attr::kChargeDescription] = description;
    r[Attr::kSkuId] = field(f, sku_);
    r[Attr::kSkuMeter] = description;
    r[Attr::kRegionId] = field(f, region_);
    r[Attr::kRegionName] = field(f, region_);
    r[Attr::kAvailabilityZone] = field(f, domain_);
    std::string_view resource = field(f, resource_);
    r[Attr::kResourceId] = resource;
    std::string_view unit = field(f, unit_);
    r[Attr::kPricingUnit] = unit;
    r[Attr::kConsumedUnit] = unit;
    r[Attr::kPricingCategory] = "Standard";

    // Tags: "tags/Oracle-Tags.CreatedBy" (namespace.key, defined tags) and "tags/team"
    // (free-form): the namespace is dropped so that policies see the key.
    if (!tag_columns_.empty()) {
      std::string tags = "{";
      for (size_t i : tag_columns_) {
        if (f[i].empty()) continue;
        std::string_view key = std::string_view(names_[i]).substr(5);
        if (size_t dot = key.rfind('.'); dot != std::string_view::npos) key.remove_prefix(dot + 1);
        add_json_member(tags, key, f[i]);
      }
      tags.push_back('}');
      if (tags != "{}") r[Attr::kTags] = std::move(tags);
    }

    // GPU shapes: "Compute - GPU Standard - A10", "GPU3 - Standard" (V100), "BM.GPU.H100.8".
    if (contains_nocase(description, "GPU")) {
      std::string gpu = gpu_type_from_text(description);
      if (gpu.empty() && contains_nocase(description, "GPU4")) gpu = "A100";
      if (gpu.empty() && contains_nocase(description, "GPU3")) gpu = "V100";
      if (!gpu.empty()) r[Attr::kGpuType] = gpu;
    }

    std::string extra = "{";
    if (std::string_view s = field(f, subscription_); !s.empty())
      add_json_member(extra, "x_SubscriptionId", s);
    if (is_correction)
      if (std::string_view ref = field(f, reference_); !ref.empty())
        add_json_member(extra, "x_ReferenceNo", ref);
    extra.push_back('}');
    if (extra != "{}") r[Attr::kExtra] = std::move(extra);
    return true;
  }

 private:
  const FocusMappings& mappings_;
  std::vector<std::string> names_;
  int start_, end_, cost_, unit_price_, quantity_, currency_, service_, description_, sku_, region_,
      domain_, resource_, compartment_, compartment_name_, tenant_, subscription_, unit_,
      correction_, reference_;
  std::vector<size_t> tag_columns_;
};

}  // namespace

Result<std::unique_ptr<NativeRowMapper>> make_oci_cost_mapper(const NativeHeader& header,
                                                              const std::string& path,
                                                              const FocusMappings& mappings,
                                                              const pricing::Catalog*) {
  return ready_mapper(std::make_unique<OciCostMapper>(header, mappings), path,
                      "an OCI cost report");
}

}  // namespace aifinops::ingest
