#include "analyze/budgets.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "analyze/series.h"
#include "core/json_text.h"
#include "core/money.h"

namespace aifinops::analyze {
namespace {

constexpr int64_t kDay = 86400;
constexpr const char* kAlertNoteKind = "budget_alert";

std::vector<AlertThreshold> thresholds_of(const BudgetRule& rule) {
  if (!rule.alert_at.empty()) return rule.alert_at;
  return {AlertThreshold{50, false}, AlertThreshold{80, false}, AlertThreshold{100, false}};
}

double to_dollars(__int128 nanos) {
  return metric_value_to_double(ledger::Metric::kEffectiveCost, nanos);
}

__int128 to_nanos(double dollars) {
  return std::isfinite(dollars) ? (__int128)std::llround(dollars * 1e9) : 0;
}

/// "$24,512.10"
std::string usd(__int128 nanos) {
  std::string number = format_decimal_fixed(nanos, 2);
  const size_t sign = !number.empty() && number[0] == '-' ? 1 : 0;
  const size_t point = number.find('.');
  std::string out = number.substr(0, sign);
  for (size_t i = sign; i < point; ++i) {
    out += number[i];
    const size_t left = point - i - 1;
    if (left > 0 && left % 3 == 0) out += ',';
  }
  return (sign ? "-$" + out.substr(1) : "$" + out) + number.substr(point);
}

std::string percent_text(double percent) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f%%", percent);
  return text;
}

/// Day sums (nanos) of one budget's scope over the queried days.
using DaySums = std::map<EpochSeconds, __int128>;

/// Budgets scoped on the same dimensions with more members than this share one query
/// grouped by those dimensions; fewer each get a query filtered on their scope, which the
/// store answers from far fewer rows.
constexpr size_t kFilteredQueriesPerScopeShape = 3;

/// One query for `members` (budgets scoped on the same dimensions), by those dimensions and
/// day; each member sums the rows that match its scope. A single member's scope is a filter.
Result<void> load_day_sums(ledger::Ledger& ledger, std::span<const ScopedBudget> budgets,
                           std::span<const size_t> members, EpochSeconds from, EpochSeconds to,
                           std::vector<DaySums>& out) {
  const ScopedBudget& first = budgets[members.front()];
  ledger::QuerySpec spec;
  spec.from = from;
  spec.to = to;
  spec.metric = ledger::Metric::kEffectiveCost;
  // Day first: the store reads the day rollup in its own order (measurably faster).
  ledger::Dimension day;
  day.kind = ledger::Dimension::Kind::kTime;
  day.grain = ledger::Grain::kDay;
  day.label = "day";
  spec.group_by.push_back(day);
  for (const ledger::Filter& f : first.filters) spec.group_by.push_back(f.dimension);
  if (members.size() == 1) spec.filters = first.filters;
  const size_t n = first.filters.size();
  auto result = ledger.query(spec);
  if (!result) return Unexpected{result.error()};
  for (const ledger::QueryRow& row : result->rows) {
    auto t = parse_timestamp(row.keys[0]);
    if (!t) return make_error(ErrorCode::kInternal, "budgets: unexpected day key " + row.keys[0]);
    for (size_t m : members) {
      bool match = true;
      for (size_t i = 0; i < n && match; ++i)
        match = row.keys[i + 1] == budgets[m].filters[i].value;
      if (match) out[m][*t] += row.value;
    }
  }
  return {};
}

/// The scope's dimensions in order, as one key: budgets with equal keys can share a query.
std::string scope_shape(const ScopedBudget& b) {
  std::string key;
  for (const ledger::Filter& f : b.filters) key += f.dimension.label + '\x1f';
  return key;
}

BudgetStatus evaluate(const ScopedBudget& b, const DaySums& days, const BudgetOptions& o,
                      EpochSeconds history_start) {
  BudgetStatus s;
  const BudgetRule& rule = b.rule;
  s.name = rule.name;
  s.scope = scope_text(rule.scope);
  s.period = rule.period;
  s.hard = rule.hard;
  s.as_of = o.as_of;
  s.amount = rule.amount.nanos;
  s.period_start = period_start(rule.period, o.as_of - 1);
  s.period_end = period_end(rule.period, s.period_start);
  s.days_in_period = (int)((s.period_end - s.period_start) / kDay);
  s.history_start = history_start;

  // Days before `today` are complete; `today` has started unless as_of is its midnight.
  const EpochSeconds today = floor_day(o.as_of);
  const bool partial = o.as_of > today;
  const EpochSeconds started_end = partial ? today + kDay : today;  // first day not started
  __int128 today_actual = 0, cumulative = 0;
  for (const auto& [t, v] : days) {
    if (t < s.period_start || t >= std::min(started_end, s.period_end)) continue;
    s.actual += v;
    if (partial && t == today) today_actual = v;
  }
  for (EpochSeconds t = s.period_start; t < std::min(started_end, s.period_end); t += kDay) {
    auto it = days.find(t);
    if (it != days.end()) cumulative += it->second;
    if (!s.exhausted_on && s.amount > 0 && cumulative >= s.amount) s.exhausted_on = t;
  }
  s.days_elapsed = (int)((std::min(started_end, s.period_end) - s.period_start) / kDay);

  // The forecast learns from complete days and covers `today` onwards; today's forecast
  // is reduced by what it has already spent.
  const int horizon = std::max<int64_t>(0, (s.period_end - today) / kDay);
  double remaining = 0, remaining_lower = 0, remaining_upper = 0;
  std::vector<double> remaining_by_day;
  s.model.method = "none";
  if (horizon > 0) {
    const int history = (int)((today - history_start) / kDay);
    std::vector<double> values(std::max(0, history), 0.0);
    for (const auto& [t, v] : days)
      if (t >= history_start && t < today)
        values[(size_t)((t - history_start) / kDay)] += to_dollars(v);
    ForecastOptions fo;
    fo.horizon = horizon;
    fo.interval = o.interval;
    fo.history_start = history_start;
    fo.sums = {{0, horizon}};
    const DailyForecast f = forecast_daily(values, fo);
    s.model = f.model;
    const double spent_today = partial ? std::min(to_dollars(today_actual), f.mean[0]) : 0.0;
    for (int h = 0; h < horizon; ++h) {
      double v = f.mean[h];
      if (h == 0 && partial) v = std::max(0.0, v - to_dollars(today_actual));
      remaining_by_day.push_back(v);
      remaining += v;
    }
    remaining_lower = std::max(0.0, f.sums[0].lower - spent_today);
    remaining_upper = std::max(remaining, f.sums[0].upper - spent_today);
  }
  const double actual = to_dollars(s.actual);
  s.remaining_forecast = remaining;
  s.forecast = actual + remaining;
  s.forecast_lower = actual + remaining_lower;
  s.forecast_upper = actual + remaining_upper;
  if (s.amount > 0) {
    s.used_percent = actual / to_dollars(s.amount) * 100;
    s.forecast_percent = s.forecast / to_dollars(s.amount) * 100;
  }
  if (!s.exhausted_on && s.amount > 0) {
    double running = actual;
    for (int h = 0; h < (int)remaining_by_day.size(); ++h) {
      running += remaining_by_day[h];
      if (running >= to_dollars(s.amount)) {
        s.projected_exhaustion = today + (EpochSeconds)h * kDay;
        break;
      }
    }
  }
  for (const AlertThreshold& t : thresholds_of(rule)) {
    ThresholdStatus ts;
    ts.threshold = t;
    ts.at = mul_div_round(s.amount, t.percent, 100);
    ts.crossed = t.forecast ? to_nanos(s.forecast) >= ts.at : s.actual >= ts.at;
    ts.key = budget_alert_key(rule.name, t, s.period_start);
    s.thresholds.push_back(ts);
  }
  return s;
}

void append_field(std::string& out, bool& first, std::string_view name, std::string_view value) {
  out += first ? "" : ",";
  first = false;
  out += "{\"type\":\"mrkdwn\",\"text\":";
  append_json_string(out, "*" + std::string(name) + "*\n" + std::string(value));
  out += "}";
}

}  // namespace

Result<std::vector<BudgetStatus>> budget_status(ledger::Ledger& ledger,
                                                std::span<const ScopedBudget> budgets,
                                                const BudgetOptions& options) {
  if (options.history_days < 1)
    return make_error(ErrorCode::kInvalidArgument, "budgets: history must be at least 1 day");
  if (budgets.empty()) return std::vector<BudgetStatus>{};
  const EpochSeconds today = floor_day(options.as_of);
  const EpochSeconds query_end = options.as_of > today ? today + kDay : today;
  EpochSeconds from = today - (EpochSeconds)options.history_days * kDay;
  for (const ScopedBudget& b : budgets)
    from = std::min(from, period_start(b.rule.period, options.as_of - 1));
  std::map<std::string, std::vector<size_t>> by_shape;
  for (size_t i = 0; i < budgets.size(); ++i) by_shape[scope_shape(budgets[i])].push_back(i);
  std::vector<DaySums> days(budgets.size());
  for (const auto& [shape, members] : by_shape) {
    if (members.size() > kFilteredQueriesPerScopeShape) {
      if (auto r = load_day_sums(ledger, budgets, members, from, query_end, days); !r)
        return Unexpected{r.error()};
      continue;
    }
    for (size_t m : members) {
      if (auto r =
              load_day_sums(ledger, budgets, std::span<const size_t>(&m, 1), from, query_end, days);
          !r)
        return Unexpected{r.error()};
    }
  }
  std::vector<BudgetStatus> out;
  const EpochSeconds history_start = today - (EpochSeconds)options.history_days * kDay;
  for (size_t i = 0; i < budgets.size(); ++i)
    out.push_back(evaluate(budgets[i], days[i], options, history_start));
  return out;
}

std::string budget_alert_key(const std::string& budget, const AlertThreshold& threshold,
                             EpochSeconds period_start) {
  return budget + "|" + threshold.label() + "|" + format_date(period_start);
}

std::string as_of_text(EpochSeconds as_of) {
  if (floor_day(as_of) == as_of) return "the end of " + format_date(as_of - kDay);
  return format_timestamp(as_of);
}

std::string period_label(BudgetPeriod period, EpochSeconds start) {
  switch (period) {
    case BudgetPeriod::kMonth:
      return format_month(start);
    case BudgetPeriod::kWeek:
      return "week of " + format_date(start);
    case BudgetPeriod::kDay:
      return format_date(start);
  }
  return format_date(start);
}

std::string budget_alert_message(const BudgetStatus& s, std::span<const ThresholdStatus> crossed) {
  std::string labels;
  bool any_actual = false;
  for (const ThresholdStatus& t : crossed) {
    labels += (labels.empty() ? "" : ", ") + t.threshold.label();
    any_actual = any_actual || !t.threshold.forecast;
  }
  const std::string period = period_label(s.period, s.period_start);
  const std::string headline = "Budget \"" + s.name + "\" " +
                               (any_actual ? "reached " : "is forecast to reach ") + labels +
                               " of " + usd(s.amount) + " for " + period;
  std::string summary = "Spent " + usd(s.actual) + " (" + percent_text(s.used_percent) + ") by " +
                        as_of_text(s.as_of) + "; forecast for the period " +
                        usd(to_nanos(s.forecast)) + " (" + percent_text(s.forecast_percent) + ")";
  if (s.exhausted_on)
    summary += "; the amount was used up on " + format_date(*s.exhausted_on);
  else if (s.projected_exhaustion)
    summary += "; projected to run out on " + format_date(*s.projected_exhaustion);
  summary += ".";

  std::string out = "{\"text\":";
  append_json_string(out, headline + ". " + summary);
  out += ",\"blocks\":[{\"type\":\"header\",\"text\":{\"type\":\"plain_text\",\"text\":";
  std::string header = "Budget " + s.name + ": " + labels;
  if (header.size() > 150) header = header.substr(0, 147) + "...";  // Slack's header limit
  append_json_string(out, header);
  out += "}},{\"type\":\"section\",\"text\":{\"type\":\"mrkdwn\",\"text\":";
  append_json_string(out, headline + ".\n" + summary);
  out += "}},{\"type\":\"section\",\"fields\":[";
  bool first = true;
  append_field(out, first, "Scope", s.scope + " (" + std::string(s.hard ? "hard" : "soft") + ")");
  append_field(out, first, "Period",
               period + " (day " + std::to_string(s.days_elapsed) + " of " +
                   std::to_string(s.days_in_period) + ")");
  append_field(out, first, "Spent", usd(s.actual) + " of " + usd(s.amount));
  append_field(out, first, "Forecast",
               usd(to_nanos(s.forecast)) + " (" + usd(to_nanos(s.forecast_lower)) + " to " +
                   usd(to_nanos(s.forecast_upper)) + ")");
  out += "]},{\"type\":\"context\",\"elements\":[{\"type\":\"mrkdwn\",\"text\":";
  append_json_string(out, "aifinops budgets alert, as of " + as_of_text(s.as_of) +
                              "; effective cost from the ledger");
  out += "}]}]}";
  return out;
}

const char* alert_state_name(AlertOutcome::State state) {
  switch (state) {
    case AlertOutcome::State::kSent:
      return "sent";
    case AlertOutcome::State::kAlreadySent:
      return "already_sent";
    case AlertOutcome::State::kWouldSend:
      return "would_send";
    case AlertOutcome::State::kFailed:
      return "failed";
  }
  return "unknown";
}

Result<AlertRun> send_budget_alerts(ledger::Ledger& ledger, std::span<const BudgetStatus> statuses,
                                    const AlertPoster& post, bool dry_run) {
  auto notes = ledger.notes(kAlertNoteKind);
  if (!notes) return Unexpected{notes.error()};
  std::set<std::string> sent;
  for (const ledger::Note& n : *notes) sent.insert(n.key);
  AlertRun run;
  for (const BudgetStatus& s : statuses) {
    std::vector<ThresholdStatus> fresh;
    for (const ThresholdStatus& t : s.thresholds) {
      if (!t.crossed) continue;
      AlertOutcome o;
      o.budget = s.name;
      o.threshold = t.threshold.label();
      o.period_start = s.period_start;
      o.key = t.key;
      if (sent.count(t.key)) {
        o.state = AlertOutcome::State::kAlreadySent;
        run.outcomes.push_back(o);
        continue;
      }
      fresh.push_back(t);
    }
    if (fresh.empty()) continue;
    const int message = (int)run.messages.size();
    run.messages.push_back(budget_alert_message(s, fresh));
    AlertOutcome::State state = AlertOutcome::State::kWouldSend;
    std::string error;
    if (!dry_run) {
      if (auto posted = post(run.messages.back()); posted) {
        state = AlertOutcome::State::kSent;
      } else {
        state = AlertOutcome::State::kFailed;
        error = posted.error().message;
        run.failed++;
      }
    }
    for (const ThresholdStatus& t : fresh) {
      AlertOutcome o{state, s.name, t.threshold.label(), s.period_start, t.key, message, error};
      if (state == AlertOutcome::State::kSent) {
        std::string detail = "{\"actual\":" + format_decimal(s.actual) +
                             ",\"amount\":" + format_decimal(s.amount) +
                             ",\"forecast\":" + format_decimal_fixed(to_nanos(s.forecast), 2) +
                             ",\"as_of\":\"" + format_timestamp(s.as_of) + "\"}";
        auto noted = ledger.note_once(kAlertNoteKind, t.key, detail);
        if (!noted) return Unexpected{noted.error()};
        sent.insert(t.key);
      }
      run.outcomes.push_back(std::move(o));
    }
  }
  return run;
}

}  // namespace aifinops::analyze
