// aifinops forecast: daily forecasts with prediction intervals per group, rolled up to
// months, with the model's inputs and (--backtest) its track record on the same data.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "analyze/forecast.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/report_output.h"

namespace aifinops::cli {
namespace {

constexpr int64_t kDay = 86400;
constexpr const char* kWeekdays[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

struct ForecastFlags {
  std::string db;
  std::string config;
  std::vector<std::string> by;
  std::string metric = "effective_cost";
  std::string horizon = "30d";
  double interval = 80;
  bool backtest = false;
  int origins = 8;
  std::vector<std::string> filters;
  std::string as_of;
  int history = 120;
  bool daily = false;
  int top = 20;
  std::string format = "table";
};

/// "30d", "30", "3m": days or calendar months.
bool parse_horizon(const std::string& text, int& days, int& months) {
  if (text.empty()) return false;
  char unit = text.back();
  std::string number = (unit == 'd' || unit == 'm') ? text.substr(0, text.size() - 1) : text;
  if (number.empty() || number.size() > 4 ||
      number.find_first_not_of("0123456789") != std::string::npos)
    return false;
  int n = std::stoi(number);
  if (unit == 'm') {
    months = n;
    return n >= 1 && n <= 24;
  }
  days = n;
  return n >= 1 && n <= 731;
}

/// Day d's weekday factor, with d counted from the history's first day.
double weekday_factor(const analyze::ForecastModel& m, EpochSeconds history_start, int weekday) {
  const int first = (int)(((history_start / kDay) % 7 + 7 + 3) % 7);  // 1970-01-01 was a Thursday
  return m.weekly[(size_t)((weekday - first + 7) % 7)];
}

/// Values as the metric is usually read: money and GPU-hours with cents, counts whole.
int value_places(ledger::Metric metric) { return ledger::metric_is_decimal(metric) ? 2 : 0; }

std::string table_number(double v, ledger::Metric metric) {
  return group_thousands(fixed(v, value_places(metric)));
}

std::string group_label(const std::vector<std::string>& keys) {
  std::string s;
  for (const std::string& k : keys) s += (s.empty() ? "" : " / ") + k;
  return s.empty() ? "total" : s;
}

void print_text(std::FILE* out, const analyze::ForecastQuery& query,
                const analyze::ForecastReport& report, const std::vector<std::string>& labels,
                size_t shown, bool daily) {
  const std::string metric(ledger::metric_name(query.metric));
  const int history_days = (int)((report.history_end - report.history_start) / kDay);
  std::string by, filtered;
  for (const auto& l : labels) by += (by.empty() ? " by " : ",") + l;
  for (const auto& f : query.filters)
    filtered += (filtered.empty() ? ", filtered on " : ", ") + f.dimension.label + "=" + f.value;
  std::fprintf(out, "Forecast of %s%s: %d days from %s to %s, %s%% interval\n", metric.c_str(),
               by.c_str(), report.horizon_days, format_date(report.history_end).c_str(),
               format_date(report.history_end + (report.horizon_days - 1) * kDay).c_str(),
               fixed(query.interval * 100, 0).c_str());
  std::fprintf(out, "History: %s to %s (%d days, from %s)%s\n",
               format_date(report.history_start).c_str(),
               format_date(report.history_end - kDay).c_str(), history_days,
               report.source_table.c_str(), filtered.c_str());
  std::fprintf(out,
               "Method: weekly-adjusted exponential smoothing with a damped trend; intervals from "
               "the model's own errors on this history (docs/forecast-and-budgets.md)\n\n");

  std::vector<std::string> header = labels;
  const size_t text_columns = labels.size() + 1;
  if (daily) {
    header.insert(header.end(), {"day", "forecast", "lower", "upper"});
    std::vector<std::vector<std::string>> rows;
    for (size_t g = 0; g < shown; ++g) {
      const auto& group = report.groups[g];
      for (size_t h = 0; h < group.daily.mean.size(); ++h) {
        std::vector<std::string> r = group.keys;
        r.push_back(format_date(group.first_day + (EpochSeconds)h * kDay));
        r.push_back(table_number(group.daily.mean[h], query.metric));
        r.push_back(table_number(group.daily.lower[h], query.metric));
        r.push_back(table_number(group.daily.upper[h], query.metric));
        rows.push_back(std::move(r));
      }
    }
    print_aligned(out, header, rows, text_columns, nullptr);
  } else {
    header.insert(header.end(),
                  {"month", "actual", "forecast", "lower", "upper", "month total", "note"});
    std::vector<std::vector<std::string>> rows;
    for (size_t g = 0; g < shown; ++g) {
      const auto& group = report.groups[g];
      for (const auto& m : group.months) {
        std::vector<std::string> r = group.keys;
        r.push_back(format_month(m.month));
        r.push_back(table_number(m.actual, query.metric));
        r.push_back(table_number(m.forecast, query.metric));
        r.push_back(table_number(m.actual + m.lower, query.metric));
        r.push_back(table_number(m.actual + m.upper, query.metric));
        r.push_back(table_number(m.actual + m.forecast, query.metric));
        std::string note;
        if (m.actual_days > 0) note = std::to_string(m.actual_days) + " days actual";
        if (!m.complete)
          note += (note.empty() ? "" : "; ") + std::string("forecast through ") +
                  format_date(group.first_day + (EpochSeconds)(report.horizon_days - 1) * kDay);
        r.push_back(note);
        rows.push_back(std::move(r));
      }
    }
    print_aligned(out, header, rows, text_columns, nullptr);
    std::fprintf(out, "lower/upper bound the month total (actual + forecast).\n");
  }

  std::fprintf(out, "\nModel inputs (per day; weekly factors multiply the level):\n");
  std::vector<std::string> model_header = {"group", "days", "level", "trend/day", "damping"};
  for (const char* d : kWeekdays) model_header.push_back(d);
  model_header.insert(model_header.end(), {"month-start", "noise", "alpha", "trend from"});
  std::vector<std::vector<std::string>> rows;
  for (size_t g = 0; g < shown; ++g) {
    const auto& group = report.groups[g];
    const auto& m = group.daily.model;
    std::vector<std::string> r = {group_label(group.keys), std::to_string(m.history_days)};
    if (m.method == "zero") {
      r.push_back("no data");
      rows.push_back(std::move(r));
      continue;
    }
    r.push_back(table_number(m.level, query.metric));
    r.push_back(table_number(m.trend_per_day, query.metric));
    r.push_back(m.method == "smoothing" ? fixed(m.phi, 2) : "mean");
    for (int d = 0; d < 7; ++d) r.push_back(fixed(weekday_factor(m, report.history_start, d), 2));
    r.push_back(m.month_start_charge > 0 ? table_number(m.month_start_charge, query.metric) : "-");
    r.push_back(fixed(m.noise * 100, 1) + "%");
    r.push_back(fixed(m.alpha, 2));
    r.push_back(m.trend_window > 0 ? "last " + std::to_string(m.trend_window) + " days"
                                   : "smoothing " + fixed(m.beta, 2));
    rows.push_back(std::move(r));
  }
  print_aligned(out, model_header, rows, 1, nullptr);

  if (query.backtest_origins > 0) {
    std::fprintf(
        out,
        "\nBacktest (rolling origins a week apart; each forecast %d days from the days before "
        "it):\n",
        report.horizon_days);
    std::vector<std::vector<std::string>> bt;
    for (size_t g = 0; g < shown; ++g) {
      const auto& group = report.groups[g];
      if (!group.backtest) continue;
      const auto& b = *group.backtest;
      bt.push_back({group_label(group.keys), std::to_string(b.origins),
                    b.origins ? fixed(b.monthly_total_mape * 100, 1) + "%" : "-",
                    b.origins ? fixed(b.monthly_total_bias * 100, 1) + "%" : "-",
                    b.origins ? fixed(b.daily_mape * 100, 1) + "%" : "-",
                    b.origins ? fixed(b.coverage * 100, 1) + "%" : "-"});
    }
    print_aligned(out, {"group", "origins", "total MAPE", "total bias", "daily MAPE", "coverage"},
                  bt, 1, nullptr);
  }
  if ((size_t)report.groups_total > shown)
    std::fprintf(out, "\n%zu more groups not shown (--top 0 shows all).\n",
                 (size_t)report.groups_total - shown);
}

void print_csv(std::FILE* out, const analyze::ForecastQuery& query,
               const analyze::ForecastReport& report, const std::vector<std::string>& labels,
               size_t shown, bool daily) {
  std::string line;
  for (const std::string& l : labels) line += csv_escape(l) + ",";
  line += daily ? "day,forecast,lower,upper"
                : "month,actual,actual_days,forecast,lower,upper,forecast_days,complete";
  if (query.backtest_origins > 0) line += ",backtest_origins,backtest_total_mape,backtest_coverage";
  std::fprintf(out, "%s\n", line.c_str());
  const int places = value_places(query.metric) + 2;
  for (size_t g = 0; g < shown; ++g) {
    const auto& group = report.groups[g];
    std::string prefix;
    for (const std::string& k : group.keys) prefix += csv_escape(k) + ",";
    std::string suffix;
    if (group.backtest)
      suffix = "," + std::to_string(group.backtest->origins) + "," +
               fixed(group.backtest->monthly_total_mape, 4) + "," +
               fixed(group.backtest->coverage, 4);
    if (daily) {
      for (size_t h = 0; h < group.daily.mean.size(); ++h)
        std::fprintf(out, "%s%s,%s,%s,%s%s\n", prefix.c_str(),
                     format_date(group.first_day + (EpochSeconds)h * kDay).c_str(),
                     fixed(group.daily.mean[h], places).c_str(),
                     fixed(group.daily.lower[h], places).c_str(),
                     fixed(group.daily.upper[h], places).c_str(), suffix.c_str());
    } else {
      for (const auto& m : group.months)
        std::fprintf(out, "%s%s,%s,%d,%s,%s,%s,%d,%s%s\n", prefix.c_str(),
                     format_month(m.month).c_str(), fixed(m.actual, places).c_str(), m.actual_days,
                     fixed(m.forecast, places).c_str(), fixed(m.lower, places).c_str(),
                     fixed(m.upper, places).c_str(), m.forecast_days, m.complete ? "true" : "false",
                     suffix.c_str());
    }
  }
}

void print_json(std::FILE* out, const analyze::ForecastQuery& query,
                const analyze::ForecastReport& report, const std::vector<std::string>& labels,
                size_t shown) {
  const int places = value_places(query.metric) + 2;
  auto num = [&](double v) { return fixed(v, places); };
  std::string s =
      "{\"metric\":\"" + std::string(ledger::metric_name(query.metric)) + "\",\"group_by\":[";
  for (size_t i = 0; i < labels.size(); ++i) {
    s += i ? "," : "";
    append_json_string(s, labels[i]);
  }
  s += "],\"filters\":{";
  for (size_t i = 0; i < query.filters.size(); ++i) {
    s += i ? "," : "";
    append_json_string(s, query.filters[i].dimension.label);
    s += ":";
    append_json_string(s, query.filters[i].value);
  }
  s += "},\"interval\":" + fixed(query.interval, 2) +
       ",\"horizon_days\":" + std::to_string(report.horizon_days);
  s += ",\"first_day\":\"" + format_date(report.history_end) + "\",\"last_day\":\"" +
       format_date(report.history_end + (EpochSeconds)(report.horizon_days - 1) * kDay) + "\"";
  s += ",\"history\":{\"from\":\"" + format_date(report.history_start) + "\",\"to\":\"" +
       format_date(report.history_end - kDay) +
       "\",\"days\":" + std::to_string((report.history_end - report.history_start) / kDay) +
       ",\"source_table\":\"" + report.source_table + "\"}";
  s += ",\"groups\":[";
  for (size_t g = 0; g < shown; ++g) {
    const auto& group = report.groups[g];
    const auto& m = group.daily.model;
    s += g ? ",{" : "{";
    s += "\"keys\":{";
    for (size_t i = 0; i < group.keys.size(); ++i) {
      s += i ? "," : "";
      append_json_string(s, labels[i]);
      s += ":";
      append_json_string(s, group.keys[i]);
    }
    s += "},\"history_total\":" + num(group.history_total) +
         ",\"last_28_days\":" + num(group.last_28_days);
    s += ",\"model\":{\"method\":\"" + m.method +
         "\",\"history_days\":" + std::to_string(m.history_days) +
         ",\"leading_zero_days\":" + std::to_string(m.leading_zero_days) +
         ",\"alpha\":" + fixed(m.alpha, 3) + ",\"beta\":" + fixed(m.beta, 3) +
         ",\"trend_window\":" + std::to_string(m.trend_window) + ",\"phi\":" + fixed(m.phi, 3) +
         ",\"level\":" + num(m.level) + ",\"trend_per_day\":" + num(m.trend_per_day) +
         ",\"weekly\":{";
    for (int d = 0; d < 7; ++d)
      s += std::string(d ? "," : "") + "\"" + kWeekdays[d] +
           "\":" + fixed(weekday_factor(m, report.history_start, d), 4);
    s += "},\"month_start_charge\":" + num(m.month_start_charge) +
         ",\"month_starts_seen\":" + std::to_string(m.month_starts_seen) +
         ",\"noise\":" + fixed(m.noise, 4) +
         ",\"error_samples\":" + std::to_string(m.error_samples) + "}";
    s += ",\"months\":[";
    for (size_t i = 0; i < group.months.size(); ++i) {
      const auto& mo = group.months[i];
      s +=
          std::string(i ? "," : "") + "{\"month\":\"" + format_month(mo.month) +
          "\",\"actual\":" + num(mo.actual) + ",\"actual_days\":" + std::to_string(mo.actual_days) +
          ",\"forecast\":" + num(mo.forecast) + ",\"lower\":" + num(mo.lower) +
          ",\"upper\":" + num(mo.upper) + ",\"forecast_days\":" + std::to_string(mo.forecast_days) +
          ",\"total\":" + num(mo.actual + mo.forecast) +
          ",\"complete\":" + (mo.complete ? "true" : "false") + "}";
    }
    s += "],\"daily\":[";
    for (size_t h = 0; h < group.daily.mean.size(); ++h) {
      s += std::string(h ? "," : "") + "{\"day\":\"" +
           format_date(group.first_day + (EpochSeconds)h * kDay) +
           "\",\"forecast\":" + num(group.daily.mean[h]) +
           ",\"lower\":" + num(group.daily.lower[h]) + ",\"upper\":" + num(group.daily.upper[h]) +
           "}";
    }
    s += "]";
    if (group.backtest) {
      const auto& b = *group.backtest;
      s += ",\"backtest\":{\"origins\":" + std::to_string(b.origins) +
           ",\"spacing_days\":" + std::to_string(b.spacing_days) +
           ",\"horizon_days\":" + std::to_string(b.horizon) +
           ",\"monthly_total_mape\":" + fixed(b.monthly_total_mape, 4) +
           ",\"monthly_total_bias\":" + fixed(b.monthly_total_bias, 4) +
           ",\"daily_mape\":" + fixed(b.daily_mape, 4) + ",\"coverage\":" + fixed(b.coverage, 4) +
           "}";
    }
    s += "}";
  }
  s += "],\"groups_not_shown\":" + std::to_string((size_t)report.groups_total - shown) + "}\n";
  std::fputs(s.c_str(), out);
}

int run_forecast(const ForecastFlags& flags, const CommandEnv& env) {
  analyze::ForecastQuery query;
  if (!ledger::metric_from_name(flags.metric, query.metric))
    return env.usage_error(
        "--metric " + flags.metric +
        ": allowed values are effective_cost, billed_cost, list_cost, contracted_cost, "
        "cache_savings, quantity, tokens, input_tokens, output_tokens, cached_tokens, "
        "requests, gpu_hours");
  if (!parse_horizon(flags.horizon, query.horizon_days, query.horizon_months))
    return env.usage_error("--horizon " + flags.horizon +
                           ": expected days (30d, 1 to 731) or months (3m, 1 to 24)");
  if (!(flags.interval >= 1 && flags.interval <= 99))
    return env.usage_error("--interval " + fixed(flags.interval, 1) +
                           ": expected a percentage from 1 to 99 (80 = 80%)");
  query.interval = flags.interval / 100;
  if (flags.history < 14 || flags.history > 3660)
    return env.usage_error("--history " + std::to_string(flags.history) +
                           ": expected 14 to 3660 days");
  query.history_days = flags.history;
  if (flags.origins < 1 || flags.origins > 52)
    return env.usage_error("--origins " + std::to_string(flags.origins) + ": expected 1 to 52");
  if (flags.backtest) query.backtest_origins = flags.origins;
  if (flags.top < 0) return env.usage_error("--top must be 0 (all) or more");
  auto policy = env.policy(flags.config);
  if (!policy) return env.report_error(policy.error());
  std::vector<std::string> labels;
  for (const std::string& name : flags.by) {
    auto d = resolve_dimension(*policy, name);
    if (!d) return env.usage_error("--by: " + d.error().message);
    if (d->kind == ledger::Dimension::Kind::kTime)
      return env.usage_error("--by " + name +
                             ": forecasts are daily already; group by a non-time dimension");
    if (std::find(labels.begin(), labels.end(), d->label) != labels.end()) continue;
    labels.push_back(d->label);
    query.group_by.push_back(*d);
  }
  auto filters = parse_filters(*policy, flags.filters);
  if (!filters) return env.usage_error(filters.error().message);
  query.filters = std::move(*filters);
  if (!flags.as_of.empty()) {
    auto t = parse_as_of(flags.as_of);
    if (!t) return env.usage_error(t.error().message);
    query.as_of = *t;
  }
  query.today = floor_day(static_cast<EpochSeconds>(std::time(nullptr)));
  query.max_groups = flags.top;
  auto ledger = env.ledger(flags.db);
  if (!ledger) return env.report_error(ledger.error());
  auto report = analyze::forecast(**ledger, query);
  if (!report) return env.report_error(report.error());
  if (report->groups.empty()) {
    if (output_format_from_name(flags.format) == OutputFormat::kJson) {
      print_json(env.out, query, *report, labels, 0);
      return kExitOk;
    }
    std::fprintf(stderr, "aifinops: no %s in the ledger to forecast from%s\n",
                 std::string(ledger::metric_name(query.metric)).c_str(),
                 query.filters.empty() ? "" : " with these filters");
    return kExitOk;
  }
  const size_t shown =
      flags.top == 0 ? report->groups.size() : std::min(report->groups.size(), (size_t)flags.top);
  switch (output_format_from_name(flags.format)) {
    case OutputFormat::kJson:
      print_json(env.out, query, *report, labels, shown);
      break;
    case OutputFormat::kCsv:
      print_csv(env.out, query, *report, labels, shown, flags.daily);
      break;
    case OutputFormat::kTable:
      print_text(env.out, query, *report, labels, shown, flags.daily);
      break;
  }
  return kExitOk;
}

}  // namespace

void add_forecast_command(CLI::App& app, int& exit_code, const CommandEnv& env) {
  auto flags = std::make_shared<ForecastFlags>();
  CLI::App* cmd = app.add_subcommand(
      "forecast",
      "Forecast daily spend (or any metric) per group with prediction intervals, rolled up "
      "to months; --backtest shows the forecaster's accuracy on the same history.");
  cmd->add_option("--db", flags->db, "Ledger path or PostgreSQL URL (default: $AIFINOPS_DB or ./aifinops.db; docs/postgresql.md)");
  cmd->add_option("--config", flags->config,
                  "Policy file, for its custom dimensions (default: $AIFINOPS_CONFIG, or "
                  "./policy.yaml if present)");
  cmd->add_option("--by", flags->by,
                  "Dimensions to forecast separately, comma-separated (as report --by)")
      ->delimiter(',');
  cmd->add_option(
         "--metric", flags->metric,
         "effective_cost, billed_cost, list_cost, contracted_cost, cache_savings, quantity, "
         "tokens, input_tokens, output_tokens, cached_tokens, requests, gpu_hours")
      ->capture_default_str();
  cmd->add_option("--horizon", flags->horizon, "How far: days (30d) or calendar months (3m)")
      ->capture_default_str();
  cmd->add_option("--interval", flags->interval, "Central prediction interval, percent")
      ->capture_default_str();
  cmd->add_flag("--backtest", flags->backtest,
                "Also forecast from earlier origins and report MAPE and interval coverage");
  cmd->add_option("--origins", flags->origins, "Backtest origins, one week apart")
      ->capture_default_str();
  cmd->add_option("--filter", flags->filters, "DIM=VALUE; repeat for more; (none) matches missing");
  cmd->add_option("--as-of", flags->as_of,
                  "Last day of the history (2025-10-31: that day included); default: the last "
                  "day with data, never today (it is incomplete)");
  cmd->add_option("--history", flags->history, "Days of history to learn from, at most")
      ->capture_default_str();
  cmd->add_flag("--daily", flags->daily, "Show every forecast day instead of the monthly roll-up");
  cmd->add_option("--top", flags->top, "Show the N groups with the most history (0: all)")
      ->capture_default_str();
  cmd->add_option("--format", flags->format, "Output format")
      ->check(CLI::IsMember({"table", "csv", "json"}))
      ->capture_default_str();
  cmd->footer(
      "Examples:\n"
      "  aifinops forecast\n"
      "  aifinops forecast --by team --horizon 3m --backtest\n"
      "  aifinops forecast --metric tokens --filter team=search --daily --format csv\n"
      "Exit codes: 0 ok, 1 error, 2 bad flags.");
  cmd->callback([flags, &exit_code, env] { exit_code = run_forecast(*flags, env); });
}

}  // namespace aifinops::cli
