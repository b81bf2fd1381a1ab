#include "server/ledger_metrics.h"

#include <algorithm>
#include <map>

#include "allocate/shared_costs.h"
#include "analyze/anomaly.h"
#include "analyze/budgets.h"
#include "core/prometheus_text.h"

namespace aifinops::server {
namespace {

/// Prometheus values are floats; dollars to 6 decimals is exact enough for a gauge.
std::string dollars(__int128 nanos) { return format_decimal(nanos / 1000 * 1000); }

std::string number(double v) {
  if (!(v == v) || v > 1e300 || v < -1e300) return "NaN";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.6g", v);
  return buffer;
}

void family(std::string& out, const char* name, const char* type, const char* help) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

/// The end of the data to report on: `now`, or the end of the ledger's last day with
/// records when that is earlier.
Result<EpochSeconds> reference_time(ledger::Ledger& ledger, EpochSeconds now) {
  // Unbounded and by month: the month rollup answers (a bound inside a month would not).
  ledger::QuerySpec months;
  months.group_by.push_back(*ledger::parse_dimension("month"));
  auto m = ledger.query(months);
  if (!m) return Unexpected{m.error()};
  std::optional<EpochSeconds> last_month;
  for (const ledger::QueryRow& row : m->rows) {
    auto t = parse_timestamp(row.keys[0] + "-01");
    if (t && *t <= now && (!last_month || *t > *last_month)) last_month = *t;
  }
  if (!last_month) return now;
  if (*last_month >= floor_month(now)) return now;
  ledger::QuerySpec days;
  days.group_by.push_back(*ledger::parse_dimension("day"));
  days.from = *last_month;
  days.to = next_month(*last_month);
  auto d = ledger.query(days);
  if (!d) return Unexpected{d.error()};
  EpochSeconds end = *last_month;
  for (const ledger::QueryRow& row : d->rows) {
    auto t = parse_timestamp(row.keys[0]);
    if (t) end = std::max(end, *t + 86400);
  }
  return end;
}

}  // namespace

Result<std::string> render_ledger_metrics(ledger::Ledger& ledger, const config::Policy& policy,
                                          EpochSeconds now) {
  auto reference = reference_time(ledger, now);
  if (!reference) return Unexpected{reference.error()};
  const EpochSeconds month_start = floor_month(*reference - 1);
  const std::string month = format_month(month_start);
  std::string out;

  family(out, "aifinops_ledger_spend_usd", "gauge",
         "Effective cost of the month so far, by dimension value (label month says which).");
  __int128 total = 0;
  for (const char* name : {"team", "project", "provider", "model"}) {
    auto d = allocate::resolve_dimension(policy.tags, name);
    if (!d) return Unexpected{d.error()};
    ledger::QuerySpec spec;
    spec.from = month_start;
    spec.to = next_month(month_start);
    spec.group_by.push_back(*d);
    auto result = ledger.query(spec);
    if (!result) return Unexpected{result.error()};
    total = result->total;
    for (const ledger::QueryRow& row : result->rows)
      out += "aifinops_ledger_spend_usd{month=\"" + month + "\",dimension=\"" + name +
             "\",value=\"" + prometheus_label_value(row.keys[0]) + "\"} " + dollars(row.value) + "\n";
  }
  family(out, "aifinops_ledger_spend_total_usd", "gauge", "Effective cost of the month so far.");
  out += "aifinops_ledger_spend_total_usd{month=\"" + month + "\"} " + dollars(total) + "\n";

  std::vector<analyze::ScopedBudget> budgets;
  for (const BudgetRule& rule : policy.budgets) {
    analyze::ScopedBudget b{rule, {}};
    bool resolved = true;
    for (const auto& [dimension, value] : rule.scope) {
      auto d = allocate::resolve_dimension(policy.tags, dimension);
      if (!d) {
        resolved = false;
        break;
      }
      b.filters.push_back({*d, value});
    }
    if (resolved) budgets.push_back(std::move(b));
  }
  family(out, "aifinops_budget_used_ratio", "gauge",
         "Actual spend of the budget's current period over its amount (1 = used up).");
  std::string forecast_lines, amount_lines;
  if (!budgets.empty()) {
    analyze::BudgetOptions options;
    options.as_of = *reference;
    auto statuses = analyze::budget_status(ledger, budgets, options);
    if (!statuses) return Unexpected{statuses.error()};
    for (const analyze::BudgetStatus& s : *statuses) {
      std::string labels = "budget=\"" + prometheus_label_value(s.name) + "\",scope=\"" + prometheus_label_value(s.scope) +
                           "\",period_start=\"" + format_date(s.period_start) + "\"";
      out += "aifinops_budget_used_ratio{" + labels + "} " + number(s.used_percent / 100) + "\n";
      forecast_lines += "aifinops_budget_forecast_ratio{" + labels + "} " +
                        number(s.forecast_percent / 100) + "\n";
      amount_lines += "aifinops_budget_amount_usd{" + labels + "} " + dollars(s.amount) + "\n";
    }
  }
  family(out, "aifinops_budget_forecast_ratio", "gauge",
         "Actual plus forecast spend of the budget's period over its amount.");
  out += forecast_lines;
  family(out, "aifinops_budget_amount_usd", "gauge", "The budget's amount per period.");
  out += amount_lines;

  // Open anomalies: spend anomalies by team found in the last 30 days of data.
  analyze::AnomalyQuery query;
  query.group_by.push_back(*allocate::resolve_dimension(policy.tags, "team"));
  query.since = floor_day(*reference) - 30 * 86400;
  query.to = floor_day(*reference);
  query.limit = 0;
  query.explain = false;  // counted and summed here, never explained
  auto run = analyze::run_anomaly_detection(ledger, query);
  if (!run) return Unexpected{run.error()};
  std::map<std::string, std::pair<int64_t, double>> by_team;
  for (const analyze::Anomaly& a : run->anomalies) {
    auto& [count, impact] = by_team[a.keys.empty() ? "(none)" : a.keys[0]];
    ++count;
    impact += a.point.impact;
  }
  family(out, "aifinops_anomalies_open_total", "gauge",
         "Spend anomalies (effective cost, daily, by team) in the last 30 days of data.");
  out += "aifinops_anomalies_open_total " + std::to_string(run->anomalies.size()) + "\n";
  family(out, "aifinops_anomalies_open", "gauge",
         "Spend anomalies (effective cost, daily, by team) in the last 30 days of data.");
  for (const auto& [team, v] : by_team)
    out +=
        "aifinops_anomalies_open{team=\"" + prometheus_label_value(team) + "\"} " + std::to_string(v.first) + "\n";
  family(out, "aifinops_anomalies_open_impact_usd", "gauge",
         "Spend above the expected baseline of those anomalies.");
  for (const auto& [team, v] : by_team)
    out += "aifinops_anomalies_open_impact_usd{team=\"" + prometheus_label_value(team) + "\"} " + number(v.second) +
           "\n";
  family(out, "aifinops_ledger_reference_time_seconds", "gauge",
         "The end of the data these metrics describe (now, or the ledger's last day).");
  out += "aifinops_ledger_reference_time_seconds " + std::to_string(*reference) + "\n";
  return out;
}

}  // namespace aifinops::server
