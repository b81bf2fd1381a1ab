// aifinops anomalies: spikes in spend or usage against a seasonal baseline, each explained
// by the sub-dimension values that drove it (docs/anomalies.md).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "analyze/anomaly.h"
#include "cli/commands.h"
#include "cli/common.h"

namespace aifinops::cli {
namespace {

struct AnomaliesFlags {
  std::string db;
  std::string config;
  std::vector<std::string> by;
  std::string metric = "effective_cost";
  std::vector<std::string> filters;
  std::string since, to;
  std::string grain = "day";
  double min_impact = 0;
  std::string direction = "up";
  bool include_recurring = false;
  size_t limit = 20;
  std::string format = "table";
};

/// Money and GPU-hours to cents, counts to whole units; thousands grouped for tables.
std::string amount(ledger::Metric metric, double v, bool group) {
  const int places = ledger::metric_is_decimal(metric) ? 2 : 0;
  const std::string s = fixed(v, places);
  return group ? group_thousands(s) : s;
}

std::string signed_amount(ledger::Metric metric, double v) {
  const std::string s = amount(metric, v, true);
  return v > 0 && s.find_first_not_of("0.,") != std::string::npos ? "+" + s : s;
}

std::string time_text(const analyze::AnomalyQuery& query, EpochSeconds t) {
  return query.grain == ledger::Grain::kHour ? format_timestamp(t) : format_date(t);
}

/// "model=gpt-4o (92%), resource_name=chat-prod (92%)"
std::string explanation_text(const analyze::Anomaly& a, const char* separator) {
  std::string s;
  for (const analyze::Contributor& c : a.explained_by) {
    if (!s.empty()) s += separator;
    s += c.dimension + "=" + c.value + " (" + fixed(std::round(c.share * 100), 0) + "%)";
  }
  return s;
}

void print_table(std::FILE* out, const analyze::AnomalyQuery& query,
                 const analyze::AnomalyRun& run) {
  std::vector<std::string> header = {query.grain == ledger::Grain::kHour ? "hour" : "day"};
  for (const ledger::Dimension& d : query.group_by) header.push_back(d.label);
  const size_t numeric_from = header.size();
  for (const char* h : {"actual", "expected", "impact", "score"}) header.push_back(h);
  header.push_back("explained by");
  std::vector<std::vector<std::string>> rows;
  for (const analyze::Anomaly& a : run.anomalies) {
    std::vector<std::string> row = {time_text(query, a.time)};
    row.insert(row.end(), a.keys.begin(), a.keys.end());
    row.push_back(amount(query.metric, a.point.actual, true));
    row.push_back(amount(query.metric, a.point.expected, true));
    row.push_back(signed_amount(query.metric, a.point.impact));
    row.push_back(fixed(a.point.score, 1));
    row.push_back(explanation_text(a, ", "));
    rows.push_back(std::move(row));
  }
  if (!rows.empty()) {
    std::vector<size_t> width(header.size(), 0);
    auto measure = [&](const std::vector<std::string>& line) {
      for (size_t i = 0; i < line.size(); ++i) width[i] = std::max(width[i], line[i].size());
    };
    measure(header);
    for (const auto& row : rows) measure(row);
    auto print_line = [&](const std::vector<std::string>& line) {
      std::string s;
      for (size_t i = 0; i < line.size(); ++i) {
        const size_t pad = width[i] - line[i].size();
        if (i > 0) s += "  ";
        if (i >= numeric_from && i + 1 < line.size())
          s += std::string(pad, ' ') + line[i];
        else
          s += line[i] + (i + 1 < line.size() ? std::string(pad, ' ') : "");
      }
      while (!s.empty() && s.back() == ' ') s.pop_back();
      std::fprintf(out, "%s\n", s.c_str());
    };
    print_line(header);
    size_t total_width = 0;
    for (size_t i = 0; i + 1 < width.size(); ++i) total_width += width[i] + 2;
    total_width += header.back().size();  // the explanations run on, as long as they are
    std::fprintf(out, "%s\n", std::string(total_width, '-').c_str());
    for (const auto& row : rows) print_line(row);
    std::fprintf(out, "\n");
  }
  std::string summary = run.found == 0 ? "No anomalies"
                                       : group_thousands((int64_t)run.found) +
                                             (run.found == 1 ? " anomaly" : " anomalies");
  summary += " in " + group_thousands((int64_t)run.series) + " series (" +
             group_thousands((int64_t)run.points) + " " +
             std::string(ledger::metric_name(query.metric)) + " points scored";
  if (run.end_bucket > run.first_bucket)
    summary +=
        ", data " + time_text(query, run.first_bucket) + " to " +
        time_text(query, run.end_bucket - (query.grain == ledger::Grain::kHour ? 3600 : 86400));
  summary += ")";
  if (run.anomalies.size() < run.found)
    summary +=
        "; the newest " + std::to_string(run.anomalies.size()) + " shown (--limit 0 for all)";
  std::fprintf(out, "%s.\n", summary.c_str());
}

void print_csv(std::FILE* out, const analyze::AnomalyQuery& query, const analyze::AnomalyRun& run) {
  std::string line = "time";
  for (const ledger::Dimension& d : query.group_by) line += "," + csv_escape(d.label);
  line += ",expected,lower,upper,actual,impact,score,explained_by\n";
  std::fputs(line.c_str(), out);
  for (const analyze::Anomaly& a : run.anomalies) {
    line = format_timestamp(a.time);
    for (const std::string& k : a.keys) line += "," + csv_escape(k);
    for (double v :
         {a.point.expected, a.point.lower, a.point.upper, a.point.actual, a.point.impact})
      line += "," + amount(query.metric, v, false);
    line += "," + fixed(a.point.score, 2) + "," + csv_escape(explanation_text(a, "; ")) + "\n";
    std::fputs(line.c_str(), out);
  }
}

int run_anomalies(const AnomaliesFlags& flags, const CommandEnv& env) {
  analyze::AnomalyQuery query;
  if (!ledger::metric_from_name(flags.metric, query.metric)) {
    return env.usage_error(
        "--metric " + flags.metric +
        ": allowed values are effective_cost, billed_cost, list_cost, contracted_cost, "
        "cache_savings, quantity, tokens, input_tokens, output_tokens, cached_tokens, "
        "requests, gpu_hours");
  }
  query.grain = flags.grain == "hour" ? ledger::Grain::kHour : ledger::Grain::kDay;
  query.direction = flags.direction == "down"   ? analyze::AnomalyDirection::kDown
                    : flags.direction == "both" ? analyze::AnomalyDirection::kBoth
                                                : analyze::AnomalyDirection::kUp;
  if (!(flags.min_impact >= 0) || !std::isfinite(flags.min_impact))
    return env.usage_error("--min-impact " + fixed(flags.min_impact, 2) +
                           ": expected an amount >= 0");
  query.min_impact = flags.min_impact;
  query.include_recurring = flags.include_recurring;
  query.limit = flags.limit;
  auto policy = env.policy(flags.config);
  if (!policy) return env.report_error(policy.error());
  for (const std::string& name : flags.by) {
    auto d = resolve_dimension(*policy, name);
    if (!d) return env.usage_error("--by: " + d.error().message);
    if (d->kind == ledger::Dimension::Kind::kTime)
      return env.usage_error("--by " + name +
                             ": series are already by day (or by hour with --grain hour)");
    bool repeated = std::any_of(query.group_by.begin(), query.group_by.end(),
                                [&](const ledger::Dimension& g) { return g.label == d->label; });
    if (!repeated) query.group_by.push_back(*d);
  }
  auto filters = parse_filters(*policy, flags.filters);
  if (!filters) return env.usage_error(filters.error().message);
  query.filters = std::move(*filters);
  if (!flags.since.empty()) {
    auto t = parse_time_bound("--since", flags.since);
    if (!t) return env.usage_error(t.error().message);
    query.since = *t;
  }
  if (!flags.to.empty()) {
    auto t = parse_time_bound("--to", flags.to);
    if (!t) return env.usage_error(t.error().message);
    // Whole buckets only: the day rollups answer, and a partial last bucket would look low.
    const int64_t step = query.grain == ledger::Grain::kHour ? 3600 : 86400;
    query.to = *t - (((*t % step) + step) % step);
  }
  if (query.since && query.to && *query.to <= *query.since)
    return env.usage_error("--to must be after --since");

  auto ledger = env.ledger(flags.db);
  if (!ledger) return env.report_error(ledger.error());
  auto run = analyze::run_anomaly_detection(**ledger, query);
  if (!run) return env.report_error(run.error());
  switch (output_format_from_name(flags.format)) {
    case OutputFormat::kJson: {
      std::string json = analyze::anomaly_run_json(*run, query, true) + "\n";
      std::fputs(json.c_str(), env.out);
      break;
    }
    case OutputFormat::kCsv:
      print_csv(env.out, query, *run);
      break;
    case OutputFormat::kTable:
      print_table(env.out, query, *run);
      break;
  }
  return kExitOk;
}

}  // namespace

void add_anomalies_command(CLI::App& app, int& exit_code, const CommandEnv& env) {
  auto flags = std::make_shared<AnomaliesFlags>();
  CLI::App* cmd = app.add_subcommand(
      "anomalies",
      "Find spikes in spend or usage against a seasonal baseline (weekly pattern and trend), "
      "each explained by the models, resources, services or keys that drove it.");
  cmd->add_option("--db", flags->db, "Ledger path or PostgreSQL URL (default: $AIFINOPS_DB or ./aifinops.db; docs/postgresql.md)");
  cmd->add_option("--config", flags->config,
                  "Policy file; its custom dimensions can be used in --by and --filter "
                  "(default: $AIFINOPS_CONFIG, or ./policy.yaml if present)");
  cmd->add_option("--by", flags->by,
                  "One series per value of these dimensions, comma-separated (team, project, "
                  "service, model, ... as in 'report --by'); default: one total series")
      ->delimiter(',');
  cmd->add_option(
         "--metric", flags->metric,
         "effective_cost, billed_cost, list_cost, contracted_cost, cache_savings, quantity, "
         "tokens, input_tokens, output_tokens, cached_tokens, requests, gpu_hours")
      ->capture_default_str();
  cmd->add_option("--filter", flags->filters, "DIM=VALUE; repeat for more; (none) matches missing");
  cmd->add_option("--since", flags->since,
                  "Report anomalies from this date on (2025-10-01); the 13 weeks before it are "
                  "read as history. Default: the whole ledger");
  cmd->add_option("--to", flags->to, "End, exclusive (default: after the last data)");
  cmd->add_option("--grain", flags->grain,
                  "day (weekly seasonality, from the day rollups) or hour (daily seasonality, "
                  "from the records: for hourly data such as gateway traffic)")
      ->check(CLI::IsMember({"day", "hour"}))
      ->capture_default_str();
  cmd->add_option("--min-impact", flags->min_impact,
                  "Ignore anomalies whose |actual - expected| is below this (in the metric's "
                  "unit: USD for costs)")
      ->capture_default_str();
  cmd->add_option("--direction", flags->direction, "up (spikes), down (drops) or both")
      ->check(CLI::IsMember({"up", "down", "both"}))
      ->capture_default_str();
  cmd->add_flag("--include-recurring", flags->include_recurring,
                "Keep recurring charges (monthly fees, support, tax), which otherwise spike "
                "on the first day of every month");
  cmd->add_option("--limit", flags->limit, "Show (and explain) the newest N anomalies; 0 = all")
      ->capture_default_str();
  cmd->add_option("--format", flags->format, "Output format")
      ->check(CLI::IsMember({"table", "csv", "json"}))
      ->capture_default_str();
  cmd->footer(
      "Examples:\n"
      "  aifinops anomalies --by team --since 2025-10-01 --min-impact 100\n"
      "  aifinops anomalies --by team,project --metric tokens --format json\n"
      "  aifinops anomalies --filter team=search --grain hour --since 2025-10-20\n"
      "Method, flags and the JSON shape: docs/anomalies.md.\n"
      "Exit codes: 0 ok (anomalies or not), 1 error, 2 bad flags.");
  cmd->callback([flags, &exit_code, env] { exit_code = run_anomalies(*flags, env); });
}

}  // namespace aifinops::cli
