#include "core/budget.h"

namespace aifinops {

const char* period_name(BudgetPeriod period) {
  switch (period) {
    case BudgetPeriod::kDay:
      return "day";
    case BudgetPeriod::kWeek:
      return "week";
    case BudgetPeriod::kMonth:
      return "month";
  }
  return "period";
}

bool period_from_name(std::string_view name, BudgetPeriod& out) {
  if (name == "day") out = BudgetPeriod::kDay;
  else if (name == "week") out = BudgetPeriod::kWeek;
  else if (name == "month") out = BudgetPeriod::kMonth;
  else return false;
  return true;
}

EpochSeconds period_start(BudgetPeriod period, EpochSeconds t) {
  switch (period) {
    case BudgetPeriod::kDay:
      return floor_day(t);
    case BudgetPeriod::kWeek:
      return floor_week(t);
    case BudgetPeriod::kMonth:
      return floor_month(t);
  }
  return floor_day(t);
}

EpochSeconds period_end(BudgetPeriod period, EpochSeconds start) {
  constexpr EpochSeconds kDay = 86400;
  switch (period) {
    case BudgetPeriod::kDay:
      return start + kDay;
    case BudgetPeriod::kWeek:
      return start + 7 * kDay;
    case BudgetPeriod::kMonth:
      return next_month(start);
  }
  return start + kDay;
}

std::string AlertThreshold::label() const {
  return (forecast ? "forecast " : "") + std::to_string(percent) + "%";
}

std::string scope_text(const std::map<std::string, std::string>& scope) {
  if (scope.empty()) return "all";
  std::string text;
  for (const auto& [dimension, value] : scope) {
    if (!text.empty()) text += ' ';
    text += dimension;
    text += '=';
    text += value;
  }
  return text;
}

}  // namespace aifinops
