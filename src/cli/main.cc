// aifinops: one binary, one subcommand per capability. This file only wires them up.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/commands.h"
#include "cli/common.h"

int main(int argc, char** argv) {
  CLI::App app{
      "aifinops: see, allocate, govern and cut what your organisation spends on AI.\n"
      "Ingest cloud bills (FOCUS) and AI usage into one ledger; report, price and explain it."};
  app.name("aifinops");
  app.require_subcommand(1);
  app.set_version_flag("--version", "aifinops 0.1.0");
  app.footer("Run 'aifinops COMMAND --help' for a command's flags. Docs: docs/cli.md");
  int exit_code = aifinops::cli::kExitOk;
  const aifinops::cli::CommandEnv env = aifinops::cli::stdio_command_env();
  aifinops::cli::add_ingest_command(app, exit_code);
  aifinops::cli::add_report_command(app, exit_code, env);
  aifinops::cli::add_prices_command(app, exit_code);
  aifinops::cli::add_demo_command(app, exit_code);
  aifinops::cli::add_tags_command(app, exit_code, env);
  aifinops::cli::add_showback_command(app, exit_code);
  aifinops::cli::add_budgets_command(app, exit_code, env);
  aifinops::cli::add_anomalies_command(app, exit_code, env);
  aifinops::cli::add_forecast_command(app, exit_code, env);
  aifinops::cli::add_kpi_command(app, exit_code, env);
  aifinops::cli::add_maturity_command(app, exit_code, env);
  aifinops::cli::add_recommend_command(app, exit_code, env);
  aifinops::cli::add_reconcile_command(app, exit_code, env);
  aifinops::cli::add_gateway_command(app, exit_code);
  aifinops::cli::add_serve_command(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : aifinops::cli::kExitUsage;
  }
  return exit_code;
}
