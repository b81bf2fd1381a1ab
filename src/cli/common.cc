#include "cli/common.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "allocate/shared_costs.h"
#include "cli/commands.h"
#include "config/catalog_yaml.h"
#include "config/policy_yaml.h"

namespace aifinops::cli {

std::string resolve_db_location(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("AIFINOPS_DB"); env != nullptr && *env != '\0') return env;
  return "aifinops.db";
}

Result<LedgerWithCatalog> open_ledger_with_catalog(const std::string& db_flag) {
  auto ledger = ledger::open_ledger(resolve_db_location(db_flag));
  if (!ledger) return Unexpected{ledger.error()};
  auto catalog = (*ledger)->load_catalog();
  if (!catalog) return Unexpected{catalog.error()};
  if (catalog->size() == 0) {
    const pricing::Catalog& defaults = config::default_catalog();
    std::vector<pricing::ModelPrice> models;
    std::vector<pricing::GpuInstancePrice> gpus;
    for (const pricing::ModelPrice* m : defaults.model_prices()) models.push_back(*m);
    for (const pricing::GpuInstancePrice* g : defaults.gpu_instance_prices()) gpus.push_back(*g);
    auto stored = (*ledger)->store_prices(models, gpus);
    if (!stored) return Unexpected{stored.error()};
    catalog = (*ledger)->load_catalog();  // with the version ids the ledger gave them
    if (!catalog) return Unexpected{catalog.error()};
  }
  return LedgerWithCatalog{std::move(*ledger), std::move(*catalog)};
}

Result<std::unique_ptr<ledger::Ledger>> open_existing_ledger(const std::string& db_flag) {
  std::string location = resolve_db_location(db_flag);
  std::error_code ec;
  // A PostgreSQL URL is checked by connecting: a mistyped database name does not exist.
  if (!ledger::is_postgres_url(location) && !std::filesystem::exists(location, ec))
    return make_error(ErrorCode::kNotFound,
                      "no ledger at " + location +
                          " (set --db or $AIFINOPS_DB, or create one with 'aifinops ingest FILE')");
  return ledger::open_ledger(location);
}

OutputFormat output_format_from_name(const std::string& name) {
  if (name == "csv") return OutputFormat::kCsv;
  if (name == "json") return OutputFormat::kJson;
  return OutputFormat::kTable;
}

Result<config::Policy> load_policy(const std::string& config_flag) {
  std::string path = config_flag;
  if (path.empty()) {
    if (const char* env = std::getenv("AIFINOPS_CONFIG"); env != nullptr && *env != '\0') path = env;
  }
  std::error_code ec;
  if (path.empty() && std::filesystem::exists("policy.yaml", ec)) path = "policy.yaml";
  return config::load_policy_file(path);
}

Result<ledger::Dimension> resolve_dimension(const config::Policy& policy, std::string_view name) {
  return allocate::resolve_dimension(policy.tags, name);
}

Result<std::vector<ledger::Filter>> parse_filters(const config::Policy& policy,
                                                  const std::vector<std::string>& flags) {
  std::vector<ledger::Filter> filters;
  for (const std::string& f : flags) {
    size_t eq = f.find('=');
    if (eq == std::string::npos || eq == 0)
      return make_error(ErrorCode::kInvalidArgument, "--filter " + f + ": expected DIM=VALUE, e.g. --filter team=search");
    auto d = resolve_dimension(policy, f.substr(0, eq));
    if (!d) return make_error(ErrorCode::kInvalidArgument, "--filter: " + d.error().message);
    filters.push_back({*d, f.substr(eq + 1)});
  }
  return filters;
}

Result<EpochSeconds> parse_time_bound(const std::string& flag, const std::string& value) {
  std::string text = value.size() == 7 ? value + "-01" : value;
  auto t = parse_timestamp(text);
  if (!t)
    return make_error(ErrorCode::kInvalidArgument,
                      flag + " " + value + ": expected a date (2025-10-01), a month (2025-10) or an "
                                           "RFC 3339 time (2025-10-01T00:00:00Z)");
  return *t;
}

Result<EpochSeconds> parse_as_of(const std::string& value) {
  auto t = parse_time_bound("--as-of", value);
  if (!t) return t;
  if (value.size() == 7) return next_month(*t);
  if (value.size() == 10) return *t + 86400;
  return *t;
}

std::string fixed(double v, int places) {
  if (!std::isfinite(v)) return "null";
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", places, v);
  std::string s = text;
  if (s.find_first_not_of("-0.") == std::string::npos && s[0] == '-') s.erase(0, 1);  // "-0.00"
  return s;
}

int usage_error(const std::string& message) {
  std::fprintf(stderr, "aifinops: error: %s\n", message.c_str());
  return kExitUsage;
}

int report_error(const Error& error) {
  std::fprintf(stderr, "aifinops: error: %s\n", error.message.c_str());
  return 1;
}

std::string group_thousands(std::string_view number) {
  size_t point = number.find('.');
  if (point == std::string_view::npos) point = number.size();
  size_t first = !number.empty() && number[0] == '-' ? 1 : 0;
  std::string out(number.substr(0, first));
  for (size_t i = first; i < point; ++i) {
    out += number[i];
    size_t left = point - i - 1;
    if (left > 0 && left % 3 == 0) out += ',';
  }
  out += number.substr(point);
  return out;
}

std::string csv_escape(std::string_view s) {
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::vector<std::string> business_files(const std::vector<std::string>& flags,
                                        const CommandEnv& env) {
  if (!flags.empty() || !env.business_from_working_directory) return flags;
  std::error_code ec;
  if (std::filesystem::exists("business.yaml", ec)) return {"business.yaml"};
  return {};
}

CommandEnv stdio_command_env() {
  CommandEnv env;
  env.out = stdout;
  env.policy = [](const std::string& flag) { return load_policy(flag); };
  // One command per process: the ledger it opens lives as long as the env's copies.
  auto opened = std::make_shared<std::vector<std::unique_ptr<ledger::Ledger>>>();
  env.ledger = [opened](const std::string& flag) -> Result<ledger::Ledger*> {
    auto ledger = open_existing_ledger(flag);
    if (!ledger) return Unexpected{ledger.error()};
    opened->push_back(std::move(*ledger));
    return opened->back().get();
  };
  env.usage_error = [](const std::string& message) { return usage_error(message); };
  env.report_error = [](const Error& error) { return report_error(error); };
  return env;
}

}  // namespace aifinops::cli
