// AWS Cost and Usage Report (legacy "lineItem/UnblendedCost" and CUR 2.0
// "line_item_unblended_cost" columns) to FOCUS, following the FinOps Foundation's
// focus_converters rules for charge category, billed, effective and list cost.
#include <strings.h>

#include "ingest/native_export.h"

namespace aifinops::ingest {
namespace {

bool equals_nocase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

/// What a lineItem/LineItemType means in FOCUS.
struct LineItemTypeRule {
  std::string_view type;
  std::string_view category;   // ChargeCategory
  std::string_view frequency;  // ChargeFrequency
};

// ChargeCategory as the converter maps it, except that credits, discounts and refunds are
// FOCUS 1.0's "Credit" (the converter predates that value and says "Adjustment").
constexpr LineItemTypeRule kLineItemTypes[] = {
    {"Usage", "Usage", "Usage-Based"},
    {"DiscountedUsage", "Usage", "Usage-Based"},
    {"SavingsPlanCoveredUsage", "Usage", "Usage-Based"},
    {"SavingsPlanNegation", "Usage", "Usage-Based"},
    {"Tax", "Tax", "Usage-Based"},
    {"Fee", "Purchase", "One-Time"},
    {"RIFee", "Purchase", "Recurring"},
    {"SavingsPlanRecurringFee", "Purchase", "Recurring"},
    {"SavingsPlanUpfrontFee", "Purchase", "One-Time"},
    {"Credit", "Credit", "One-Time"},
    {"Refund", "Credit", "One-Time"},
    {"BundledDiscount", "Credit", "Usage-Based"},
    {"Discount", "Credit", "Usage-Based"},
    {"PrivateRateDiscount", "Credit", "Usage-Based"},
    {"EdpDiscount", "Credit", "Usage-Based"},
    {"DistributorDiscount", "Credit", "Usage-Based"},
};

class AwsCurMapper final : public NativeRowMapper {
 public:
  AwsCurMapper(const NativeHeader& header, const FocusMappings& mappings,
               const pricing::Catalog* catalog)
      : mappings_(mappings), catalog_(catalog), names_(header.names()) {
    cur2_ = header.find("line_item_unblended_cost") >= 0 &&
            header.names()[(size_t)header.find("line_item_unblended_cost")].find('/') ==
                std::string::npos;
    start_ = header.find("lineItem/UsageStartDate");
    end_ = header.find("lineItem/UsageEndDate");
    type_ = header.find("lineItem/LineItemType");
    unblended_ = header.find("lineItem/UnblendedCost");
    net_unblended_ = header.find("lineItem/NetUnblendedCost");
    public_cost_ = header.find("pricing/publicOnDemandCost");
    public_rate_ = header.find("pricing/publicOnDemandRate");
    amount_ = header.find("lineItem/UsageAmount");
    unit_ = header.find("pricing/unit");
    sp_effective_ = header.find("savingsPlan/SavingsPlanEffectiveCost");
    sp_arn_ = header.find("savingsPlan/SavingsPlanARN");
    sp_total_ = header.find("savingsPlan/TotalCommitmentToDate");
    sp_used_ = header.find("savingsPlan/UsedCommitment");
    ri_effective_ = header.find("reservation/EffectiveCost");
    ri_arn_ = header.find("reservation/ReservationARN");
    ri_unused_upfront_ = header.find("reservation/UnusedAmortizedUpfrontFeeForBillingPeriod");
    ri_unused_recurring_ = header.find("reservation/UnusedRecurringFee");
    product_code_ = header.find("lineItem/ProductCode");
    product_name_ = header.find("product/ProductName");
    region_code_ = header.find_any({"product/regionCode", "product/region"});
    location_ = header.find("product/location");
    zone_ = header.find("lineItem/AvailabilityZone");
    resource_ = header.find("lineItem/ResourceId");
    payer_ = header.find("bill/PayerAccountId");
    payer_name_ = header.find("bill/PayerAccountName");
    account_ = header.find("lineItem/UsageAccountId");
    account_name_ = header.find("lineItem/UsageAccountName");
    currency_ = header.find("lineItem/CurrencyCode");
    period_start_ = header.find("bill/BillingPeriodStartDate");
    period_end_ = header.find("bill/BillingPeriodEndDate");
    invoice_ = header.find("bill/InvoiceId");
    invoicing_entity_ = header.find("bill/InvoicingEntity");
    billing_entity_ = header.find("bill/BillingEntity");
    legal_entity_ = header.find("lineItem/LegalEntity");
    description_ = header.find("lineItem/LineItemDescription");
    usage_type_ = header.find("lineItem/UsageType");
    operation_ = header.find("lineItem/Operation");
    sku_ = header.find("product/sku");
    rate_id_ = header.find_any({"pricing/RateId", "pricing/RateCode"});
    term_ = header.find("pricing/term");
    instance_type_ = header.find("product/instanceType");
    product_family_ = header.find("product/productFamily");
    product_map_ = cur2_ ? header.find("product") : -1;
    tags_map_ = header.find("resource_tags");
    for (size_t i = 0; i < names_.size(); ++i) {
      const std::string& n = names_[i];
      if (n.size() > 13 && strncasecmp(n.c_str(), "resourceTags/", 13) == 0)
        tag_columns_.push_back(i);
    }
  }

  bool ready(std::string& missing) const {
    if (start_ < 0)
      missing = "lineItem/UsageStartDate";
    else if (unblended_ < 0)
      missing = "lineItem/UnblendedCost";
    return missing.empty();
  }

  std::string label() const override { return cur2_ ? "AWS CUR 2.0" : "AWS CUR (legacy columns)"; }

  bool map(const std::vector<std::string_view>& f, Record& r, RowProblem& problem) override {
    r = Record{};
    UsageFacts& facts = r.facts;
    auto start = parse_native_time(field(f, start_));
    if (!start)
      return bad_value(problem, names_[(size_t)start_], field(f, start_), "is not a date-time");
    facts.charge_period_start = *start;
    auto end = parse_native_time(field(f, end_));
    facts.charge_period_end = end ? *end : *start;

    auto money = [&](int index, Money& out, bool* present = nullptr) {
      if (index < 0) {
        out = Money{};
        if (present != nullptr) *present = false;
        return true;
      }
      if (parse_native_decimal(f[(size_t)index], out, present)) return true;
      return bad_value(problem, names_[(size_t)index], f[(size_t)index], "is not a decimal number");
    };
    Money unblended, net, public_cost, public_rate, sp_effective, sp_total, sp_used, ri_effective,
        ri_unused_upfront, ri_unused_recurring;
    Decimal amount;
    bool has_net = false, has_public_cost = false, has_public_rate = false;
    if (!money(unblended_, unblended) || !money(net_unblended_, net, &has_net) ||
        !money(public_cost_, public_cost, &has_public_cost) ||
        !money(public_rate_, public_rate, &has_public_rate) || !money(amount_, amount) ||
        !money(sp_effective_, sp_effective) || !money(sp_total_, sp_total) ||
        !money(sp_used_, sp_used) || !money(ri_effective_, ri_effective) ||
        !money(ri_unused_upfront_, ri_unused_upfront) ||
        !money(ri_unused_recurring_, ri_unused_recurring))
      return false;

    std::string_view type = field(f, type_);
    const LineItemTypeRule* rule = nullptr;
    for (const LineItemTypeRule& t : kLineItemTypes)
      if (equals_nocase(t.type, type)) rule = &t;
    std::string_view sp_arn = field(f, sp_arn_);
    std::string_view ri_arn = field(f, ri_arn_);

    // BilledCost: the net unblended cost where the report has it, else the unblended cost.
    facts.billed_cost = has_net ? net : unblended;
    // EffectiveCost: commitments amortised to the usage they cover (converter's rules).
    auto too_large = [&](int column) {
      return bad_value(problem, names_[(size_t)column], f[(size_t)column],
                       "is too large: the amount does not fit");
    };
    if (equals_nocase(type, "SavingsPlanCoveredUsage"))
      facts.effective_cost = sp_effective;
    else if (equals_nocase(type, "SavingsPlanRecurringFee")) {
      if (__builtin_sub_overflow(sp_total.nanos, sp_used.nanos, &facts.effective_cost.nanos))
        return too_large(sp_total_);
    } else if (equals_nocase(type, "SavingsPlanNegation") ||
               equals_nocase(type, "SavingsPlanUpfrontFee"))
      facts.effective_cost = Money{};
    else if (equals_nocase(type, "DiscountedUsage"))
      facts.effective_cost = ri_effective;
    else if (equals_nocase(type, "RIFee")) {
      if (!add_money(ri_unused_upfront, ri_unused_recurring, facts.effective_cost))
        return too_large(ri_unused_upfront_);
    } else if (equals_nocase(type, "Fee") && !ri_arn.empty())
      facts.effective_cost = Money{};
    else
      facts.effective_cost = facts.billed_cost;
    // ListCost: the public on-demand cost (the converter's rate × amount only where the
    // report has no cost column, so that list totals match the report's own);
    // ContractedCost: the unblended cost, which carries negotiated rates but no credits.
    if (has_public_cost)
      facts.list_cost = public_cost;
    else if (has_public_rate && amount_ >= 0) {
      if (!times(public_rate, amount, facts.list_cost)) return too_large(public_rate_);
    } else
      facts.list_cost = unblended;
    facts.contracted_cost = unblended;
    facts.consumed_quantity = amount;
    facts.pricing_quantity = amount;

    r[Attr::kProviderName] = "AWS";
    std::string_view billing_entity = field(f, billing_entity_);
    r[Attr::kPublisherName] = equals_nocase(billing_entity, "AWS Marketplace") && legal_entity_ >= 0
                                  ? std::string(field(f, legal_entity_))
                                  : "AWS";
    std::string_view issuer = field(f, invoicing_entity_);
    r[Attr::kInvoiceIssuerName] = issuer.empty() ? "AWS" : std::string(issuer);
    r[Attr::kBillingAccountId] = field(f, payer_);
    r[Attr::kBillingAccountName] = field(f, payer_name_);
    r[Attr::kSubAccountId] = field(f, account_);
    r[Attr::kSubAccountName] = field(f, account_name_);
    r[Attr::kInvoiceId] = field(f, invoice_);
    r[Attr::kBillingCurrency] = field(f, currency_);
    if (auto t = parse_native_time(field(f, period_start_)))
      r[Attr::kBillingPeriodStart] = format_timestamp(*t);
    if (auto t = parse_native_time(field(f, period_end_)))
      r[Attr::kBillingPeriodEnd] = format_timestamp(*t);
    if (rule != nullptr) {
      r[Attr::kChargeCategory] = rule->category;
      r[Attr::kChargeFrequency] = rule->frequency;
    } else {
      r[Attr::kChargeCategory] = "Adjustment";  // a type AWS added after these rules
    }
    // Refunds give back charges of an invoiced period: FOCUS's "Correction".
    if (equals_nocase(type, "Refund")) r[Attr::kChargeClass] = "Correction";
    r[Attr::kChargeDescription] = field(f, description_);

    std::string_view product_code = field(f, product_code_);
    std::string product_name(field(f, product_name_));
    std::string product_json =
        product_map_ >= 0 ? tags_to_json(field(f, product_map_)) : std::string();
    if (product_name.empty()) product_name = map_value(product_json, "product_name");
    r[Attr::kServiceName] = product_name.empty() ? std::string(product_code) : product_name;
    r[Attr::kServiceCategory] = mappings_.aws_category(product_code);
    std::string region(field(f, region_code_));
    if (region.empty()) region = map_value(product_json, "region_code");
    if (region.empty()) region = map_value(product_json, "region");
    r[Attr::kRegionId] = region;
    r[Attr::kRegionName] =
        location_ >= 0 ? std::string(field(f, location_)) : map_value(product_json, "location");
    r[Attr::kAvailabilityZone] = field(f, zone_);
    std::string_view resource = field(f, resource_);
    r[Attr::kResourceId] = resource;
    // The resource name is the last part of an ARN ("...:instance/i-0abc") or the id itself.
    if (!resource.empty()) {
      size_t cut = resource.find_last_of("/:");
      r[Attr::kResourceName] = cut == std::string_view::npos ? resource : resource.substr(cut + 1);
    }
    std::string instance(field(f, instance_type_));
    if (instance.empty()) instance = map_value(product_json, "instance_type");
    if (instance.empty()) instance = map_value(product_json, "instanceType");
    std::string_view usage_type = field(f, usage_type_);
    // SageMaker names the instance in the usage type: "USE1-Host:ml.g5.xlarge".
    if (instance.empty())
      if (size_t colon = usage_type.rfind(':');
          colon != std::string_view::npos && usage_type.substr(colon + 1, 3) == "ml.")
        instance = std::string(usage_type.substr(colon + 1));
    r[Attr::kResourceType] = instance.empty() ? std::string(field(f, product_family_)) : instance;
    r[Attr::kSkuId] = field(f, sku_);
    r[Attr::kSkuPriceId] = field(f, rate_id_);
    r[Attr::kSkuMeter] = usage_type;
    std::string_view unit = field(f, unit_);
    r[Attr::kPricingUnit] = unit;
    r[Attr::kConsumedUnit] = unit;

    // Commitments: which plan or reservation covers or bills the row, and whether used.
    if (!sp_arn.empty()) {
      r[Attr::kCommitmentDiscountId] = sp_arn;
      r[Attr::kCommitmentDiscountType] = "Savings Plan";
      r[Attr::kCommitmentDiscountCategory] = "Spend";
      size_t slash = sp_arn.rfind('/');
      r[Attr::kCommitmentDiscountName] =
          slash == std::string_view::npos ? sp_arn : sp_arn.substr(slash + 1);
    } else if (!ri_arn.empty()) {
      r[Attr::kCommitmentDiscountId] = ri_arn;
      r[Attr::kCommitmentDiscountType] = "Reserved Instance";
      r[Attr::kCommitmentDiscountCategory] = "Usage";
      size_t slash = ri_arn.rfind('/');
      r[Attr::kCommitmentDiscountName] =
          slash == std::string_view::npos ? ri_arn : ri_arn.substr(slash + 1);
    }
    bool covered =
        equals_nocase(type, "SavingsPlanCoveredUsage") || equals_nocase(type, "DiscountedUsage");
    if (covered)
      r[Attr::kCommitmentDiscountStatus] = "Used";
    else if ((equals_nocase(type, "RIFee") || equals_nocase(type, "SavingsPlanRecurringFee")) &&
             facts.effective_cost.nanos != 0)
      r[Attr::kCommitmentDiscountStatus] = "Unused";  // the fee's unused part stays on it
    std::string_view term = field(f, term_);
    if (covered || equals_nocase(term, "Reserved"))
      r[Attr::kPricingCategory] = "Committed";
    else if (contains_nocase(usage_type, "SpotUsage"))
      r[Attr::kPricingCategory] = "Dynamic";
    else if (equals_nocase(term, "OnDemand"))
      r[Attr::kPricingCategory] = "Standard";

    // Tags: legacy columns "resourceTags/user:team" or CUR 2.0's map {"user_team": ...}; the
    // "user:" prefix AWS adds to user-defined tags is dropped so that policies see "team".
    std::string tags;
    if (!tag_columns_.empty()) {
      tags = "{";
      for (size_t i : tag_columns_) {
        std::string_view value = f[i];
        if (value.empty()) continue;
        std::string_view key = std::string_view(names_[i]).substr(13);
        if (key.substr(0, 5) == "user:") key.remove_prefix(5);
        add_json_member(tags, key, value);
      }
      tags.push_back('}');
      if (tags == "{}") tags.clear();
    } else if (tags_map_ >= 0) {
      tags = tags_to_json(field(f, tags_map_), "user_");
    }
    r[Attr::kTags] = std::move(tags);

    // AI and GPUs: Bedrock model meters, SageMaker and EC2 GPU instances.
    ModelMeter meter;
    if (equals_nocase(product_code, "AmazonBedrock") || contains_nocase(usage_type, "-tokens"))
      meter = bedrock_model_meter(usage_type);
    apply_model_meter(r, meter, amount, tokens_per_unit_of(unit));
    bool hourly = contains_nocase(unit, "hr") || contains_nocase(unit, "hour");
    if (!instance.empty()) apply_gpu(r, instance, instance, catalog_, hourly);

    // A few native fields worth keeping that FOCUS has no column for.
    std::string extra = "{";
    if (!type.empty()) add_json_member(extra, "x_LineItemType", type);
    if (std::string_view op = field(f, operation_); !op.empty())
      add_json_member(extra, "x_Operation", op);
    if (!product_code.empty()) add_json_member(extra, "x_ProductCode", product_code);
    extra.push_back('}');
    if (extra != "{}") r[Attr::kExtra] = std::move(extra);
    return true;
  }

 private:
  /// A value from CUR 2.0's product map (a JSON object text), or "".
  static std::string map_value(const std::string& json, std::string_view key) {
    if (json.empty()) return {};
    std::string needle = "\"" + std::string(key) + "\":\"";
    size_t at = json.find(needle);
    if (at == std::string::npos) return {};
    at += needle.size();
    size_t end = json.find('"', at);
    return end == std::string::npos ? std::string() : json.substr(at, end - at);
  }

  const FocusMappings& mappings_;
  const pricing::Catalog* catalog_;
  std::vector<std::string> names_;
  bool cur2_ = false;
  int start_, end_, type_, unblended_, net_unblended_, public_cost_, public_rate_, amount_, unit_,
      sp_effective_, sp_arn_, sp_total_, sp_used_, ri_effective_, ri_arn_, ri_unused_upfront_,
      ri_unused_recurring_, product_code_, product_name_, region_code_, location_, zone_, resource_,
      payer_, payer_name_, account_, account_name_, currency_, period_start_, period_end_, invoice_,
      invoicing_entity_, billing_entity_, legal_entity_, description_, usage_type_, operation_,
      sku_, rate_id_, term_, instance_type_, product_family_, product_map_, tags_map_;
  std::vector<size_t> tag_columns_;
};

}  // namespace

Result<std::unique_ptr<NativeRowMapper>> make_aws_cur_mapper(const NativeHeader& header,
                                                             const std::string& path,
                                                             const FocusMappings& mappings,
                                                             const pricing::Catalog* catalog) {
  return ready_mapper(std::make_unique<AwsCurMapper>(header, mappings, catalog), path,
                      "an AWS Cost and Usage Report");
}

}  // namespace aifinops::ingest
