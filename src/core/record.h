// Record: one line of the ledger, a FOCUS-aligned cost-and-usage row with AI fields.
// Split in two: the descriptive Attributes (strings, shared by many rows) and the
// per-row UsageFacts (times, quantities, costs, tokens), as a star schema stores them.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/money.h"
#include "core/time.h"

namespace aifinops {

/// The descriptive columns of a record. The order is the storage order; names are in
/// attribute_name(). FOCUS columns first, then AI fields, then the canonical allocation
/// dimensions derived from tags by the tag policy, then raw tags and unknown columns.
enum class Attr : uint8_t {
  // FOCUS: who bills whom
  kProviderName,
  kPublisherName,
  kInvoiceIssuerName,
  kServiceProviderName,  // FOCUS 1.3
  kHostProviderName,     // FOCUS 1.3
  kBillingAccountId,
  kBillingAccountName,
  kBillingAccountType,
  kSubAccountId,
  kSubAccountName,
  kSubAccountType,
  kInvoiceId,
  kBillingCurrency,
  kBillingPeriodStart,
  kBillingPeriodEnd,
  // FOCUS: what the charge is
  kChargeCategory,
  kChargeClass,
  kChargeDescription,
  kChargeFrequency,
  kServiceName,
  kServiceCategory,
  kServiceSubcategory,
  kRegionId,
  kRegionName,
  kAvailabilityZone,
  kResourceId,
  kResourceName,
  kResourceType,
  kSkuId,
  kSkuPriceId,
  kSkuMeter,
  kSkuPriceDetails,
  kPricingCategory,
  kPricingUnit,
  kConsumedUnit,
  kListUnitPrice,
  kContractedUnitPrice,
  kPricingCurrency,
  kCommitmentDiscountId,
  kCommitmentDiscountName,
  kCommitmentDiscountType,
  kCommitmentDiscountCategory,
  kCommitmentDiscountStatus,
  kCommitmentDiscountUnit,
  kCapacityReservationId,
  kCapacityReservationStatus,
  kContractApplied,  // FOCUS 1.3
  // AI fields
  kModel,
  kOperation,
  kGpuType,
  // Canonical allocation dimensions (tag policy)
  kTeam,
  kProject,
  kEnvironment,
  kCostCenter,
  kWorkload,
  kUsageType,
  kPurpose,
  kCriticality,
  kShutdownEligible,
  // Raw tags as a JSON object, and every other column as a JSON object {"name":"value"}.
  kTags,
  kExtra,
  kCount
};

inline constexpr size_t kAttrCount = static_cast<size_t>(Attr::kCount);

/// The snake_case name used in SQL, reports and the CLI (e.g. "service_name", "team").
std::string_view attribute_name(Attr a);
/// Inverse of attribute_name; returns Attr::kCount when unknown.
Attr attribute_from_name(std::string_view name);
/// The first canonical allocation dimension; dimensions run to kShutdownEligible.
inline constexpr Attr kFirstDimension = Attr::kTeam;
inline constexpr Attr kLastDimension = Attr::kShutdownEligible;

/// Descriptive columns as views (into a parse buffer or into an owning Record).
using AttributeViews = std::array<std::string_view, kAttrCount>;

/// Where a record came from.
enum class SourceKind : uint8_t { kFocus = 1, kGateway = 2, kDemo = 3, kTelemetry = 16 };

/// Record flags (bit set).
enum RecordFlag : uint32_t {
  kFlagPricedFromCatalog = 1u << 0,  ///< cost computed from the catalog, not given by the source
  kFlagEstimated = 1u << 1,          ///< tokens or cost estimated (e.g. stream ended early)
  kFlagPartial = 1u << 2,            ///< the request was cut short
  kFlagCacheHit = 1u << 3,           ///< served from the gateway's response cache
  /// The gateway had answered the same request (scope, route, stream, normalised body) within
  /// its repeat window (gateway.yaml cache.repeat_window_s): a duplicate, cache hit or not.
  kFlagRepeat = 1u << 4,
};

/// The per-row numbers of a record. Money in the billing currency, quantities exact.
struct UsageFacts {
  EpochSeconds charge_period_start = 0;
  EpochSeconds charge_period_end = 0;
  Decimal consumed_quantity;
  Decimal pricing_quantity;
  Money list_cost;
  Money contracted_cost;
  Money billed_cost;
  Money effective_cost;
  // Token counts follow OpenAI's semantics: cached and cache-write are parts of input,
  // reasoning is part of output.
  int64_t input_tokens = 0;
  int64_t cached_input_tokens = 0;
  int64_t cache_write_tokens = 0;
  int64_t output_tokens = 0;
  int64_t reasoning_tokens = 0;
  int64_t requests = 0;
  int64_t gpu_milliseconds = 0;  ///< GPU count × wall time
  // GPU telemetry (SourceKind::kTelemetry); all summable over any group, so that
  // mean utilisation = gpu_busy_milliseconds / gpu_observed_milliseconds and mean memory =
  // gpu_memory_mib_milliseconds / gpu_observed_milliseconds hold for a GPU, a team or a
  // month. Observed time is kept apart from gpu_milliseconds (the billed GPU time of cost
  // records), so that GPU-hours are not counted twice when both sources are ingested.
  int64_t gpu_observed_milliseconds = 0;    ///< GPU time covered by telemetry samples
  int64_t gpu_busy_milliseconds = 0;        ///< Σ utilisation × observed GPU time
  int64_t gpu_memory_mib_milliseconds = 0;  ///< Σ memory used (MiB) × sampled GPU time
  int64_t gpu_memory_peak_mib = 0;          ///< highest memory used; a maximum, not a sum
  int64_t energy_millijoules = 0;           ///< Σ power (W) × time (ms): exact, no rounding of kWh
  int64_t co2e_micrograms = 0;              ///< energy × PUE × grid intensity, set at ingest
  int64_t price_version = 0;     ///< price catalog row used, 0 when the source gave the cost
  uint32_t flags = 0;
  // Gateway requests only.
  int64_t latency_ms = 0;        ///< until the response's last byte
  int64_t ttft_ms = 0;           ///< until its first byte (time to first token, for streams)
  Money cache_saving;            ///< what a cache hit saved: the upstream call's cost
};

/// Which file and line a record came from.
struct Lineage {
  int64_t batch_id = 0;
  int64_t line = 0;
};

/// An owning record, for APIs and tests; bulk paths use AttributeViews + UsageFacts.
struct Record {
  std::array<std::string, kAttrCount> attributes;
  UsageFacts facts;
  Lineage lineage;

  std::string& operator[](Attr a) { return attributes[static_cast<size_t>(a)]; }
  const std::string& operator[](Attr a) const { return attributes[static_cast<size_t>(a)]; }
  AttributeViews views() const {
    AttributeViews v;
    for (size_t i = 0; i < kAttrCount; ++i) v[i] = attributes[i];
    return v;
  }
};

}  // namespace aifinops
