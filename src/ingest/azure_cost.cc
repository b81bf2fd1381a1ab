// Azure cost details (EA and MCA, actual or amortized exports) to FOCUS, as Microsoft's
// FOCUS conversion maps them: charge type, pricing model, benefits, units and services
// from Microsoft's open data tables.
#include <strings.h>

#include <cstdint>

#include "ingest/native_export.h"

namespace aifinops::ingest {
namespace {

bool equals_nocase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

/// "microsoft.storage/storageaccounts" from an ARM id ".../providers/Microsoft.Storage/
/// storageAccounts/name" (nested types: "microsoft.sql/servers/databases").
std::string resource_type_of(std::string_view id) {
  size_t at = std::string_view::npos;
  for (size_t i = id.find("/providers/"); i != std::string_view::npos;
       i = id.find("/providers/", i + 1))
    at = i;
  if (at == std::string_view::npos) {
    size_t lower = to_lower(id).rfind("/providers/");
    if (lower == std::string::npos) return {};
    at = lower;
  }
  std::string_view rest = id.substr(at + 11);
  std::string out;
  size_t part = 0;
  for (size_t i = 0; i <= rest.size(); ++part) {
    size_t j = rest.find('/', i);
    if (j == std::string_view::npos) j = rest.size();
    // namespace, type, name, type, name, ...: keep the namespace and the types.
    if (part == 0 || part % 2 == 1) {
      if (!out.empty()) out.push_back('/');
      out += to_lower(rest.substr(i, j - i));
    }
    i = j + 1;
  }
  return out;
}

class AzureCostMapper final : public NativeRowMapper {
 public:
  AzureCostMapper(const NativeHeader& h, const FocusMappings& mappings,
                  const pricing::Catalog* catalog)
      : mappings_(mappings), catalog_(catalog), names_(h.names()) {
    mca_ = h.find("CostInBillingCurrency") >= 0;
    date_ = h.find_any({"Date", "UsageDate"});
    cost_ = h.find_any({"CostInBillingCurrency", "Cost", "PreTaxCost"});
    currency_ = h.find_any({"BillingCurrencyCode", "BillingCurrency", "Currency"});
    payg_ = h.find("PayGPrice");
    unit_price_ = h.find("UnitPrice");
    effective_price_ = h.find("EffectivePrice");
    quantity_ = h.find("Quantity");
    unit_ = h.find("UnitOfMeasure");
    meter_category_ = h.find("MeterCategory");
    meter_subcategory_ = h.find("MeterSubCategory");
    meter_name_ = h.find("MeterName");
    meter_id_ = h.find("MeterId");
    meter_region_ = h.find("MeterRegion");
    product_ = h.find_any({"ProductName", "Product"});
    product_id_ = h.find_any({"ProductId", "PartNumber"});
    resource_id_ = h.find_any({"ResourceId", "InstanceId", "InstanceName"});
    resource_name_ = h.find("ResourceName");
    location_ = h.find("ResourceLocation");
    resource_group_ = h.find("ResourceGroup");
    consumed_ = h.find("ConsumedService");
    subscription_ = h.find_any({"SubscriptionId", "SubscriptionGuid"});
    subscription_name_ = h.find("SubscriptionName");
    account_ = h.find("BillingAccountId");
    account_name_ = h.find("BillingAccountName");
    invoice_ = h.find("InvoiceId");
    period_start_ = h.find("BillingPeriodStartDate");
    period_end_ = h.find("BillingPeriodEndDate");
    tags_ = h.find("Tags");
    charge_type_ = h.find("ChargeType");
    pricing_model_ = h.find("PricingModel");
    benefit_id_ = h.find_any({"benefitId", "ReservationId"});
    reservation_id_ = h.find("ReservationId");
    benefit_name_ = h.find_any({"benefitName", "ReservationName"});
    reservation_name_ = h.find("ReservationName");
    frequency_ = h.find("Frequency");
    publisher_ = h.find("PublisherName");
    zone_ = h.find("AvailabilityZone");
  }

  bool ready(std::string& missing) const {
    if (date_ < 0)
      missing = "Date";
    else if (cost_ < 0)
      missing = "CostInBillingCurrency (or Cost)";
    return missing.empty();
  }

  std::string label() const override {
    return mca_ ? "Azure cost details (MCA columns)" : "Azure cost details (EA columns)";
  }

  bool map(const std::vector<std::string_view>& f, Record& r, RowProblem& problem) override {
    r = Record{};
    UsageFacts& facts = r.facts;
    auto day = parse_native_time(field(f, date_));
    if (!day) return bad_value(problem, names_[(size_t)date_], field(f, date_), "is not a date");
    facts.charge_period_start = *day;
    facts.charge_period_end = *day + 86400;  // a row is one day of usage

    auto number = [&](int index, Decimal& out, bool* present = nullptr) {
      if (index < 0) {
        out = Decimal{};
        if (present != nullptr) *present = false;
        return true;
      }
      if (parse_native_decimal(f[(size_t)index], out, present)) return true;
      return bad_value(problem, names_[(size_t)index], f[(size_t)index], "is not a decimal number");
    };
    Money cost, payg, unit_price, effective_price;
    Decimal quantity;
    bool has_cost = false, has_payg = false, has_unit_price = false, has_quantity = false;
    if (!number(cost_, cost, &has_cost) || !number(payg_, payg, &has_payg) ||
        !number(unit_price_, unit_price, &has_unit_price) ||
        !number(effective_price_, effective_price) || !number(quantity_, quantity, &has_quantity))
      return false;
    if (!has_cost)
      return bad_value(problem, names_[(size_t)cost_], field(f, cost_),
                       "is empty: the row has no cost");

    std::string_view charge_type = field(f, charge_type_);
    std::string_view model = field(f, pricing_model_);
    bool reservation = equals_nocase(model, "Reservation");
    bool savings_plan = equals_nocase(model, "SavingsPlan") || equals_nocase(model, "Savings Plan");
    bool commitment = reservation || savings_plan;
    bool purchase = equals_nocase(charge_type, "Purchase") || equals_nocase(charge_type, "Refund");
    bool unused = equals_nocase(charge_type, "UnusedReservation") ||
                  equals_nocase(charge_type, "UnusedSavingsPlan");

    if (charge_type.empty() || equals_nocase(charge_type, "Usage") || unused)
      r[Attr::kChargeCategory] = "Usage";
    else if (purchase)
      r[Attr::kChargeCategory] = "Purchase";
    else if (equals_nocase(charge_type, "Tax"))
      r[Attr::kChargeCategory] = "Tax";
    else if (equals_nocase(charge_type, "Credit"))
      r[Attr::kChargeCategory] = "Credit";
    else
      r[Attr::kChargeCategory] = "Adjustment";  // RoundingAdjustment and newer types
    if (equals_nocase(charge_type, "Refund")) r[Attr::kChargeClass] = "Correction";

    facts.billed_cost = cost;
    // EffectiveCost: a commitment's purchase is spread over the usage it covers, so its
    // own effective cost is zero; covered usage in an actual-cost export has no cost but
    // an effective price.
    auto too_large = [&](int column) {
      return bad_value(problem, names_[(size_t)column], f[(size_t)column],
                       "× Quantity is too large: the amount does not fit");
    };
    if (purchase && commitment)
      facts.effective_cost = Money{};
    else if (commitment && cost.nanos == 0 && !purchase) {
      if (!times(effective_price, quantity, facts.effective_cost))
        return too_large(effective_price_);
    } else {
      facts.effective_cost = cost;
    }
    // ListCost: pay-as-you-go price × quantity; ContractedCost: the negotiated unit price.
    facts.list_cost = facts.contracted_cost = cost;
    if (has_payg && has_quantity && payg.nanos != 0 && !times(payg, quantity, facts.list_cost))
      return too_large(payg_);
    if (has_unit_price && has_quantity && unit_price.nanos != 0 &&
        !times(unit_price, quantity, facts.contracted_cost))
      return too_large(unit_price_);
    if (purchase) facts.list_cost = facts.contracted_cost = cost;

    std::string_view unit = field(f, unit_);
    const AzurePricingUnit* pricing_unit = unit.empty() ? nullptr : mappings_.azure_unit(unit);
    facts.pricing_quantity = quantity;
    facts.consumed_quantity = quantity;
    __int128 blocks =
        pricing_unit != nullptr ? (__int128)quantity.nanos * pricing_unit->block_size : 0;
    if (blocks > INT64_MAX || blocks < INT64_MIN) pricing_unit = nullptr;  // keep the export's unit
    if (pricing_unit != nullptr) {
      facts.consumed_quantity = Decimal{(int64_t)blocks};
      r[Attr::kPricingUnit] = pricing_unit->unit;
      r[Attr::kConsumedUnit] = pricing_unit->unit;
    } else {
      r[Attr::kPricingUnit] = unit;
      r[Attr::kConsumedUnit] = unit;
    }

    r[Attr::kProviderName] = "Microsoft";
    std::string_view publisher = field(f, publisher_);
    r[Attr::kPublisherName] = publisher.empty() ? "Microsoft" : std::string(publisher);
    r[Attr::kInvoiceIssuerName] = "Microsoft";
    r[Attr::kBillingAccountId] = field(f, account_);
    r[Attr::kBillingAccountName] = field(f, account_name_);
    r[Attr::kSubAccountId] = field(f, subscription_);
    r[Attr::kSubAccountName] = field(f, subscription_name_);
    r[Attr::kInvoiceId] = field(f, invoice_);
    r[Attr::kBillingCurrency] = field(f, currency_);
    if (auto t = parse_native_time(field(f, period_start_)))
      r[Attr::kBillingPeriodStart] = format_timestamp(*t);
    if (auto t = parse_native_time(field(f, period_end_)))
      r[Attr::kBillingPeriodEnd] = format_timestamp(*t + 86400);
    std::string_view frequency = field(f, frequency_);
    if (equals_nocase(frequency, "UsageBased"))
      r[Attr::kChargeFrequency] = "Usage-Based";
    else if (equals_nocase(frequency, "Recurring"))
      r[Attr::kChargeFrequency] = "Recurring";
    else if (equals_nocase(frequency, "OneTime"))
      r[Attr::kChargeFrequency] = "One-Time";
    r[Attr::kChargeDescription] = field(f, product_);

    std::string_view resource_id = field(f, resource_id_);
    std::string type = resource_type_of(resource_id);
    std::string_view consumed = field(f, consumed_);
    std::string_view meter_category = field(f, meter_category_);
    const AzureService* service = mappings_.azure_service(type, consumed);
    if (service != nullptr) {
      r[Attr::kServiceName] = service->service_name;
      r[Attr::kServiceCategory] = service->category;
      r[Attr::kServiceSubcategory] = service->subcategory;
    } else {
      r[Attr::kServiceName] = meter_category;
      std::string_view category = mappings_.azure_category(consumed);
      r[Attr::kServiceCategory] = category.empty() ? std::string_view("Other") : category;
    }
    r[Attr::kResourceId] = resource_id;
    std::string_view name = field(f, resource_name_);
    if (name.empty() && !resource_id.empty() && resource_id.back() != '/')
      name = resource_id.substr(resource_id.rfind('/') + 1);
    r[Attr::kResourceName] = name;
    r[Attr::kResourceType] = type;
    std::string region_id, region_name;
    std::string_view location = field(f, location_);
    if (mappings_.azure_region(location, region_id, region_name) ||
        mappings_.azure_region(field(f, meter_region_), region_id, region_name)) {
      r[Attr::kRegionId] = region_id;
      r[Attr::kRegionName] = region_name;
    } else {
      r[Attr::kRegionId] = to_lower(location);
      r[Attr::kRegionName] = location;
    }
    r[Attr::kAvailabilityZone] = field(f, zone_);
    r[Attr::kSkuId] = field(f, product_id_);
    r[Attr::kSkuPriceId] = field(f, meter_id_);
    std::string_view meter_name = field(f, meter_name_);
    r[Attr::kSkuMeter] = meter_name;

    // Commitments: reservations and savings plans (benefitId in newer exports).
    std::string_view benefit = field(f, benefit_id_);
    if (benefit.empty()) benefit = field(f, reservation_id_);
    if (commitment && !benefit.empty()) {
      r[Attr::kCommitmentDiscountId] = benefit;
      std::string_view benefit_name = field(f, benefit_name_);
      if (benefit_name.empty()) benefit_name = field(f, reservation_name_);
      r[Attr::kCommitmentDiscountName] = benefit_name;
      r[Attr::kCommitmentDiscountType] = reservation ? "Reservation" : "Savings Plan";
      r[Attr::kCommitmentDiscountCategory] = reservation ? "Usage" : "Spend";
      if (unused)
        r[Attr::kCommitmentDiscountStatus] = "Unused";
      else if (!purchase)
        r[Attr::kCommitmentDiscountStatus] = "Used";
    }
    if (commitment)
      r[Attr::kPricingCategory] = "Committed";
    else if (equals_nocase(model, "Spot"))
      r[Attr::kPricingCategory] = "Dynamic";
    else if (equals_nocase(model, "OnDemand"))
      r[Attr::kPricingCategory] = "Standard";

    r[Attr::kTags] = tags_to_json(field(f, tags_));

    // AI: Azure OpenAI meters name the model and the token direction.
    std::string_view subcategory = field(f, meter_subcategory_);
    if (contains_nocase(subcategory, "OpenAI") || contains_nocase(meter_category, "OpenAI") ||
        contains_nocase(meter_category, "Foundry Models") ||
        (contains_nocase(meter_category, "Cognitive Services") &&
         contains_nocase(meter_name, "token"))) {
      ModelMeter meter = azure_openai_model_meter(meter_name);
      if (pricing_unit != nullptr && pricing_unit->block_size > 1)
        apply_model_meter(r, meter, facts.consumed_quantity, 1);
      else
        apply_model_meter(r, meter, quantity, tokens_per_unit_of(unit));
    }
    // GPUs: VM meters ("NC24ads A100 v4", sub-category "NCadsA100v4 Series").
    if (equals_nocase(meter_category, "Virtual Machines") ||
        contains_nocase(meter_category, "Machine Learning")) {
      std::string text = std::string(meter_name) + " " + std::string(subcategory);
      std::string sku = "Standard_" + std::string(meter_name);
      for (char& c : sku)
        if (c == ' ') c = '_';
      bool hourly = contains_nocase(unit, "hour");
      apply_gpu(r, text, meter_name.empty() ? std::string_view() : std::string_view(sku), catalog_,
                hourly);
    }

    std::string extra = "{";
    if (!meter_category.empty()) add_json_member(extra, "x_MeterCategory", meter_category);
    if (!subcategory.empty()) add_json_member(extra, "x_MeterSubCategory", subcategory);
    if (!charge_type.empty()) add_json_member(extra, "x_ChargeType", charge_type);
    if (!model.empty()) add_json_member(extra, "x_PricingModel", model);
    if (std::string_view rg = field(f, resource_group_); !rg.empty())
      add_json_member(extra, "x_ResourceGroup", rg);
    extra.push_back('}');
    if (extra != "{}") r[Attr::kExtra] = std::move(extra);
    return true;
  }

 private:
  const FocusMappings& mappings_;
  const pricing::Catalog* catalog_;
  std::vector<std::string> names_;
  bool mca_ = false;
  int date_, cost_, currency_, payg_, unit_price_, effective_price_, quantity_, unit_,
      meter_category_, meter_subcategory_, meter_name_, meter_id_, meter_region_, product_,
      product_id_, resource_id_, resource_name_, location_, resource_group_, consumed_,
      subscription_, subscription_name_, account_, account_name_, invoice_, period_start_,
      period_end_, tags_, charge_type_, pricing_model_, benefit_id_, reservation_id_, benefit_name_,
      reservation_name_, frequency_, publisher_, zone_;
};

}  // namespace

Result<std::unique_ptr<NativeRowMapper>> make_azure_cost_mapper(const NativeHeader& header,
                                                                const std::string& path,
                                                                const FocusMappings& mappings,
                                                                const pricing::Catalog* catalog) {
  return ready_mapper(std::make_unique<AzureCostMapper>(header, mappings, catalog), path,
                      "an Azure cost details export");
}

}  // namespace aifinops::ingest
