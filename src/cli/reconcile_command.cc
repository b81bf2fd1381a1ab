// aifinops reconcile: metered AI usage (gateway, usage APIs, OTLP) against billed AI cost
// (FOCUS bills, cloud exports, cost APIs) per provider, model and day, with the share of AI
// spend that is metered and attributed (docs/reconcile.md).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "analyze/reconcile.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/report_output.h"

namespace aifinops::cli {
namespace {

struct ReconcileFlags {
  std::string db;
  std::vector<std::string> by = {"provider", "model"};
  std::string grain = "day";
  std::string from, to;
  std::string format = "table";
  bool differences_only = false;
};

std::string money(__int128 nanos) { return group_thousands(format_decimal_fixed(nanos, 2)); }

std::string percent(double f) { return fixed(f * 100.0, 1) + "%"; }

void print_table(std::FILE* out, const analyze::ReconcileReport& report, const ReconcileFlags& flags) {
  std::fprintf(out, "AI spend (service category \"AI and Machine Learning\", usage charges)%s%s\n",
               flags.from.empty() ? "" : (" from " + flags.from).c_str(),
               flags.to.empty() ? "" : (" to " + flags.to + " (exclusive)").c_str());
  std::fprintf(out, "  billed:             %s\n", money(report.billed_cost).c_str());
  std::fprintf(out, "  metered:            %s\n", money(report.metered_cost).c_str());
  std::fprintf(out, "  billed, unmetered:  %s  (spend that bypasses the gateway and usage feeds)\n",
               money(report.billed_not_metered).c_str());
  std::fprintf(out, "  metered, unbilled:  %s\n", money(report.metered_not_billed).c_str());
  std::fprintf(out, "  coverage:           %s metered, %s metered and attributed (team or project)\n\n",
               percent(report.coverage).c_str(), percent(report.attributed_coverage).c_str());
  std::vector<std::string> header;
  if (flags.grain != "none") header.push_back(flags.grain);
  for (const std::string& b : flags.by) header.push_back(b);
  for (const char* h : {"status", "billed", "metered", "difference", "billed tokens", "metered tokens",
                        "token difference"})
    header.push_back(h);
  std::vector<std::vector<std::string>> rows;
  for (const analyze::ReconcileRow& r : report.rows) {
    if (flags.differences_only && r.cost_difference() == 0 && r.token_difference() == 0) continue;
    std::vector<std::string> row;
    if (flags.grain != "none") row.push_back(r.period);
    for (const std::string& b : flags.by) row.push_back(b == "provider" ? r.provider : r.model);
    row.push_back(std::string(analyze::reconcile_status_name(r.status)));
    row.push_back(money(r.billed_cost));
    row.push_back(money(r.metered_cost));
    row.push_back(money(r.cost_difference()));
    row.push_back(group_thousands(r.billed_tokens));
    row.push_back(group_thousands(r.metered_tokens));
    row.push_back(group_thousands(r.token_difference()));
    rows.push_back(std::move(row));
  }
  // Numbers start after the keys and the status column.
  print_aligned(out, header, rows, (flags.grain != "none" ? 2 : 1) + flags.by.size(), nullptr);
}

void print_csv(std::FILE* out, const analyze::ReconcileReport& report, const ReconcileFlags& flags) {
  std::fputs("period,provider,model,status,billed_cost,metered_cost,cost_difference,metered_attributed_cost,"
             "billed_tokens,metered_tokens,token_difference\n",
             out);
  for (const analyze::ReconcileRow& r : report.rows) {
    if (flags.differences_only && r.cost_difference() == 0 && r.token_difference() == 0) continue;
    std::string line = csv_escape(r.period) + "," + csv_escape(r.provider) + "," + csv_escape(r.model) + "," +
                       std::string(analyze::reconcile_status_name(r.status)) + "," +
                       format_decimal_fixed(r.billed_cost, 2) + "," + format_decimal_fixed(r.metered_cost, 2) +
                       "," + format_decimal_fixed(r.cost_difference(), 2) + "," +
                       format_decimal_fixed(r.metered_attributed_cost, 2) + "," + std::to_string(r.billed_tokens) +
                       "," + std::to_string(r.metered_tokens) + "," + std::to_string(r.token_difference()) + "\n";
    std::fputs(line.c_str(), out);
  }
}

int run_reconcile(const ReconcileFlags& flags, const CommandEnv& env) {
  analyze::ReconcileQuery query;
  query.by_provider = query.by_model = false;
  for (const std::string& b : flags.by) {
    if (b == "provider") query.by_provider = true;
    else if (b == "model") query.by_model = true;
    else return env.usage_error("--by " + b + ": reconcile compares by provider and/or model");
  }
  query.grain = flags.grain == "month" ? ledger::Grain::kMonth
                : flags.grain == "none" ? ledger::Grain::kNone
                                        : ledger::Grain::kDay;
  if (!flags.from.empty()) {
    auto t = parse_time_bound("--from", flags.from);
    if (!t) return env.usage_error(t.error().message);
    query.from = *t;
  }
  if (!flags.to.empty()) {
    auto t = parse_time_bound("--to", flags.to);
    if (!t) return env.usage_error(t.error().message);
    query.to = *t;
  }
  auto opened = env.ledger(flags.db);
  if (!opened) return env.report_error(opened.error());
  auto catalog = (*opened)->load_catalog();
  if (!catalog) return env.report_error(catalog.error());
  auto report = analyze::reconcile(**opened, *catalog, query);
  if (!report) return env.report_error(report.error());
  switch (output_format_from_name(flags.format)) {
    case OutputFormat::kJson:
      std::fputs(analyze::reconcile_report_json(*report, query).c_str(), env.out);
      break;
    case OutputFormat::kCsv:
      print_csv(env.out, *report, flags);
      break;
    case OutputFormat::kTable:
      print_table(env.out, *report, flags);
      break;
  }
  return kExitOk;
}

}  // namespace

void add_reconcile_command(CLI::App& app, int& exit_code, const CommandEnv& env) {
  auto flags = std::make_shared<ReconcileFlags>();
  CLI::App* cmd = app.add_subcommand(
      "reconcile",
      "Metered AI usage (gateway, usage APIs, OTLP) against billed AI cost (FOCUS, cloud exports, "
      "cost APIs) per provider, model and day: differences, spend billed but never metered, and "
      "the share of AI spend that is metered and attributed.");
  cmd->add_option("--db", flags->db, "Ledger path or PostgreSQL URL (default: $AIFINOPS_DB or ./aifinops.db; docs/postgresql.md)");
  cmd->add_option("--by", flags->by, "Compare by provider and/or model")
      ->delimiter(',')
      ->check(CLI::IsMember({"provider", "model"}))
      ->capture_default_str();
  cmd->add_option("--grain", flags->grain, "Compare per day, per month, or over the whole range (none)")
      ->check(CLI::IsMember({"day", "month", "none"}))
      ->capture_default_str();
  cmd->add_option("--from", flags->from, "First day (2025-10-01) or month (2025-10), inclusive");
  cmd->add_option("--to", flags->to, "End day or month, exclusive");
  cmd->add_flag("--differences", flags->differences_only, "Show only rows where the two sides differ");
  cmd->add_option("--format", flags->format, "Output format")
      ->check(CLI::IsMember({"table", "csv", "json"}))
      ->capture_default_str();
  cmd->footer(
      "Examples:\n"
      "  aifinops reconcile\n"
      "  aifinops reconcile --by provider --grain month --from 2025-09 --to 2025-11\n"
      "  aifinops reconcile --by provider,model --grain day --differences --format json\n"
      "Which records are metered and which billed, and the JSON shape: docs/reconcile.md.\n"
      "Exit codes: 0 ok, 1 error, 2 bad flags.");
  cmd->callback([flags, &exit_code, env] { exit_code = run_reconcile(*flags, env); });
}

}  // namespace aifinops::cli
