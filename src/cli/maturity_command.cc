// aifinops maturity: the crawl/walk/run scorecard, with evidence and next steps.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "analyze/business_inputs.h"
#include "analyze/maturity.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "core/clock.h"

namespace aifinops::cli {
namespace {

struct MaturityFlags {
  std::string db;
  std::string config;
  std::vector<std::string> business;
  std::string format = "table";
};

void print_table(std::FILE* out, const analyze::MaturityScorecard& card) {
  std::string window =
      card.from ? format_month(*card.from) + " to " + format_month(floor_month(*card.to - 1))
                : std::string("no spend yet");
  std::fprintf(out, "Maturity: %s (score %d of %d); spend window %s\n",
               analyze::maturity_level_name(card.overall), card.score, card.max_score,
               window.c_str());
  size_t width = 0;
  for (const analyze::MaturityCriterion& c : card.criteria) width = std::max(width, c.name.size());
  for (const analyze::MaturityCriterion& c : card.criteria) {
    std::string name = c.name + std::string(width - c.name.size(), ' ');
    std::fprintf(out, "\n%s  %s\n", name.c_str(), analyze::maturity_level_name(c.level));
    std::fprintf(out, "  evidence:  %s\n", c.evidence.c_str());
    std::fprintf(out, "  next step: %s\n", c.next_step.c_str());
  }
  std::fprintf(out,
               "\nThe overall level is the lowest criterion's; docs/kpi-and-maturity.md has the "
               "thresholds.\n");
}

void print_csv(std::FILE* out, const analyze::MaturityScorecard& card) {
  std::fputs("id,name,level,evidence,next_step,thresholds\n", out);
  for (const analyze::MaturityCriterion& c : card.criteria) {
    std::string line = csv_escape(c.id) + "," + csv_escape(c.name) + "," +
                       analyze::maturity_level_name(c.level) + "," + csv_escape(c.evidence) + "," +
                       csv_escape(c.next_step) + "," + csv_escape(c.thresholds) + "\n";
    std::fputs(line.c_str(), out);
  }
  std::string total =
      std::string("overall,Overall,") + analyze::maturity_level_name(card.overall) + "," +
      csv_escape("score " + std::to_string(card.score) + " of " + std::to_string(card.max_score)) +
      ",,\n";
  std::fputs(total.c_str(), out);
}

int run_maturity(const MaturityFlags& flags, const CommandEnv& env) {
  auto policy = env.policy(flags.config);
  if (!policy) return env.report_error(policy.error());
  auto business = analyze::load_business_files(business_files(flags.business, env));
  if (!business) return env.report_error(business.error());
  auto ledger = env.ledger(flags.db);
  if (!ledger) return env.report_error(ledger.error());
  SystemClock clock;
  analyze::MaturityContext context;
  context.policy = &*policy;
  context.business = &*business;
  context.clock = &clock;
  auto card = analyze::assess_maturity(**ledger, context);
  if (!card) return env.report_error(card.error());
  switch (output_format_from_name(flags.format)) {
    case OutputFormat::kJson:
      std::fputs(analyze::maturity_json(*card).c_str(), env.out);
      break;
    case OutputFormat::kCsv:
      print_csv(env.out, *card);
      break;
    case OutputFormat::kTable:
      print_table(env.out, *card);
      break;
  }
  return kExitOk;
}

}  // namespace

void add_maturity_command(CLI::App& app, int& exit_code, const CommandEnv& env) {
  auto flags = std::make_shared<MaturityFlags>();
  CLI::App* cmd = app.add_subcommand(
      "maturity",
      "A crawl/walk/run scorecard from the data and the policy: allocation, budgets, anomaly "
      "detection, forecast accuracy, gateway coverage, automation, value tracking.");
  cmd->add_option("--db", flags->db, "Ledger path or PostgreSQL URL (default: $AIFINOPS_DB or ./aifinops.db; docs/postgresql.md)");
  cmd->add_option("--config", flags->config,
                  "Policy file: required tags and budgets (default: $AIFINOPS_CONFIG, or "
                  "./policy.yaml if present)");
  cmd->add_option(
      "--business", flags->business,
      "Business inputs for value tracking; repeat for more (default: ./business.yaml if present)");
  cmd->add_option("--format", flags->format, "Output format")
      ->check(CLI::IsMember({"table", "csv", "json"}))
      ->capture_default_str();
  cmd->footer(
      "Examples:\n"
      "  aifinops maturity\n"
      "  aifinops maturity --config policy.yaml --format json\n"
      "Criteria and thresholds: docs/kpi-and-maturity.md.\n"
      "Exit codes: 0 ok, 1 error, 2 bad flags.");
  cmd->callback([flags, &exit_code, env] { exit_code = run_maturity(*flags, env); });
}

}  // namespace aifinops::cli
