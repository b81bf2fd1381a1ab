// A budget: an amount of money for a scope (dimension = value pairs) per calendar period,
// with the thresholds that raise alerts. One shape for the gateway (which enforces it per
// request) and the analyses (which report and alert on it from the ledger).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/money.h"
#include "core/time.h"

namespace aifinops {

enum class BudgetPeriod { kDay, kWeek, kMonth };

/// "day", "week", "month".
const char* period_name(BudgetPeriod period);
/// Reads "day", "week" or "month"; false for anything else.
bool period_from_name(std::string_view name, BudgetPeriod& out);
/// Start of the UTC day, ISO week (Monday) or month containing t.
EpochSeconds period_start(BudgetPeriod period, EpochSeconds t);
/// The first second after the period that starts at `start`.
EpochSeconds period_end(BudgetPeriod period, EpochSeconds start);

/// One alert threshold: "80%" of actual spend, or "forecast 100%" of projected spend.
struct AlertThreshold {
  int64_t percent = 0;    ///< whole percent of the amount (50, 80, 100, 120)
  bool forecast = false;  ///< on the period's forecast instead of actual spend
  std::string label() const;  ///< "80%", "forecast 100%"
};

/// A budget over a scope: every listed dimension must match (the gateway also accepts
/// "key" for the virtual key id and "model").
struct BudgetRule {
  std::string name;                           ///< for messages, e.g. "team=team-a (month)"
  std::map<std::string, std::string> scope;   ///< dimension -> value
  BudgetPeriod period = BudgetPeriod::kMonth;
  Money amount;
  bool hard = true;                           ///< hard: refuse; soft: admit and alert
  std::vector<AlertThreshold> alert_at;       ///< empty: the default 50%, 80%, 100%
};

/// "team=team-a", "project=chat team=team-a", or "all" for an empty scope.
std::string scope_text(const std::map<std::string, std::string>& scope);

}  // namespace aifinops
