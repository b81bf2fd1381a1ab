// Google Cloud billing export (the BigQuery standard usage cost table, as CSV with dotted or
// flattened column names, or as JSON lines) to FOCUS: credits folded into billed cost,
// committed use discounts, labels as tags, Vertex AI models and GPU SKUs recognised.
#include <simdjson.h>
#include <strings.h>

#include "core/time.h"
#include "ingest/native_export.h"

namespace aifinops::ingest {
namespace {

bool equals_nocase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

/// The sum of a credits array and what kind of credits it holds.
struct Credits {
  Money total;
  std::string cud_id;  // the first committed use discount credit's id (or name)
  bool spend_based = false;
  bool any = false;
};

/// Reads BigQuery's credits: [{"name":..,"amount":-1.5,"full_name":..,"id":..,"type":..}].
/// Amounts are read from their JSON text, so they stay exact.
bool read_credits(std::string_view text, Credits& out, std::string& reason) {
  out = Credits{};
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  if (text.empty() || text == "[]") return true;
  simdjson::ondemand::parser parser;
  simdjson::padded_string padded(text);
  simdjson::ondemand::document doc;
  simdjson::ondemand::array array;
  if (parser.iterate(padded).get(doc) || doc.get_array().get(array)) {
    reason = "is not a JSON array of credits";
    return false;
  }
  for (auto item : array) {
    simdjson::ondemand::object credit;
    if (item.get_object().get(credit)) {
      reason = "holds a credit that is not a JSON object";
      return false;
    }
    std::string type, id, name;
    Money amount;
    bool has_amount = false;
    for (auto member : credit) {
      std::string_view key;
      if (member.unescaped_key().get(key)) {
        reason = "is not valid JSON";
        return false;
      }
      std::string k(key);
      simdjson::ondemand::value value;
      if (member.value().get(value)) {
        reason = "is not valid JSON";
        return false;
      }
      if (k == "amount") {
        std::string_view raw;
        simdjson::ondemand::json_type t;
        if (value.type().get(t)) return false;
        if (t == simdjson::ondemand::json_type::string) {
          if (value.get_string().get(raw)) return false;
        } else {
          raw = value.raw_json_token();
        }
        while (!raw.empty() && (raw.back() == ' ' || raw.back() == '\n')) raw.remove_suffix(1);
        if (!parse_native_decimal(raw, amount, &has_amount)) {
          reason = "has a credit amount \"" + std::string(raw.substr(0, 40)) +
                   "\" that is not a decimal number";
          return false;
        }
      } else if (k == "type" || k == "id" || k == "name") {
        std::string_view s;
        if (value.get_string().get(s)) continue;  // null or another type: not needed
        (k == "type" ? type : k == "id" ? id : name) = std::string(s);
      }
    }
    if (!add_money(out.total, amount, out.total)) {
      reason = "sum to more than fits (credit amounts too large)";
      return false;
    }
    out.any = out.any || has_amount;
    if (type.rfind("COMMITTED_USAGE_DISCOUNT", 0) == 0 && out.cud_id.empty()) {
      out.cud_id = !id.empty() ? id : name;
      out.spend_based = type == "COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE";
    }
  }
  return true;
}

class GcpBillingMapper final : public NativeRowMapper {
 public:
  GcpBillingMapper(const NativeHeader& h, const FocusMappings& mappings)
      : mappings_(mappings), names_(h.names()) {
    start_ = h.find("usage_start_time");
    end_ = h.find("usage_end_time");
    cost_ = h.find("cost");
    cost_at_list_ = h.find("cost_at_list");
    credits_ = h.find("credits");
    currency_ = h.find("currency");
    service_ = h.find("service.description");
    service_id_ = h.find("service.id");
    sku_ = h.find("sku.description");
    sku_id_ = h.find("sku.id");
    project_ = h.find("project.id");
    project_name_ = h.find("project.name");
    project_labels_ = h.find("project.labels");
    labels_ = h.find("labels");
    tags_ = h.find("tags");
    region_ = h.find("location.region");
    location_ = h.find("location.location");
    zone_ = h.find("location.zone");
    resource_ = h.find_any({"resource.global_name", "resource.name"});
    resource_name_ = h.find("resource.name");
    amount_ = h.find("usage.amount");
    unit_ = h.find("usage.unit");
    pricing_amount_ = h.find("usage.amount_in_pricing_units");
    pricing_unit_ = h.find("usage.pricing_unit");
    account_ = h.find("billing_account_id");
    invoice_month_ = h.find("invoice.month");
    cost_type_ = h.find("cost_type");
    seller_ = h.find("seller_name");
  }

  bool ready(std::string& missing) const {
    if (start_ < 0)
      missing = "usage_start_time";
    else if (cost_ < 0)
      missing = "cost";
    return missing.empty();
  }

  std::string label() const override { return "Google Cloud billing export"; }

  bool map(const std::vector<std::string_view>& f, Record& r, RowProblem& problem) override {
    r = Record{};
    UsageFacts& facts = r.facts;
    auto start = parse_native_time(field(f, start_));
    if (!start)
      return bad_value(problem, names_[(size_t)start_], field(f, start_), "is not a date-time");
    facts.charge_period_start = *start;
    auto end = parse_native_time(field(f, end_));
    facts.charge_period_end = end ? *end : *start;
    auto number = [&](int index, Decimal& out, bool* present = nullptr) {
      if (index < 0) {
        out = Decimal{};
        if (present != nullptr) *present = false;
        return true;
      }
      if (parse_native_decimal(f[(size_t)index], out, present)) return true;
      return bad_value(problem, names_[(size_t)index], f[(size_t)index], "is not a decimal number");
    };
    Money cost, cost_at_list;
    Decimal amount, pricing_amount;
    bool has_cost = false, has_list = false, has_pricing_amount = false;
    if (!number(cost_, cost, &has_cost) || !number(cost_at_list_, cost_at_list, &has_list) ||
        !number(amount_, amount) || !number(pricing_amount_, pricing_amount, &has_pricing_amount))
      return false;
    if (!has_cost)
      return bad_value(problem, names_[(size_t)cost_], field(f, cost_),
                       "is empty: the row has no cost");
    Credits credits;
    std::string reason;
    if (credits_ >= 0 && !read_credits(f[(size_t)credits_], credits, reason))
      return bad_value(problem, names_[(size_t)credits_], f[(size_t)credits_], reason);

    // The invoice charges cost plus credits (credits are negative); Google's own FOCUS
    // view does the same sum. Cost before credits is the contracted cost.
    if (!add_money(cost, credits.total, facts.billed_cost))
      return bad_value(problem, names_[(size_t)cost_], field(f, cost_),
                       "plus its credits is too large");
    facts.effective_cost = facts.billed_cost;
    facts.contracted_cost = cost;
    facts.list_cost = has_list ? cost_at_list : cost;
    facts.consumed_quantity = amount;
    facts.pricing_quantity = has_pricing_amount ? pricing_amount : amount;

    std::string_view cost_type = field(f, cost_type_);
    std::string_view sku = field(f, sku_);
    bool cud_fee = sku.substr(0, 10) == "Commitment";  // "Commitment v1: Cpu in ..." fees
    if (equals_nocase(cost_type, "tax")) {
      r[Attr::kChargeCategory] = "Tax";
    } else if (equals_nocase(cost_type, "adjustment")) {
      r[Attr::kChargeCategory] = facts.billed_cost.nanos < 0 ? "Credit" : "Adjustment";
      r[Attr::kChargeClass] = "Correction";  // adjustments correct earlier usage
    } else if (equals_nocase(cost_type, "rounding_error")) {
      r[Attr::kChargeCategory] = "Adjustment";
    } else if (cud_fee) {
      r[Attr::kChargeCategory] = "Purchase";
      r[Attr::kChargeFrequency] = "Recurring";
    } else {
      r[Attr::kChargeCategory] = "Usage";
      r[Attr::kChargeFrequency] = "Usage-Based";
    }

    r[Attr::kProviderName] = "Google Cloud";
    std::string_view seller = field(f, seller_);
    r[Attr::kPublisherName] = seller.empty() ? std::string_view("Google Cloud") : seller;
    r[Attr::kInvoiceIssuerName] = "Google Cloud";
    r[Attr::kBillingAccountId] = field(f, account_);
    r[Attr::kSubAccountId] = field(f, project_);
    r[Attr::kSubAccountName] = field(f, project_name_);
    r[Attr::kBillingCurrency] = field(f, currency_);
    std::string_view month = field(f, invoice_month_);
    if (month.size() == 6 && month.find_first_not_of("0123456789") == std::string_view::npos) {
      int64_t y = std::stoi(std::string(month.substr(0, 4)));
      unsigned m = (unsigned)std::stoi(std::string(month.substr(4, 2)));
      if (m >= 1 && m <= 12) {
        EpochSeconds first = days_from_civil(y, m, 1) * 86400;
        r[Attr::kBillingPeriodStart] = format_timestamp(first);
        r[Attr::kBillingPeriodEnd] = format_timestamp(next_month(first));
      }
    }
    std::string_view service = field(f, service_);
    r[Attr::kServiceName] = service;
    r[Attr::kServiceCategory] = mappings_.gcp_category(service);
    r[Attr::kChargeDescription] = sku;
    r[Attr::kSkuId] = field(f, sku_id_);
    r[Attr::kSkuMeter] = sku;
    std::string_view region = field(f, region_);
    if (region.empty()) region = field(f, location_);
    r[Attr::kRegionId] = region;
    r[Attr::kRegionName] = region;
    r[Attr::kAvailabilityZone] = field(f, zone_);
    std::string_view resource = field(f, resource_);
    r[Attr::kResourceId] = resource;
    std::string_view resource_name = field(f, resource_name_);
    if (resource_name.empty() && !resource.empty())
      resource_name = resource.substr(resource.rfind('/') + 1);
    r[Attr::kResourceName] = resource_name;
    std::string_view unit = field(f, unit_);
    std::string_view pricing_unit = field(f, pricing_unit_);
    r[Attr::kConsumedUnit] = unit;
    r[Attr::kPricingUnit] = pricing_unit.empty() ? unit : pricing_unit;

    if (!credits.cud_id.empty() || cud_fee) {
      r[Attr::kCommitmentDiscountType] = "Committed Use Discount";
      bool spend =
          credits.spend_based || contains_nocase(sku, "dollar") || contains_nocase(sku, "spend");
      r[Attr::kCommitmentDiscountCategory] = spend ? "Spend" : "Usage";
      if (!credits.cud_id.empty()) {
        r[Attr::kCommitmentDiscountId] = credits.cud_id;
        r[Attr::kCommitmentDiscountStatus] = "Used";
      }
      r[Attr::kPricingCategory] = "Committed";
    } else if (contains_nocase(sku, "Spot Preemptible") || contains_nocase(sku, "Preemptible")) {
      r[Attr::kPricingCategory] = "Dynamic";
    } else if (r[Attr::kChargeCategory] == "Usage") {
      r[Attr::kPricingCategory] = "Standard";
    }

    // Labels as tags (the resource's own labels, else its project's).
    std::string tags = tags_to_json(field(f, labels_));
    if (tags.empty()) tags = tags_to_json(field(f, tags_));
    if (tags.empty()) tags = tags_to_json(field(f, project_labels_));
    r[Attr::kTags] = std::move(tags);

    // AI: Vertex AI model SKUs; token counts only where the unit is tokens.
    if (contains_nocase(service, "Vertex AI") || contains_nocase(service, "Gemini") ||
        contains_nocase(sku, "Gemini")) {
      ModelMeter meter = vertex_model_meter(sku);
      bool tokens = contains_nocase(unit, "token") || contains_nocase(pricing_unit, "token");
      if (!tokens) meter.tokens = TokenMeter::kNone;
      apply_model_meter(r, meter, amount,
                        contains_nocase(unit, "token") ? tokens_per_unit_of(unit) : 1);
    }
    // GPUs are billed per GPU: "Nvidia Tesla A100 GPU running in Americas", usage in seconds.
    if (contains_nocase(sku, "GPU")) {
      std::string gpu = gpu_type_from_text(sku);
      if (!gpu.empty()) {
        r[Attr::kGpuType] = gpu;
        if (equals_nocase(unit, "seconds") && !cud_fee)  // a commitment fee is not GPU time
          facts.gpu_milliseconds = (int64_t)mul_div_round(amount.nanos, 1000, kNanosPerUnit);
      }
    }

    std::string extra = "{";
    if (std::string_view id = field(f, service_id_); !id.empty())
      add_json_member(extra, "x_ServiceId", id);
    if (!cost_type.empty()) add_json_member(extra, "x_CostType", cost_type);
    if (credits.any) add_json_member(extra, "x_Credits", format_decimal(credits.total.nanos));
    extra.push_back('}');
    if (extra != "{}") r[Attr::kExtra] = std::move(extra);
    return true;
  }

 private:
  const FocusMappings& mappings_;
  std::vector<std::string> names_;
  int start_, end_, cost_, cost_at_list_, credits_, currency_, service_, service_id_, sku_, sku_id_,
      project_, project_name_, project_labels_, labels_, tags_, region_, location_, zone_,
      resource_, resource_name_, amount_, unit_, pricing_amount_, pricing_unit_, account_,
      invoice_month_, cost_type_, seller_;
};

}  // namespace

Result<std::unique_ptr<NativeRowMapper>> make_gcp_billing_mapper(const NativeHeader& header,
                                                                 const std::string& path,
                                                                 const FocusMappings& mappings,
                                                                 const pricing::Catalog*) {
  return ready_mapper(std::make_unique<GcpBillingMapper>(header, mappings), path,
                      "a Google Cloud billing export");
}

}  // namespace aifinops::ingest
