// aifinops report: grouped sums over the ledger (showback), optionally after the policy's
// shared-cost split (--allocated) and beside the previous period (--compare previous).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <map>
#include <memory>

#include "allocate/shared_costs.h"
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
  std::string from, to, period;
  std::string grain;
  std::vector<std::string> filters;
  std::string format = "table";
  bool allocated = false;
  std::string compare;
};

/// The rows and total of one period, as the view shows them.
struct PeriodRows {
  std::vector<ReportView::Row> rows;
  __int128 total = 0;
  std::vector<allocate::RuleOutcome> outcomes;
};

Result<PeriodRows> compute_rows(ledger::Ledger& ledger, const config::Policy& policy,
                                const ledger::QuerySpec& spec, bool allocated) {
  PeriodRows out;
  if (allocated) {
    allocate::AllocationRequest request;
    request.from = spec.from;
    request.to = spec.to;
    request.group_by = spec.group_by;
    request.filters = spec.filters;
    request.metric = spec.metric;
    auto allocation = allocate::allocate_costs(ledger, policy.tags, policy.shared_costs, request);
    if (!allocation) return Unexpected{allocation.error()};
    for (allocate::AllocatedRow& row : allocation->rows) {
      ReportView::Row r;
      r.value = row.total();
      r.keys = std::move(row.keys);
      r.direct = row.direct;
      r.shared = std::move(row.shared);
      out.rows.push_back(std::move(r));
    }
    out.total = allocation->total;
    out.outcomes = std::move(allocation->rules);
    return out;
  }
  auto result = ledger.query(spec);
  if (!result) return Unexpected{result.error()};
  for (ledger::QueryRow& row : result->rows) {
    // Groups with no tokens, GPU-hours or requests say nothing: a cost of 0 can (credits).
    if (!ledger::metric_is_money(spec.metric) && row.value == 0) continue;
    ReportView::Row r;
    r.keys = std::move(row.keys);
    r.value = row.value;
    out.rows.push_back(std::move(r));
  }
  out.total = result->total;
  return out;
}

int run_report(const ReportFlags& flags, const CommandEnv& env) {
  ledger::QuerySpec spec;
  if (!ledger::metric_from_name(flags.metric, spec.metric)) {
    return env.usage_error(
        "--metric " + flags.metric +
        ": allowed values are effective_cost, billed_cost, list_cost, "
        "contracted_cost, cache_savings, quantity, tokens, input_tokens, output_tokens, "
        "cached_tokens, requests, gpu_hours, gpu_observed_hours, gpu_utilization, "
        "gpu_memory_peak_mib, energy_kwh, co2e_kg");
  }
  if (!ledger::metric_is_additive(spec.metric) && (flags.allocated || !flags.compare.empty()))
    return usage_error("--metric " + flags.metric +
                       " is a ratio or a maximum: it cannot be allocated or compared as a sum");
  if (!flags.grain.empty()) {
    auto d = ledger::parse_dimension(flags.grain);
    if (!d || d->kind != ledger::Dimension::Kind::kTime || d->grain == ledger::Grain::kHour)
      return env.usage_error("--grain " + flags.grain + ": allowed values are day, week, month");
    spec.group_by.push_back(*d);
  }
  auto policy = env.policy(flags.config);
  if (!policy) return env.report_error(policy.error());
  for (const std::string& name : flags.by) {
    auto d = resolve_dimension(*policy, name);
    if (!d) return env.usage_error("--by: " + d.error().message);
    bool repeated = std::any_of(spec.group_by.begin(), spec.group_by.end(),
                                [&](const ledger::Dimension& g) { return g.label == d->label; });
    if (!repeated) spec.group_by.push_back(*d);  // "--grain month --by month" is one column
  }
  auto filters = parse_filters(*policy, flags.filters);
  if (!filters) return env.usage_error(filters.error().message);
  spec.filters = std::move(*filters);
  if (auto r = read_time_flags(flags.period, flags.from, flags.to, spec.from, spec.to); !r)
    return env.usage_error(r.error().message);
  bool compare = !flags.compare.empty();
  if (flags.allocated && !ledger::metric_is_money(spec.metric))
    return env.usage_error(
        "--allocated splits money: use --metric effective_cost, billed_cost, list_cost "
        "or contracted_cost (usage such as " +
        flags.metric + " stays where it happened)");
  if (compare) {
    if (!spec.from && spec.to)
      return env.usage_error(
          "--compare previous needs the start of the period: add --from, or use --period 2025-10");
    for (const ledger::Dimension& d : spec.group_by)
      if (d.kind == ledger::Dimension::Kind::kTime)
        return env.usage_error(
            "--compare previous compares each group with itself a period earlier; drop "
            "the time column (--grain or --by " +
            d.label + ")");
  }
  auto ledger = env.ledger(flags.db);
  if (!ledger) return env.report_error(ledger.error());
  if (compare && !spec.to) {
    // An open period ends with the ledger's latest month; no period at all is that month.
    auto latest = latest_month(**ledger);
    if (!latest) return env.report_error(latest.error());
    if (!*latest)
      return env.report_error(
          {ErrorCode::kNotFound, "the ledger has no records to compare; ingest a bill first"});
    if (!spec.from) spec.from = (*latest)->from;
    spec.to = std::max((*latest)->to, next_month(*spec.from));
  }
  OutputFormat format = output_format_from_name(flags.format);
  if (!flags.allocated && !compare) {
    auto result = (*ledger)->query(spec);
    if (!result) return env.report_error(result.error());
    if (!ledger::metric_is_money(spec.metric)) {
      // Groups with no tokens, GPU-hours or requests say nothing: a cost of 0 can (credits).
      std::erase_if(result->rows, [](const ledger::QueryRow& r) { return r.value == 0; });
    }
    print_report(env.out, spec, *result, format);
    return kExitOk;
  }

  ReportView view;
  for (const ledger::Dimension& d : spec.group_by) view.labels.push_back(d.label);
  view.metric = spec.metric;
  if (spec.from && spec.to) view.period = Period{*spec.from, *spec.to};
  auto current = compute_rows(**ledger, *policy, spec, flags.allocated);
  if (!current) return env.report_error(current.error());
  view.rows = std::move(current->rows);
  view.total = current->total;
  view.allocated = flags.allocated;
  if (flags.allocated) {
    view.rules = policy->shared_costs;
    view.outcomes = std::move(current->outcomes);
  }
  if (compare) {
    view.compare = true;
    view.previous = previous_period(Period{*spec.from, *spec.to});
    ledger::QuerySpec before = spec;
    before.from = view.previous.from;
    before.to = view.previous.to;
    auto previous = compute_rows(**ledger, *policy, before, flags.allocated);
    if (!previous) return env.report_error(previous.error());
    view.previous_total = previous->total;
    std::map<std::vector<std::string>, size_t> index;
    for (size_t i = 0; i < view.rows.size(); ++i) index[view.rows[i].keys] = i;
    for (ReportView::Row& row : previous->rows) {
      auto it = index.find(row.keys);
      if (it != index.end()) {
        view.rows[it->second].previous = row.value;
        continue;
      }
      // A group that had spend before and none now: shown with 0 so the change adds up.
      ReportView::Row gone;
      gone.keys = std::move(row.keys);
      gone.previous = row.value;
      gone.shared.assign(view.rules.size(), 0);
      view.rows.push_back(std::move(gone));
    }
    std::stable_sort(view.rows.begin(), view.rows.end(),
                     [](const ReportView::Row& a, const ReportView::Row& b) {
                       if (a.value != b.value) return a.value > b.value;
                       return a.previous > b.previous;
                     });
  }
  print_report_view(env.out, view, format);
  return kExitOk;
}

}  // namespace

void add_report_command(CLI::App& app, int& exit_code, const CommandEnv& env) {
  auto flags = std::make_shared<ReportFlags>();
  CLI::App* cmd = app.add_subcommand(
      "report", "Sum a metric over the ledger, grouped by dimensions and time (showback).");
  cmd->add_option("--db", flags->db, "Ledger path or PostgreSQL URL (default: $AIFINOPS_DB or ./aifinops.db; docs/postgresql.md)");
  cmd->add_option("--config", flags->config,
                  "Policy file: custom dimensions for --by and --filter, shared_costs rules for "
                  "--allocated (default: $AIFINOPS_CONFIG, or ./policy.yaml if present)");
  cmd->add_option("--by", flags->by,
                  "Dimensions to group by, comma-separated: provider, publisher, service, "
                  "service_category, region, resource, resource_type, sku, charge_category, "
                  "billing_account, sub_account, model, operation, gpu, currency, team, project, "
                  "environment, cost_center, workload, usage_type, purpose, criticality, "
                  "shutdown_eligible, a policy's custom dimensions, tag:RAWKEY, hour, day, week, "
                  "month; or any column name in docs/cli.md")
      ->delimiter(',');
  cmd->add_option("--metric", flags->metric,
                  "effective_cost, billed_cost, list_cost, contracted_cost, cache_savings, "
                  "quantity, tokens, "
                  "input_tokens, output_tokens, cached_tokens, requests, gpu_hours, "
                  "gpu_observed_hours, gpu_utilization (busy / observed GPU time, a fraction), "
                  "gpu_memory_peak_mib (a maximum), energy_kwh, co2e_kg (docs/gpu.md)")
      ->capture_default_str();
  cmd->add_option("--from", flags->from, "Start, inclusive, on charge period start (2025-10-01)");
  cmd->add_option("--to", flags->to, "End, exclusive (2025-11-01)");
  cmd->add_option(
      "--period", flags->period,
      "The whole range at once instead of --from/--to: a year (2025), quarter (2025-Q4), "
      "month (2025-10) or day (2025-10-07)");
  cmd->add_option("--grain", flags->grain, "Add a time column: day, week or month");
  cmd->add_option("--filter", flags->filters, "DIM=VALUE; repeat for more; (none) matches missing");
  cmd->add_flag("--allocated", flags->allocated,
                "Apply the policy's shared_costs rules first: shared cost moves to the teams (or "
                "other dimension) that use it; what no tag or rule covers shows as (unallocated)");
  cmd->add_option(
         "--compare", flags->compare,
         "previous: add the previous period of the same length, the change and the change "
         "in %; the period is --period or --from/--to (--from alone runs to the end of the "
         "latest month with records; neither is that month)")
      ->check(CLI::IsMember({"previous"}));
  cmd->add_option("--format", flags->format, "Output format")
      ->check(CLI::IsMember({"table", "csv", "json"}))
      ->capture_default_str();
  cmd->footer(
      "Examples:\n"
      "  aifinops report --by service,team --grain month\n"
      "  aifinops report --by team,model --metric tokens --from 2025-10 --to 2025-11\n"
      "  aifinops report --by tag:Owner --filter environment=production --format csv\n"
      "  aifinops report --by team --allocated --period 2025-10 --config policy.yaml\n"
      "  aifinops report --by team --period 2025-Q4 --compare previous --format json\n"
      "Shared-cost rules and the JSON of every mode: docs/allocation.md\n"
      "Exit codes: 0 ok, 1 error, 2 bad flags.");
  cmd->callback([flags, &exit_code, env] { exit_code = run_report(*flags, env); });
}

}  // namespace aifinops::cli
