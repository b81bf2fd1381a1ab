// aifinops kpi: the paper's KPIs over a period, with formulas, inputs and source records.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "analyze/business_inputs.h"
#include "analyze/kpi.h"
#include "cli/commands.h"
#include "cli/common.h"

namespace aifinops::cli {
namespace {

struct KpiFlags {
  std::string db;
  std::string config;
  std::vector<std::string> business;
  std::vector<std::string> by;
  std::string period = "all";
  std::string format = "table";
  int trend = 0;
};

std::string group_text(const analyze::Kpi& k) {
  std::string s;
  for (const auto& [dimension, value] : k.group)
    s += (s.empty() ? "" : " ") + dimension + "=" + value;
  return s.empty() ? "total" : s;
}

/// "inference cost $5,000.00; inference requests 100,000 requests"
std::string inputs_text(const analyze::Kpi& k) {
  std::string s;
  for (const analyze::KpiInput& in : k.inputs) {
    std::string value = in.value;
    size_t digits_from = !value.empty() && value[0] == '-' ? 1 : 0;
    bool numeric = value.size() > digits_from && value[digits_from] != '.' &&
                   value.find_first_not_of("0123456789.", digits_from) == std::string::npos &&
                   std::count(value.begin(), value.end(), '.') <= 1;
    auto money = in.unit == "USD" ? parse_decimal(value) : std::nullopt;
    if (money)
      value = analyze::display_money(money->nanos);
    else if (numeric)
      value = group_thousands(value) + (in.unit.empty() ? "" : " " + in.unit);
    s += (s.empty() ? "" : "; ") + in.name + " " + value;
  }
  return s;
}

void print_table(std::FILE* out, const analyze::KpiReport& report) {
  std::string period =
      report.from || report.to
          ? (report.from ? format_date(*report.from) : std::string("the start")) + " to " +
                (report.to ? format_date(*report.to) + " (exclusive)" : std::string("the end"))
          : std::string("the whole ledger");
  std::string files;
  for (const std::string& f : report.business_files) files += (files.empty() ? "" : ", ") + f;
  std::fprintf(out, "KPIs over %s; business inputs: %s\n", period.c_str(),
               files.empty() ? "none" : files.c_str());
  size_t width = 5;
  for (const analyze::Kpi& k : report.kpis) width = std::max(width, group_text(k).size());
  width = std::min<size_t>(width, 48);
  const std::string indent(width + 4, ' ');
  // One section per KPI; a note every row of a section shares is printed once, under it.
  for (size_t begin = 0; begin < report.kpis.size();) {
    const analyze::Kpi& first = report.kpis[begin];
    size_t end = begin;
    bool same_note = true;
    while (end < report.kpis.size() && report.kpis[end].id == first.id) {
      same_note &= report.kpis[end].note == first.note;
      ++end;
    }
    std::fprintf(out, "\n%s = %s\n", first.name.c_str(), first.formula.c_str());
    for (size_t i = begin; i < end; ++i) {
      const analyze::Kpi& k = report.kpis[i];
      std::string group = group_text(k);
      if (group.size() < width) group += std::string(width - group.size(), ' ');
      std::string detail = inputs_text(k);
      std::fprintf(out, "  %s  %s%s%s\n", group.c_str(), k.value ? k.display.c_str() : "n/a",
                   detail.empty() ? "" : "  <- ", detail.c_str());
      if (!same_note && !k.note.empty())
        std::fprintf(out, "%snote: %s\n", indent.c_str(), k.note.c_str());
    }
    if (same_note && !first.note.empty()) std::fprintf(out, "  note: %s\n", first.note.c_str());
    begin = end;
  }
  std::fprintf(out,
               "\nThe records behind each KPI: --format json gives its source and an `aifinops "
               "report` command.\n");
}

void print_csv(std::FILE* out, const analyze::KpiReport& report) {
  std::fputs("id,name,group,value,unit,display,formula,inputs,source,command,note\n", out);
  for (const analyze::Kpi& k : report.kpis) {
    std::string group;
    for (const auto& [dimension, value] : k.group)
      group += (group.empty() ? "" : ";") + dimension + "=" + value;
    std::string inputs;
    for (const analyze::KpiInput& in : k.inputs)
      inputs += (inputs.empty() ? "" : "; ") + in.name + "=" + in.value +
                (in.unit.empty() ? "" : " " + in.unit);
    std::string line =
        csv_escape(k.id) + "," + csv_escape(k.name) + "," + csv_escape(group) + "," +
        (k.value ? format_decimal(*k.value) : std::string()) + "," + csv_escape(k.unit) + "," +
        csv_escape(k.display) + "," + csv_escape(k.formula) + "," + csv_escape(inputs) + "," +
        csv_escape(k.source) + "," + csv_escape(k.command) + "," + csv_escape(k.note) + "\n";
    std::fputs(line.c_str(), out);
  }
}

int run_kpi(const KpiFlags& flags, const CommandEnv& env) {
  auto period = analyze::parse_period(flags.period);
  if (!period) return env.usage_error(period.error().message);
  if (flags.trend != 0) {
    if (flags.trend < 1 || flags.trend > 36)
      return env.usage_error("--trend " + std::to_string(flags.trend) +
                             ": expected 1 to 36 months");
    if (output_format_from_name(flags.format) != OutputFormat::kJson)
      return env.usage_error("--trend: the trend is given with --format json only");
    if (!period->to)
      return env.usage_error("--trend needs a --period with an end, e.g. --period 2025-10");
  }
  auto policy = env.policy(flags.config);
  if (!policy) return env.report_error(policy.error());
  analyze::KpiQuery query;
  query.from = period->from;
  query.to = period->to;
  for (const std::string& name : flags.by) {
    auto d = resolve_dimension(*policy, name);
    if (!d) return env.usage_error("--by: " + d.error().message);
    if (d->kind == ledger::Dimension::Kind::kTime)
      return env.usage_error(
          "--by " + name +
          ": KPIs are over a period; choose it with --period (e.g. --period 2025-10)");
    query.group_by.push_back(*d);
  }
  auto business = analyze::load_business_files(business_files(flags.business, env));
  if (!business) return env.report_error(business.error());
  auto ledger = env.ledger(flags.db);
  if (!ledger) return env.report_error(ledger.error());
  analyze::KpiContext context;
  context.business = &*business;
  context.tags = &policy->tags;
  auto report = analyze::compute_kpis(**ledger, query, context);
  if (!report) return env.report_error(report.error());
  switch (output_format_from_name(flags.format)) {
    case OutputFormat::kJson:
      if (flags.trend > 0) {
        auto trend = analyze::compute_kpi_trend(**ledger, query, context, flags.trend);
        if (!trend) return env.report_error(trend.error());
        // The report's object with one more member: "trend", the months oldest first.
        std::string json = analyze::kpi_report_json(*report);
        json.erase(json.size() - 2);  // "}\n"
        json += ",\"trend\":" + analyze::kpi_trend_json(*trend) + "}\n";
        std::fputs(json.c_str(), env.out);
        break;
      }
      std::fputs(analyze::kpi_report_json(*report).c_str(), env.out);
      break;
    case OutputFormat::kCsv:
      print_csv(env.out, *report);
      break;
    case OutputFormat::kTable:
      print_table(env.out, *report);
      break;
  }
  return kExitOk;
}

}  // namespace

void add_kpi_command(CLI::App& app, int& exit_code, const CommandEnv& env) {
  auto flags = std::make_shared<KpiFlags>();
  CLI::App* cmd = app.add_subcommand(
      "kpi",
      "The FinOps-for-AI KPIs: cost per inference, per token and per API call, training cost "
      "efficiency, utilisation, anomalies, ROI, time to value, time to first prompt, model quality "
      "gap.");
  cmd->add_option("--db", flags->db, "Ledger path or PostgreSQL URL (default: $AIFINOPS_DB or ./aifinops.db; docs/postgresql.md)");
  cmd->add_option("--config", flags->config,
                  "Policy file: custom dimensions for --by and business scopes "
                  "(default: $AIFINOPS_CONFIG, or ./policy.yaml if present)");
  cmd->add_option(
      "--business", flags->business,
      "Business inputs: business.yaml (value, milestones, accuracy, quality scores, busy "
      "GPU-hours) or a CSV of project,month,value_usd; repeat for more "
      "(default: ./business.yaml if present)");
  cmd->add_option("--by", flags->by,
                  "Group the ledger KPIs by dimensions (team, project, model, ...)")
      ->delimiter(',');
  cmd->add_option(
         "--period", flags->period,
         "2025-10 (a month), 2025-Q3, 2025 (a year), 2025-06-01..2025-07-01 (end exclusive) or all")
      ->capture_default_str();
  cmd->add_option("--format", flags->format, "Output format")
      ->check(CLI::IsMember({"table", "csv", "json"}))
      ->capture_default_str();
  cmd->add_option("--trend", flags->trend,
                  "With --format json: also each KPI's value in each of the N months that end "
                  "with the period's last month (1 to 36), read with one grouped query per sum");
  cmd->footer(
      "Examples:\n"
      "  aifinops kpi --period 2025-10\n"
      "  aifinops kpi --period 2025-10 --trend 6 --format json\n"
      "  aifinops kpi --by team --period 2025-Q3 --business business.yaml\n"
      "  aifinops kpi --business business.yaml --business value.csv --format json\n"
      "Formulas, inputs and the business.yaml format: docs/kpi-and-maturity.md.\n"
      "Exit codes: 0 ok, 1 error, 2 bad flags.");
  cmd->callback([flags, &exit_code, env] { exit_code = run_kpi(*flags, env); });
}

}  // namespace aifinops::cli
