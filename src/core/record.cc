#include "core/record.h"

namespace aifinops {
namespace {

constexpr std::array<std::string_view, kAttrCount> kNames = {
    "provider_name", "publisher_name", "invoice_issuer_name", "service_provider_name",
    "host_provider_name", "billing_account_id", "billing_account_name", "billing_account_type",
    "sub_account_id", "sub_account_name", "sub_account_type", "invoice_id", "billing_currency",
    "billing_period_start", "billing_period_end", "charge_category", "charge_class",
    "charge_description", "charge_frequency", "service_name", "service_category",
    "service_subcategory", "region_id", "region_name", "availability_zone", "resource_id",
    "resource_name", "resource_type", "sku_id", "sku_price_id", "sku_meter",
    "sku_price_details", "pricing_category", "pricing_unit", "consumed_unit",
    "list_unit_price", "contracted_unit_price", "pricing_currency", "commitment_discount_id",
    "commitment_discount_name", "commitment_discount_type", "commitment_discount_category",
    "commitment_discount_status", "commitment_discount_unit", "capacity_reservation_id",
    "capacity_reservation_status", "contract_applied", "model", "operation", "gpu_type",
    "team", "project", "environment", "cost_center", "workload", "usage_type", "purpose",
    "criticality", "shutdown_eligible", "tags", "extra"};

}  // namespace

std::string_view attribute_name(Attr a) { return kNames[static_cast<size_t>(a)]; }

Attr attribute_from_name(std::string_view name) {
  for (size_t i = 0; i < kAttrCount; ++i)
    if (kNames[i] == name) return static_cast<Attr>(i);
  return Attr::kCount;
}

}  // namespace aifinops
