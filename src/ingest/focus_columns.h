// The FOCUS columns (1.0 to 1.3) and where each goes in a Record: an attribute, a
// per-row fact, or the `extra` JSON that keeps every other column.
#pragma once

#include <string_view>

#include "core/record.h"

namespace aifinops::ingest {

/// The per-row numeric and time columns.
enum class FactColumn : uint8_t {
  kNone,
  kChargePeriodStart,
  kChargePeriodEnd,
  kConsumedQuantity,
  kPricingQuantity,
  kListCost,
  kContractedCost,
  kBilledCost,
  kEffectiveCost,
};

struct FocusColumn {
  std::string_view name;     ///< as the spec spells it
  Attr attribute;            ///< kCount when not an attribute
  FactColumn fact;           ///< kNone when not a fact
  const char* since;         ///< FOCUS version that introduced it: "1.0" ... "1.3"
  bool mandatory;            ///< FOCUS 1.0 mandatory column
  bool is_timestamp;         ///< a date-time column (checked for RFC 3339)
};

/// Looks a column name up, case-insensitively. nullptr when it is not a FOCUS column.
const FocusColumn* find_focus_column(std::string_view name);

/// Every FOCUS column, for the "missing mandatory columns" check.
const FocusColumn* focus_columns_begin();
const FocusColumn* focus_columns_end();

}  // namespace aifinops::ingest
