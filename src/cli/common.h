// Helpers shared by the subcommands: where the ledger is, output formats, error printing.
#pragma once

#include <cstdio>
#include <functional>
#include <memory>
#include <string>

#include "config/policy_yaml.h"
#include "core/json_text.h"
#include "core/result.h"
#include "ledger/ledger.h"
#include "ledger/location.h"

namespace aifinops::cli {

/// --db flag, else $AIFINOPS_DB, else ./aifinops.db. A file path, or a PostgreSQL URL
/// (postgresql://user@host:5432/dbname, docs/postgresql.md); print it with
/// ledger::redact_location, never as is.
std::string resolve_db_location(const std::string& flag);

/// An open ledger and its price catalog, as commands that price or show prices need them.
struct LedgerWithCatalog {
  std::unique_ptr<ledger::Ledger> ledger;
  pricing::Catalog catalog;
};

/// Opens (creating if needed) the ledger and loads its catalog once; a new ledger is first
/// seeded with the built-in price catalog, so that usage can be priced at once.
Result<LedgerWithCatalog> open_ledger_with_catalog(const std::string& db_flag);

/// Opens a ledger that must exist, for commands that only read it: a mistyped --db is an
/// error instead of a new empty ledger.
Result<std::unique_ptr<ledger::Ledger>> open_existing_ledger(const std::string& db_flag);

/// The policy: --config, else $AIFINOPS_CONFIG, else ./policy.yaml when present, else
/// the built-in defaults.
Result<config::Policy> load_policy(const std::string& config_flag);

/// A dimension name as users write it in --by, --filter and policy rules: a policy's custom
/// dimension first, then the built-in names (ledger::parse_dimension).
Result<ledger::Dimension> resolve_dimension(const config::Policy& policy, std::string_view name);

/// Parses --filter DIM=VALUE flags; the error says what was wrong (for usage_error).
Result<std::vector<ledger::Filter>> parse_filters(const config::Policy& policy,
                                                  const std::vector<std::string>& flags);

/// --from/--to: a date (2025-10-01), a month (2025-10, its first day) or RFC 3339 time.
Result<EpochSeconds> parse_time_bound(const std::string& flag, const std::string& value);

/// --as-of: a date means the end of that day (it is part of the history), a month the end of
/// that month, an RFC 3339 time itself.
Result<EpochSeconds> parse_as_of(const std::string& value);

/// A statistic (not money) with `places` decimals: "12.5"; "-0.00" prints as "0.00" and a
/// value that is not finite as "null" (keeps JSON valid).
std::string fixed(double v, int places);

/// Prints "aifinops: error: MESSAGE" to stderr and returns kExitUsage (bad flag values).
int usage_error(const std::string& message);

enum class OutputFormat { kTable, kCsv, kJson };
/// The allowed values for --format, for CLI11's check.
inline constexpr const char* kFormatNames[] = {"table", "csv", "json"};
OutputFormat output_format_from_name(const std::string& name);

/// Prints "aifinops: error: MESSAGE" to stderr and returns kExitError.
int report_error(const Error& error);

/// "1234567.89" -> "1,234,567.89"; "-1234" -> "-1,234".
std::string group_thousands(std::string_view number);
inline std::string group_thousands(int64_t n) { return group_thousands(std::to_string(n)); }

/// Quotes a CSV field when needed (RFC 4180).
std::string csv_escape(std::string_view s);

/// Where an analysis command (report, kpi, budgets status, anomalies, forecast, tags audit,
/// maturity) reads and writes. The CLI's prints to stdout and stderr and opens the files
/// --db and --config name; `aifinops serve` runs the very same commands with its own (a
/// buffer, its open ledger, its policy), so the API answers exactly what the CLI prints.
struct CommandEnv {
  std::FILE* out = stdout;
  /// The policy for a --config flag value.
  std::function<Result<config::Policy>(const std::string& config_flag)> policy;
  /// The ledger for a --db flag value; it stays open until the env is destroyed.
  std::function<Result<ledger::Ledger*>(const std::string& db_flag)> ledger;
  /// Reports a bad flag value; returns the exit code (kExitUsage).
  std::function<int(const std::string& message)> usage_error;
  /// Reports a failure; returns the exit code (kExitError).
  std::function<int(const Error& error)> report_error;
  /// Whether commands may read ./business.yaml when no --business is given. Off under
  /// serve: its working directory is not the caller's, and a restricted viewer must not
  /// get other teams' business inputs from it.
  bool business_from_working_directory = true;
};

/// The --business files a command reads: the flags, else ./business.yaml when present
/// and the env allows it.
std::vector<std::string> business_files(const std::vector<std::string>& flags,
                                        const CommandEnv& env);

/// The CLI's env: stdout, stderr, load_policy and open_existing_ledger.
CommandEnv stdio_command_env();

}  // namespace aifinops::cli
