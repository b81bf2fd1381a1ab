// aifinops report: grouped sums over the ledger (showback).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/report_output.h"

namespace aifinops::cli {
namespace {

struct ReportFlags {
  std::string db;
  std::string config;
  std::vector<std::string> by;
  std::string metric = "effective_cost";
  std::string from, to;
  std::string grain;
  std::vector<std::string> filters;
  std::string format = "table";
};

int run_report(const ReportFlags& flags) {
  ledger::QuerySpec spec;
  if (!ledger::metric_from_name(flags.metric, spec.metric)) {
    return usage_error("--metric " + flags.metric +
                       ": allowed values are effective_cost, billed_cost, list_cost, "
                       "contracted_cost, cache_savings, quantity, tokens, input_tokens, output_tokens, "
                       "cached_tokens, requests, gpu_hours");
  }
  if (!flags.grain.empty()) {
    auto d = ledger::parse_dimension(flags.grain);
    if (!d || d->kind != ledger::Dimension::Kind::kTime || d->grain == ledger::Grain::kHour)
      return usage_error("--grain " + flags.grain + ": allowed values are day, week, month");
    spec.group_by.push_back(*d);
  }
  auto policy = load_policy(flags.config);
  if (!policy) return report_error(policy.error());
  for (const std::string& name : flags.by) {
    auto d = resolve_dimension(*policy, name);
    if (!d) return usage_error("--by: " + d.error().message);
    bool repeated = std::any_of(spec.group_by.begin(), spec.group_by.end(),
                                [&](const ledger::Dimension& g) { return g.label == d->label; });
    if (!repeated) spec.group_by.push_back(*d);  // "--grain month --by month" is one column
  }
  auto filters = parse_filters(*policy, flags.filters);
  if (!filters) return usage_error(filters.error().message);
  spec.filters = std::move(*filters);
  if (!flags.from.empty()) {
    auto t = parse_time_bound("--from", flags.from);
    if (!t) return usage_error(t.error().message);
    spec.from = *t;
  }
  if (!flags.to.empty()) {
    auto t = parse_time_bound("--to", flags.to);
    if (!t) return usage_error(t.error().message);
    spec.to = *t;
  }
  auto ledger = open_existing_ledger(flags.db);
  if (!ledger) return report_error(ledger.error());
  auto result = (*ledger)->query(spec);
  if (!result) return report_error(result.error());
  if (!ledger::metric_is_money(spec.metric)) {
    // Groups with no tokens, GPU-hours or requests say nothing: a cost of 0 can (credits).
    std::erase_if(result->rows, [](const ledger::QueryRow& r) { return r.value == 0; });
  }
  print_report(stdout, spec, *result, output_format_from_name(flags.format));
  return kExitOk;
}

}  // namespace

void add_report_command(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<ReportFlags>();
  CLI::App* cmd = app.add_subcommand(
      "report", "Sum a metric over the ledger, grouped by dimensions and time (showback).");
  cmd->add_option("--db", flags->db, "Ledger path (default: $AIFINOPS_DB or ./aifinops.db)");
  cmd->add_option("--config", flags->config,
                  "Policy file; its custom dimensions can be used in --by and --filter "
                  "(default: $AIFINOPS_CONFIG, or ./policy.yaml if present)");
  cmd->add_option("--by", flags->by,
                  "Dimensions to group by, comma-separated: provider, publisher, service, "
                  "service_category, region, resource, resource_type, sku, charge_category, "
                  "billing_account, sub_account, model, operation, gpu, currency, team, project, "
                  "environment, cost_center, workload, usage_type, purpose, criticality, "
                  "shutdown_eligible, a policy's custom dimensions, tag:RAWKEY, hour, day, week, "
                  "month; or any column name in docs/cli.md")
      ->delimiter(',');
  cmd->add_option("--metric", flags->metric,
                  "effective_cost, billed_cost, list_cost, contracted_cost, cache_savings, quantity, tokens, "
                  "input_tokens, output_tokens, cached_tokens, requests, gpu_hours")
      ->capture_default_str();
  cmd->add_option("--from", flags->from, "Start, inclusive, on charge period start (2025-10-01)");
  cmd->add_option("--to", flags->to, "End, exclusive (2025-11-01)");
  cmd->add_option("--grain", flags->grain, "Add a time column: day, week or month");
  cmd->add_option("--filter", flags->filters, "DIM=VALUE; repeat for more; (none) matches missing");
  cmd->add_option("--format", flags->format, "Output format")
      ->check(CLI::IsMember({"table", "csv", "json"}))
      ->capture_default_str();
  cmd->footer(
      "Examples:\n"
      "  aifinops report --by service,team --grain month\n"
      "  aifinops report --by team,model --metric tokens --from 2025-10 --to 2025-11\n"
      "  aifinops report --by tag:Owner --filter environment=production --format csv\n"
      "Exit codes: 0 ok, 1 error, 2 bad flags.");
  cmd->callback([flags, &exit_code] { exit_code = run_report(*flags); });
}

}  // namespace aifinops::cli
