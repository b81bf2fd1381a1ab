#include "ingest/focus_columns.h"

#include <strings.h>

#include <iterator>

namespace aifinops::ingest {
namespace {

using F = FactColumn;

constexpr FocusColumn kColumns[] = {
    {"AvailabilityZone", Attr::kAvailabilityZone, F::kNone, "1.0", false, false},
    {"BilledCost", Attr::kCount, F::kBilledCost, "1.0", true, false},
    {"BillingAccountId", Attr::kBillingAccountId, F::kNone, "1.0", true, false},
    {"BillingAccountName", Attr::kBillingAccountName, F::kNone, "1.0", true, false},
    {"BillingCurrency", Attr::kBillingCurrency, F::kNone, "1.0", true, false},
    {"BillingPeriodEnd", Attr::kBillingPeriodEnd, F::kNone, "1.0", true, true},
    {"BillingPeriodStart", Attr::kBillingPeriodStart, F::kNone, "1.0", true, true},
    {"ChargeCategory", Attr::kChargeCategory, F::kNone, "1.0", true, false},
    {"ChargeClass", Attr::kChargeClass, F::kNone, "1.0", true, false},
    {"ChargeDescription", Attr::kChargeDescription, F::kNone, "1.0", true, false},
    {"ChargeFrequency", Attr::kChargeFrequency, F::kNone, "1.0", false, false},
    {"ChargePeriodEnd", Attr::kCount, F::kChargePeriodEnd, "1.0", true, true},
    {"ChargePeriodStart", Attr::kCount, F::kChargePeriodStart, "1.0", true, true},
    {"CommitmentDiscountCategory", Attr::kCommitmentDiscountCategory, F::kNone, "1.0", false, false},
    {"CommitmentDiscountId", Attr::kCommitmentDiscountId, F::kNone, "1.0", false, false},
    {"CommitmentDiscountName", Attr::kCommitmentDiscountName, F::kNone, "1.0", false, false},
    {"CommitmentDiscountStatus", Attr::kCommitmentDiscountStatus, F::kNone, "1.0", false, false},
    {"CommitmentDiscountType", Attr::kCommitmentDiscountType, F::kNone, "1.0", false, false},
    {"ConsumedQuantity", Attr::kCount, F::kConsumedQuantity, "1.0", false, false},
    {"ConsumedUnit", Attr::kConsumedUnit, F::kNone, "1.0", false, false},
    {"ContractedCost", Attr::kCount, F::kContractedCost, "1.0", true, false},
    {"ContractedUnitPrice", Attr::kContractedUnitPrice, F::kNone, "1.0", false, false},
    {"EffectiveCost", Attr::kCount, F::kEffectiveCost, "1.0", true, false},
    {"InvoiceIssuerName", Attr::kInvoiceIssuerName, F::kNone, "1.0", true, false},
    {"ListCost", Attr::kCount, F::kListCost, "1.0", true, false},
    {"ListUnitPrice", Attr::kListUnitPrice, F::kNone, "1.0", false, false},
    {"PricingCategory", Attr::kPricingCategory, F::kNone, "1.0", false, false},
    {"PricingQuantity", Attr::kCount, F::kPricingQuantity, "1.0", true, false},
    {"PricingUnit", Attr::kPricingUnit, F::kNone, "1.0", true, false},
    {"ProviderName", Attr::kProviderName, F::kNone, "1.0", true, false},
    {"PublisherName", Attr::kPublisherName, F::kNone, "1.0", true, false},
    {"RegionId", Attr::kRegionId, F::kNone, "1.0", false, false},
    {"RegionName", Attr::kRegionName, F::kNone, "1.0", false, false},
    {"ResourceId", Attr::kResourceId, F::kNone, "1.0", false, false},
    {"ResourceName", Attr::kResourceName, F::kNone, "1.0", false, false},
    {"ResourceType", Attr::kResourceType, F::kNone, "1.0", false, false},
    {"ServiceCategory", Attr::kServiceCategory, F::kNone, "1.0", true, false},
    {"ServiceName", Attr::kServiceName, F::kNone, "1.0", true, false},
    {"SkuId", Attr::kSkuId, F::kNone, "1.0", false, false},
    {"SkuPriceId", Attr::kSkuPriceId, F::kNone, "1.0", false, false},
    {"SubAccountId", Attr::kSubAccountId, F::kNone, "1.0", false, false},
    {"SubAccountName", Attr::kSubAccountName, F::kNone, "1.0", false, false},
    {"Tags", Attr::kTags, F::kNone, "1.0", false, false},
    // 1.1
    {"CapacityReservationId", Attr::kCapacityReservationId, F::kNone, "1.1", false, false},
    {"CapacityReservationStatus", Attr::kCapacityReservationStatus, F::kNone, "1.1", false, false},
    {"CommitmentDiscountQuantity", Attr::kCount, F::kNone, "1.1", false, false},
    {"CommitmentDiscountUnit", Attr::kCommitmentDiscountUnit, F::kNone, "1.1", false, false},
    {"ServiceSubcategory", Attr::kServiceSubcategory, F::kNone, "1.1", false, false},
    {"SkuMeter", Attr::kSkuMeter, F::kNone, "1.1", false, false},
    {"SkuPriceDetails", Attr::kSkuPriceDetails, F::kNone, "1.1", false, false},
    // 1.2
    {"BillingAccountType", Attr::kBillingAccountType, F::kNone, "1.2", false, false},
    {"SubAccountType", Attr::kSubAccountType, F::kNone, "1.2", false, false},
    {"InvoiceId", Attr::kInvoiceId, F::kNone, "1.2", false, false},
    {"PricingCurrency", Attr::kPricingCurrency, F::kNone, "1.2", false, false},
    {"PricingCurrencyContractedUnitPrice", Attr::kCount, F::kNone, "1.2", false, false},
    {"PricingCurrencyEffectiveCost", Attr::kCount, F::kNone, "1.2", false, false},
    {"PricingCurrencyListUnitPrice", Attr::kCount, F::kNone, "1.2", false, false},
    // 1.3
    {"ServiceProviderName", Attr::kServiceProviderName, F::kNone, "1.3", false, false},
    {"HostProviderName", Attr::kHostProviderName, F::kNone, "1.3", false, false},
    {"AllocatedMethodId", Attr::kCount, F::kNone, "1.3", false, false},
    {"AllocatedMethodDetails", Attr::kCount, F::kNone, "1.3", false, false},
    {"AllocatedResourceId", Attr::kCount, F::kNone, "1.3", false, false},
    {"AllocatedResourceName", Attr::kCount, F::kNone, "1.3", false, false},
    {"AllocatedTags", Attr::kCount, F::kNone, "1.3", false, false},
    {"ContractApplied", Attr::kContractApplied, F::kNone, "1.3", false, false},
};

}  // namespace

const FocusColumn* find_focus_column(std::string_view name) {
  for (const FocusColumn& c : kColumns)
    if (c.name.size() == name.size() && strncasecmp(c.name.data(), name.data(), name.size()) == 0)
      return &c;
  return nullptr;
}

const FocusColumn* focus_columns_begin() { return std::begin(kColumns); }
const FocusColumn* focus_columns_end() { return std::end(kColumns); }

}  // namespace aifinops::ingest
