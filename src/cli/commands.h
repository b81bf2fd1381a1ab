// The subcommands of the aifinops binary. Each add_*_command registers its flags on the
// app and a callback that runs it and stores the process exit code.
#pragma once

namespace CLI {
class App;
}

namespace aifinops::cli {

struct CommandEnv;  // cli/common.h: where the analysis commands read and write

/// Exit codes, documented in docs/cli.md.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;        ///< a runtime failure: I/O, bad data, bad config
inline constexpr int kExitUsage = 2;        ///< bad flags or arguments
inline constexpr int kExitQuarantined = 3;  ///< --strict and some rows were quarantined

void add_ingest_command(CLI::App& app, int& exit_code);
void add_report_command(CLI::App& app, int& exit_code, const CommandEnv& env);
void add_prices_command(CLI::App& app, int& exit_code);
void add_demo_command(CLI::App& app, int& exit_code);
void add_gateway_command(CLI::App& app, int& exit_code);
void add_tags_command(CLI::App& app, int& exit_code, const CommandEnv& env);
void add_showback_command(CLI::App& app, int& exit_code);
void add_budgets_command(CLI::App& app, int& exit_code, const CommandEnv& env);
void add_anomalies_command(CLI::App& app, int& exit_code, const CommandEnv& env);
void add_forecast_command(CLI::App& app, int& exit_code, const CommandEnv& env);
void add_kpi_command(CLI::App& app, int& exit_code, const CommandEnv& env);
void add_maturity_command(CLI::App& app, int& exit_code, const CommandEnv& env);
void add_recommend_command(CLI::App& app, int& exit_code, const CommandEnv& env);
void add_reconcile_command(CLI::App& app, int& exit_code, const CommandEnv& env);
void add_serve_command(CLI::App& app, int& exit_code);

}  // namespace aifinops::cli
