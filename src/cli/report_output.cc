#include "cli/report_output.h"

#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

namespace aifinops::cli {
namespace {

std::string json_number_or_null(const std::string& number) {
  return number.empty() ? "null" : number;
}

std::string with_percent_sign(const std::string& number) {
  return number.empty() ? "" : number + "%";
}

/// Month arithmetic on the first second of a month.
EpochSeconds add_months(EpochSeconds month_start, int64_t months) {
  int64_t y;
  unsigned m, d;
  civil_from_days(month_start / 86400, y, m, d);
  int64_t index = y * 12 + (int64_t)(m - 1) + months;
  int64_t year = index >= 0 ? index / 12 : -((-index + 11) / 12);
  unsigned month = (unsigned)(index - year * 12) + 1;
  return days_from_civil(year, month, 1) * 86400;
}

bool all_digits(std::string_view s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit((unsigned char)c); });
}

/// "change %" of a row: the change over the previous value's magnitude; empty when there
/// was nothing before.
std::string change_percent(__int128 value, __int128 previous, int places) {
  if (previous == 0) return "";
  return percent_text(value - previous, previous < 0 ? -previous : previous, places);
}

std::string shared_sum_text(ledger::Metric metric, const std::vector<__int128>& shared,
                            bool table) {
  __int128 s = 0;
  for (__int128 v : shared) s += v;
  return format_metric(metric, s, table);
}

}  // namespace

std::string percent_text(__int128 part, __int128 whole, int places) {
  if (whole == 0) return "";
  if (whole < 0) {
    whole = -whole;
    part = -part;
  }
  __int128 scale = 100;
  for (int i = 0; i < places; ++i) scale *= 10;
  __int128 v = mul_div_round(part, scale, whole);
  bool negative = v < 0;
  if (negative) v = -v;
  __int128 unit = scale / 100;
  std::string out = (negative ? "-" : "") + std::to_string((long long)(v / unit));
  if (places > 0) {
    std::string fraction = std::to_string((long long)(v % unit));
    out += "." + std::string((size_t)places - fraction.size(), '0') + fraction;
  }
  return out;
}

std::string format_metric(ledger::Metric metric, __int128 value, bool for_table) {
  if (!ledger::metric_is_decimal(metric)) return format_decimal(value * kNanosPerUnit);
  if (for_table && (ledger::metric_is_money(metric) || metric == ledger::Metric::kGpuHours ||
                    metric == ledger::Metric::kGpuObservedHours))
    return format_decimal_fixed(value, 2);
  if (for_table && metric == ledger::Metric::kGpuUtilization) return format_decimal_fixed(value * 100, 2) + "%";
  return format_decimal(value);
}

std::string aligned_text(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& lines, size_t numeric_from,
                         const std::vector<std::string>* total_line, size_t numeric_to,
                         const std::string& indent) {
  std::vector<size_t> width(header.size(), 0);
  auto measure = [&](const std::vector<std::string>& line) {
    for (size_t i = 0; i < line.size() && i < width.size(); ++i)
      width[i] = std::max(width[i], line[i].size());
  };
  measure(header);
  for (const auto& line : lines) measure(line);
  if (total_line) measure(*total_line);
  std::string out;
  auto add_line = [&](const std::vector<std::string>& line) {
    out += indent;
    for (size_t i = 0; i < line.size() && i < width.size(); ++i) {
      size_t pad = width[i] - line[i].size();
      if (i > 0) out += "  ";
      if (i >= numeric_from && i < numeric_to)
        out += std::string(pad, ' ') + line[i];
      else
        out += line[i] + (i + 1 < line.size() ? std::string(pad, ' ') : "");
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();  // an empty last column
    out += "\n";
  };
  size_t total_width = 0;
  for (size_t w : width) total_width += w + 2;
  std::string rule = indent + std::string(total_width >= 2 ? total_width - 2 : 0, '-') + "\n";
  add_line(header);
  out += rule;
  for (const auto& line : lines) add_line(line);
  if (total_line) {
    out += rule;
    add_line(*total_line);
  }
  return out;
}

void print_aligned(std::FILE* out, const std::vector<std::string>& header,
                   const std::vector<std::vector<std::string>>& lines, size_t numeric_from,
                   const std::vector<std::string>* total_line, size_t numeric_to) {
  std::fputs(aligned_text(header, lines, numeric_from, total_line, numeric_to).c_str(), out);
}

void print_report(std::FILE* out, const ledger::QuerySpec& spec, const ledger::QueryResult& result,
                  OutputFormat format) {
  std::string metric(ledger::metric_name(spec.metric));
  if (format == OutputFormat::kCsv) {
    std::string line;
    for (const ledger::Dimension& d : spec.group_by) line += csv_escape(d.label) + ",";
    line += metric + "\n";
    std::fputs(line.c_str(), out);
    for (const ledger::QueryRow& row : result.rows) {
      line.clear();
      for (const std::string& k : row.keys) line += csv_escape(k) + ",";
      line += format_metric(spec.metric, row.value, false) + "\n";
      std::fputs(line.c_str(), out);
    }
    return;
  }
  if (format == OutputFormat::kJson) {
    std::string s = "{\"metric\":\"" + metric + "\",\"rows\":[";
    for (size_t r = 0; r < result.rows.size(); ++r) {
      const ledger::QueryRow& row = result.rows[r];
      s += r ? ",{" : "{";
      for (size_t i = 0; i < row.keys.size(); ++i)
        s +=
            "\"" + json_escape(spec.group_by[i].label) + "\":\"" + json_escape(row.keys[i]) + "\",";
      s += "\"" + metric + "\":" + format_metric(spec.metric, row.value, false);
      // A ratio's or maximum's rows are not parts of its total: no share.
      const bool additive = ledger::metric_is_additive(spec.metric);
      s += ",\"share\":" + json_number_or_null(additive ? percent_text(row.value, result.total, 2) : "") + "}";
    }
    s += "],\"total\":" + format_metric(spec.metric, result.total, false) + "}\n";
    std::fputs(s.c_str(), out);
    return;
  }
  std::vector<std::string> header;
  for (const ledger::Dimension& d : spec.group_by) header.push_back(d.label);
  header.push_back(metric);
  header.push_back("share");
  std::vector<std::vector<std::string>> cells;
  for (const ledger::QueryRow& row : result.rows) {
    std::vector<std::string> line = row.keys;
    line.push_back(format_metric(spec.metric, row.value, true));
    line.push_back(ledger::metric_is_additive(spec.metric)
                       ? with_percent_sign(percent_text(row.value, result.total, 1))
                       : "");
    cells.push_back(std::move(line));
  }
  std::vector<std::string> total_line(spec.group_by.size(), "");
  if (!total_line.empty()) total_line[0] = "total";
  total_line.push_back(format_metric(spec.metric, result.total, true));
  total_line.push_back(result.rows.empty() || !ledger::metric_is_additive(spec.metric) ? "" : "100.0%");
  print_aligned(out, header, cells, spec.group_by.size(), &total_line);
}

Result<Period> parse_period(const std::string& text) {
  auto bad = [&] {
    return make_error(ErrorCode::kInvalidArgument,
                      "--period " + text +
                          ": expected a year (2025), a quarter (2025-Q4), a month "
                          "(2025-10) or a day (2025-10-07)");
  };
  std::string_view t = text;
  if (t.size() < 4 || !all_digits(t.substr(0, 4))) return bad();
  int64_t year = std::stoll(std::string(t.substr(0, 4)));
  EpochSeconds year_start = days_from_civil(year, 1, 1) * 86400;
  if (t.size() == 4) return Period{year_start, add_months(year_start, 12)};
  if (t.size() == 7 && t[4] == '-' && (t[5] == 'Q' || t[5] == 'q') && t[6] >= '1' && t[6] <= '4') {
    EpochSeconds from = add_months(year_start, (t[6] - '1') * 3);
    return Period{from, add_months(from, 3)};
  }
  if (t.size() == 7 && t[4] == '-' && all_digits(t.substr(5))) {
    int month = std::stoi(std::string(t.substr(5)));
    if (month < 1 || month > 12) return bad();
    EpochSeconds from = add_months(year_start, month - 1);
    return Period{from, add_months(from, 1)};
  }
  if (t.size() == 10) {
    auto day = parse_timestamp(t);
    if (!day || floor_day(*day) != *day) return bad();
    return Period{*day, *day + 86400};
  }
  return bad();
}

Period previous_period(const Period& p) {
  if (floor_month(p.from) == p.from && floor_month(p.to) == p.to && p.to > p.from) {
    int64_t months = 0;
    for (EpochSeconds t = p.from; t < p.to; t = add_months(t, 1)) ++months;
    return Period{add_months(p.from, -months), p.from};
  }
  return Period{p.from - (p.to - p.from), p.from};
}

Result<void> read_time_flags(const std::string& period, const std::string& from,
                             const std::string& to, std::optional<EpochSeconds>& from_out,
                             std::optional<EpochSeconds>& to_out) {
  if (!period.empty()) {
    if (!from.empty() || !to.empty())
      return make_error(ErrorCode::kInvalidArgument,
                        "--period " + period +
                            " names the whole range; drop --from and --to, or "
                            "drop --period");
    auto p = parse_period(period);
    if (!p) return Unexpected{p.error()};
    from_out = p->from;
    to_out = p->to;
    return {};
  }
  if (!from.empty()) {
    auto t = parse_time_bound("--from", from);
    if (!t) return Unexpected{t.error()};
    from_out = *t;
  }
  if (!to.empty()) {
    auto t = parse_time_bound("--to", to);
    if (!t) return Unexpected{t.error()};
    to_out = *t;
  }
  if (from_out && to_out && *to_out <= *from_out)
    return make_error(ErrorCode::kInvalidArgument, "--to " + to + " is not after --from " + from +
                                                       "; --to is the exclusive end");
  return {};
}

void append_rules_json(std::string& s, const std::vector<allocate::SharedCostRule>& rules,
                       const std::vector<allocate::RuleOutcome>& outcomes, ledger::Metric metric) {
  s += "[";
  for (size_t k = 0; k < rules.size(); ++k) {
    const allocate::SharedCostRule& rule = rules[k];
    s += k ? ",{" : "{";
    s += "\"name\":";
    append_json_string(s, rule.name);
    s += std::string(",\"split\":\"") + allocate::split_method_name(rule.split) + "\"";
    if (rule.split == allocate::SplitMethod::kProportional)
      s += std::string(",\"driver\":\"") + allocate::split_driver_name(rule.driver) + "\"";
    s += ",\"by\":";
    append_json_string(s, rule.by);
    if (k < outcomes.size()) {
      const allocate::RuleOutcome& o = outcomes[k];
      s += ",\"matched\":" + format_metric(metric, o.matched, false) +
           ",\"allocated\":" + format_metric(metric, o.allocated, false) +
           ",\"unallocated\":" + format_metric(metric, o.unallocated, false) + ",\"receivers\":[";
      for (size_t i = 0; i < o.receivers.size(); ++i) {
        if (i) s += ",";
        append_json_string(s, o.receivers[i]);
      }
      s += "]";
    }
    s += "}";
  }
  s += "]";
}

void print_rule_lines(std::FILE* out, const std::vector<allocate::SharedCostRule>& rules,
                      const std::vector<allocate::RuleOutcome>& outcomes, ledger::Metric metric) {
  if (rules.empty()) {
    std::fputs("no shared_costs rules in the policy: only tags allocate (see docs/allocation.md)\n",
               out);
    return;
  }
  for (size_t k = 0; k < rules.size() && k < outcomes.size(); ++k) {
    const allocate::SharedCostRule& rule = rules[k];
    const allocate::RuleOutcome& o = outcomes[k];
    std::string how = allocate::split_method_name(rule.split);
    if (rule.split == allocate::SplitMethod::kProportional)
      how += std::string(" to ") + allocate::split_driver_name(rule.driver);
    std::string line = "rule " + rule.name + ": " + format_metric(metric, o.allocated, true) +
                       " split " + how + " over " + rule.by + " (" +
                       std::to_string(o.receivers.size()) + " receivers)";
    if (o.unallocated != 0)
      line += "; " + format_metric(metric, o.unallocated, true) + " had no receiver and stays put";
    if (o.matched == 0 && o.unallocated == 0) line += "; matched no cost in this period";
    std::fprintf(out, "%s\n", line.c_str());
  }
}

Result<std::optional<Period>> latest_month(ledger::Ledger& ledger) {
  ledger::QuerySpec spec;
  auto month = ledger::parse_dimension("month");
  if (!month) return Unexpected{month.error()};
  spec.group_by.push_back(*month);
  auto months = ledger.query(spec);
  if (!months) return Unexpected{months.error()};
  if (months->rows.empty()) return std::optional<Period>();
  auto range = parse_period(months->rows.back().keys[0]);  // time columns come ascending
  if (!range) return Unexpected{range.error()};
  return std::optional<Period>(*range);
}

void print_report_view(std::FILE* out, const ReportView& view, OutputFormat format) {
  std::string metric(ledger::metric_name(view.metric));
  __int128 direct_total = 0;
  std::vector<__int128> shared_totals(view.rules.size(), 0);
  for (const ReportView::Row& row : view.rows) {
    direct_total += row.direct;
    for (size_t r = 0; r < row.shared.size() && r < shared_totals.size(); ++r)
      shared_totals[r] += row.shared[r];
  }

  if (format == OutputFormat::kCsv) {
    std::string line;
    for (const std::string& l : view.labels) line += csv_escape(l) + ",";
    if (view.allocated) line += "direct,shared,";
    line += metric;
    if (view.compare) line += ",previous,change,change_percent";
    line += ",share\n";
    std::fputs(line.c_str(), out);
    for (const ReportView::Row& row : view.rows) {
      line.clear();
      for (const std::string& k : row.keys) line += csv_escape(k) + ",";
      if (view.allocated)
        line += format_metric(view.metric, row.direct, false) + "," +
                shared_sum_text(view.metric, row.shared, false) + ",";
      line += format_metric(view.metric, row.value, false);
      if (view.compare)
        line += "," + format_metric(view.metric, row.previous, false) + "," +
                format_metric(view.metric, row.value - row.previous, false) + "," +
                change_percent(row.value, row.previous, 2);
      line += "," + percent_text(row.value, view.total, 2) + "\n";
      std::fputs(line.c_str(), out);
    }
    return;
  }

  if (format == OutputFormat::kJson) {
    std::string s = "{\"metric\":\"" + metric + "\"";
    if (view.period)
      s += ",\"from\":\"" + format_timestamp(view.period->from) + "\",\"to\":\"" +
           format_timestamp(view.period->to) + "\"";
    if (view.allocated) s += ",\"allocated\":true";
    s += ",\"rows\":[";
    for (size_t r = 0; r < view.rows.size(); ++r) {
      const ReportView::Row& row = view.rows[r];
      s += r ? ",{" : "{";
      for (size_t i = 0; i < row.keys.size(); ++i)
        s += "\"" + json_escape(view.labels[i]) + "\":\"" + json_escape(row.keys[i]) + "\",";
      if (view.allocated) {
        s += "\"direct\":" + format_metric(view.metric, row.direct, false) +
             ",\"shared\":" + shared_sum_text(view.metric, row.shared, false) +
             ",\"shared_by_rule\":{";
        bool first = true;
        for (size_t k = 0; k < row.shared.size() && k < view.rules.size(); ++k) {
          if (row.shared[k] == 0) continue;
          s += (first ? "\"" : ",\"") + json_escape(view.rules[k].name) +
               "\":" + format_metric(view.metric, row.shared[k], false);
          first = false;
        }
        s += "},";
      }
      s += "\"" + metric + "\":" + format_metric(view.metric, row.value, false);
      if (view.compare)
        s += ",\"previous\":" + format_metric(view.metric, row.previous, false) +
             ",\"change\":" + format_metric(view.metric, row.value - row.previous, false) +
             ",\"change_percent\":" +
             json_number_or_null(change_percent(row.value, row.previous, 2));
      s += ",\"share\":" + json_number_or_null(percent_text(row.value, view.total, 2)) + "}";
    }
    s += "],\"total\":" + format_metric(view.metric, view.total, false);
    if (view.allocated)
      s += ",\"direct_total\":" + format_metric(view.metric, direct_total, false) +
           ",\"shared_total\":" + shared_sum_text(view.metric, shared_totals, false);
    if (view.compare)
      s += ",\"previous\":{\"from\":\"" + format_timestamp(view.previous.from) + "\",\"to\":\"" +
           format_timestamp(view.previous.to) +
           "\",\"total\":" + format_metric(view.metric, view.previous_total, false) +
           ",\"change\":" + format_metric(view.metric, view.total - view.previous_total, false) +
           ",\"change_percent\":" +
           json_number_or_null(change_percent(view.total, view.previous_total, 2)) + "}";
    if (view.allocated) {
      s += ",\"rules\":";
      append_rules_json(s, view.rules, view.outcomes, view.metric);
    }
    s += "}\n";
    std::fputs(s.c_str(), out);
    return;
  }

  std::vector<std::string> header = view.labels;
  if (view.allocated) {
    header.push_back("direct");
    header.push_back("shared");
  }
  header.push_back(metric);
  if (view.compare) {
    header.push_back("previous");
    header.push_back("change");
    header.push_back("change %");
  }
  header.push_back("share");
  std::vector<std::vector<std::string>> lines;
  for (const ReportView::Row& row : view.rows) {
    std::vector<std::string> line = row.keys;
    if (view.allocated) {
      line.push_back(format_metric(view.metric, row.direct, true));
      line.push_back(shared_sum_text(view.metric, row.shared, true));
    }
    line.push_back(format_metric(view.metric, row.value, true));
    if (view.compare) {
      line.push_back(format_metric(view.metric, row.previous, true));
      line.push_back(format_metric(view.metric, row.value - row.previous, true));
      std::string pct = change_percent(row.value, row.previous, 1);
      line.push_back(pct.empty() ? (row.value != 0 ? "new" : "") : pct + "%");
    }
    line.push_back(with_percent_sign(percent_text(row.value, view.total, 1)));
    lines.push_back(std::move(line));
  }
  std::vector<std::string> total_line(view.labels.size(), "");
  if (!total_line.empty()) total_line[0] = "total";
  if (view.allocated) {
    total_line.push_back(format_metric(view.metric, direct_total, true));
    total_line.push_back(shared_sum_text(view.metric, shared_totals, true));
  }
  total_line.push_back(format_metric(view.metric, view.total, true));
  if (view.compare) {
    total_line.push_back(format_metric(view.metric, view.previous_total, true));
    total_line.push_back(format_metric(view.metric, view.total - view.previous_total, true));
    total_line.push_back(with_percent_sign(change_percent(view.total, view.previous_total, 1)));
  }
  total_line.push_back(view.rows.empty() ? "" : "100.0%");
  print_aligned(out, header, lines, view.labels.size(), &total_line);
  if (view.compare)
    std::fprintf(out, "previous period: %s to %s (exclusive)\n",
                 format_date(view.previous.from).c_str(), format_date(view.previous.to).c_str());
  if (view.allocated) {
    print_rule_lines(out, view.rules, view.outcomes, view.metric);
  }
}

}  // namespace aifinops::cli
