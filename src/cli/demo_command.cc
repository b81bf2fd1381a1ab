// aifinops demo: builds a fresh demo ledger from a synthetic AI organisation (FOCUS CSV)
// and prints a showback summary, so that a first-time user sees every report with data.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/report_output.h"
#include "config/embedded_catalog.h"
#include "config/gpu_data_yaml.h"
#include "config/policy_yaml.h"
#include "demo/organisation.h"
#include "ingest/ingest.h"
#include "ledger/postgres/postgres_ledger.h"

namespace aifinops::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* kDemoCsvName = "demo_focus.csv";
constexpr const char* kDemoPolicyName = "demo_policy.yaml";
constexpr const char* kDemoTelemetryName = "demo_gpu_telemetry";  // + ".<region>.prom"
constexpr const char* kDemoTracesName = "demo_vllm_traces.jsonl";

struct DemoFlags {
  std::string db = "demo.db";
  uint64_t seed = 42;
  std::string out_dir;
  bool keep = false;
};

std::string dollars(__int128 nanos) { return "$" + group_thousands(format_decimal_fixed(nanos, 2)); }

std::string shell_quote(const std::string& s) {
  if (s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./") ==
      std::string::npos)
    return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

/// The demo deletes its ledger before each run; make sure that is all it can delete.
/// A file is ours to replace when it is an SQLite ledger whose batches all came from a
/// demo CSV. Anything else (the user's real ledger, another file) is left alone.
Result<void> check_replaceable(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[16] = {};
  in.read(magic, sizeof magic);
  if (in.gcount() == 0) return {};  // an empty file holds nothing to lose
  auto refuse = [&](const std::string& why) {
    return make_error(ErrorCode::kConflict,
                      path + ": " + why +
                          "; the demo deletes and recreates its ledger, so choose another "
                          "--db (the default is ./demo.db) or remove the file yourself");
  };
  if (std::string(magic, sizeof magic) != std::string("SQLite format 3\0", 16))
    return refuse("exists and is not a ledger");
  auto ledger = ledger::open_ledger(path);
  if (!ledger)
    return refuse("exists and cannot be opened as a ledger (" + ledger.error().message + ")");
  auto batches = (*ledger)->batches();
  if (!batches) return refuse("exists and its batches cannot be read");
  for (const ledger::BatchSummary& b : *batches) {
    const std::string name = fs::path(b.source_path).filename().string();
    const bool telemetry =
        name.starts_with(std::string(kDemoTelemetryName) + ".") && name.ends_with(".prom");
    if (name != kDemoCsvName && name != kDemoTracesName && !telemetry)
      return refuse("holds data that did not come from 'aifinops demo' (" + b.source_path + ")");
  }
  return {};
}

/// The same promise for a PostgreSQL database: it holds no tables but a ledger's, and the
/// ledger's batches (if any) all came from the demo. Then the ledger's tables are dropped.
Result<void> replace_database_ledger(const std::string& url) {
  const std::string shown = ledger::redact_location(url);
  auto refuse = [&](const std::string& why) {
    return make_error(ErrorCode::kConflict,
                      shown + ": " + why +
                          "; the demo drops and recreates its ledger's tables, so give it a "
                          "database of its own (createdb aifinops_demo) as --db");
  };
  auto foreign = ledger::PostgresLedger::foreign_tables(url);
  if (!foreign) return Unexpected{foreign.error()};
  if (!foreign->empty()) return refuse("holds tables that are not an aifinops ledger's (" + foreign->front() + ")");
  auto ledger = ledger::open_ledger(url);
  if (!ledger) return Unexpected{ledger.error()};
  auto batches = (*ledger)->batches();
  if (!batches) return Unexpected{batches.error()};
  for (const ledger::BatchSummary& b : *batches) {
    const fs::path name = fs::path(b.source_path).filename();
    if (name != kDemoCsvName && name != kDemoTelemetryName)
      return refuse("holds data that did not come from 'aifinops demo' (" + b.source_path + ")");
  }
  ledger->reset();
  return ledger::PostgresLedger::drop_ledger(url);
}

Result<void> remove_ledger_files(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::error_code ec;
    fs::remove(path + suffix, ec);
    if (ec) return make_error(ErrorCode::kIo, path + suffix + ": cannot remove: " + ec.message());
  }
  return {};
}

Result<ledger::QueryResult> run_query(ledger::Ledger& ledger, ledger::QuerySpec& spec,
                                      std::initializer_list<const char*> group_by) {
  for (const char* name : group_by) {
    auto d = ledger::parse_dimension(name);
    if (!d) return Unexpected{d.error()};
    spec.group_by.push_back(*d);
  }
  return ledger.query(spec);
}

void print_title(const char* title) { std::printf("\n%s\n", title); }

/// Spend by team and month, laid out team by team (largest first), months in order.
Result<void> print_team_months(ledger::Ledger& ledger) {
  ledger::QuerySpec spec;
  auto result = run_query(ledger, spec, {"team", "month"});
  if (!result) return Unexpected{result.error()};
  std::map<std::string, __int128> team_total;
  for (const ledger::QueryRow& row : result->rows) team_total[row.keys[0]] += row.value;
  std::sort(result->rows.begin(), result->rows.end(),
            [&](const ledger::QueryRow& a, const ledger::QueryRow& b) {
              if (a.keys[0] != b.keys[0]) {
                __int128 ta = team_total[a.keys[0]], tb = team_total[b.keys[0]];
                return ta != tb ? ta > tb : a.keys[0] < b.keys[0];
              }
              return a.keys[1] < b.keys[1];
            });
  print_title("Spend by team and month (effective cost, USD; \"(none)\" = untagged):");
  print_report(stdout, spec, *result, OutputFormat::kTable);
  return {};
}

Result<void> print_top_models(ledger::Ledger& ledger) {
  ledger::QuerySpec spec;
  auto result = run_query(ledger, spec, {"model"});
  if (!result) return Unexpected{result.error()};
  // Only rows that name a model: the rest of the bill is not model spend.
  std::erase_if(result->rows, [](const ledger::QueryRow& r) { return r.keys[0] == "(none)"; });
  if (result->rows.size() > 10) result->rows.resize(10);
  result->total = 0;
  for (const ledger::QueryRow& row : result->rows) result->total += row.value;
  print_title("Top models by cost (effective cost, USD):");
  print_report(stdout, spec, *result, OutputFormat::kTable);
  return {};
}

Result<void> print_service_categories(ledger::Ledger& ledger) {
  ledger::QuerySpec spec;
  auto result = run_query(ledger, spec, {"service_category"});
  if (!result) return Unexpected{result.error()};
  print_title("Spend by service category (effective cost, USD):");
  print_report(stdout, spec, *result, OutputFormat::kTable);
  return {};
}

int run_demo(const DemoFlags& flags) {
  const std::string& db = flags.db;
  std::error_code ec;
  const bool database = ledger::is_postgres_url(db);
  if (database) {
    if (auto ok = replace_database_ledger(db); !ok) return report_error(ok.error());
  } else {
    if (fs::exists(db, ec))
      if (auto ok = check_replaceable(db); !ok) return report_error(ok.error());
    if (auto ok = remove_ledger_files(db); !ok) return report_error(ok.error());
  }

  // A database has no directory: the files go to the working directory then.
  fs::path out_dir = !flags.out_dir.empty() ? fs::path(flags.out_dir)
                     : database             ? fs::path(".")
                                            : fs::path(db).parent_path();
  if (out_dir.empty()) out_dir = ".";
  fs::create_directories(out_dir, ec);
  if (ec)
    return report_error({ErrorCode::kIo, out_dir.string() + ": cannot create: " + ec.message()});
  demo::DemoFiles files;
  files.bill = (out_dir / kDemoCsvName).string();
  files.telemetry_prefix = (out_dir / kDemoTelemetryName).string();
  files.traces_path = (out_dir / kDemoTracesName).string();
  const std::string& csv = files.bill;

  auto opened = open_ledger_with_catalog(db);
  if (!opened) return report_error(opened.error());
  std::unique_ptr<ledger::Ledger>& ledger = opened->ledger;
  const pricing::Catalog* catalog = &opened->catalog;

  demo::DemoOptions options;
  options.seed = flags.seed;
  options.start = demo::demo_start_before(static_cast<EpochSeconds>(std::time(nullptr)));
  auto stats = demo::write_demo_files(*catalog, options, files);
  if (!stats) return report_error(stats.error());
  // The self-hosted model is registered in the catalog at price 0 (its cost is the GPU bill),
  // as a user does for a model served on their own GPUs, so that its spans are metered.
  {
    std::vector<pricing::ModelPrice> models = {demo::demo_self_hosted_price(options.start)};
    std::vector<pricing::GpuInstancePrice> gpus;
    if (auto stored = ledger->store_prices(models, gpus); !stored)
      return report_error(stored.error());
    auto reloaded = ledger->load_catalog();
    if (!reloaded) return report_error(reloaded.error());
    opened->catalog = std::move(*reloaded);
  }

  // The organisation's policy (config/policy.example.yaml, built in): required tags, shared
  // costs and budgets, so that every analysis command has something to show.
  std::string policy_path = (out_dir / kDemoPolicyName).string();
  {
    std::ofstream out(policy_path, std::ios::binary | std::ios::trunc);
    out << config::embedded_text(config::kEmbeddedPolicyFiles[0]);
    if (!out) return report_error(Error{ErrorCode::kIo, policy_path + ": cannot write the demo policy"});
  }
  auto policy = config::load_policy_file(policy_path);
  if (!policy) return report_error(policy.error());
  ingest::IngestContext context{*ledger, *catalog, policy->tags};
  auto summary = ingest::ingest_file(context, csv, ingest::IngestOptions{});
  if (!summary) return report_error(summary.error());
  // The GPU telemetry of the same hosts (DCGM exporter text, hourly scrapes), one file per
  // region so that each is read with its region's grid intensity: the GPU page's utilisation,
  // energy and emissions, and the idle-gpu and rightsize recommendations. An interval of 6
  // minutes lets a reading cover the hour to the next scrape (the gap allowed is ten
  // intervals), while a host's last reading before it stops covers one hour, as the bill
  // charges. The GPU nodes run one Kubernetes namespace per team: the telemetry is read with
  // `namespace` as an alias of team, so that energy and CO2e are reported by team.
  allocate::TagPolicy telemetry_tags = policy->tags;
  telemetry_tags.extend("team", {"namespace"}, {}, false);
  ingest::IngestContext telemetry_context{*ledger, *catalog, telemetry_tags};
  int64_t readings = 0, readings_quarantined = 0;
  for (size_t i = 0; i < files.telemetry_files.size(); ++i) {
    ingest::IngestOptions gpu_options;
    gpu_options.format = "dcgm";
    gpu_options.gpu.interval_ms = 360'000;
    gpu_options.gpu.gpu_models = &config::default_gpu_models();
    gpu_options.gpu.region = stats->telemetry.regions[i];
    gpu_options.gpu.grid_gco2e_per_kwh =
        config::default_grid_intensity().find(gpu_options.gpu.region);
    auto gpu_summary =
        ingest::ingest_file(telemetry_context, files.telemetry_files[i], gpu_options);
    if (!gpu_summary) return report_error(gpu_summary.error());
    readings += gpu_summary->rows_ingested;
    readings_quarantined += gpu_summary->rows_quarantined;
  }
  // The self-hosted cluster's spans (vLLM's OTLP traces): tokens served, at price 0.
  ingest::IngestOptions traces_options;
  traces_options.format = "otlp";
  auto traces_summary = ingest::ingest_file(context, files.traces_path, traces_options);
  if (!traces_summary) return report_error(traces_summary.error());
  if (!flags.keep) {  // the ledger holds it all now
    fs::remove(csv, ec);
    for (const std::string& f : files.telemetry_files) fs::remove(f, ec);
    fs::remove(files.traces_path, ec);
  }

  std::printf("%s, a synthetic AI organisation: %s to %s, %s rows, %s effective cost (%s billed)\n",
              demo::kOrganisationName, format_date(stats->period_start).c_str(),
              format_date(stats->period_end - 86400).c_str(),
              group_thousands(std::to_string(stats->rows)).c_str(),
              dollars(stats->effective_cost).c_str(), dollars(stats->billed_cost).c_str());
  std::printf("Ledger %s (batch %lld: %s rows ingested, %s quarantined)%s\n", ledger::redact_location(db).c_str(),
              (long long)summary->batch_id,
              group_thousands(std::to_string(summary->rows_ingested)).c_str(),
              group_thousands(std::to_string(summary->rows_quarantined)).c_str(),
              flags.keep ? (", CSV kept at " + csv).c_str() : "");
  const demo::DemoTelemetryStats& t = stats->telemetry;
  std::string regions;
  for (const std::string& r : t.regions) regions += (regions.empty() ? "" : ", ") + r;
  std::printf(
      "GPU telemetry: %zu hosts, %lld GPUs in %zu regions (%s), hourly DCGM scrapes %s to %s (%s "
      "MB; "
      "%s readings ingested, %s quarantined); %s-* sits idle, %s uses one GPU of four\n",
      t.hosts.size(), (long long)t.gpus, t.regions.size(), regions.c_str(),
      format_date(t.start).c_str(), format_date(t.end - 86400).c_str(),
      format_decimal_fixed((__int128)t.bytes * 1000, 1).c_str(),
      group_thousands(std::to_string(readings)).c_str(),
      group_thousands(std::to_string(readings_quarantined)).c_str(), t.idle_pool.c_str(),
      t.rightsize_host.c_str());
  const demo::DemoTracesStats& tr = stats->traces;
  std::printf(
      "Self-hosted inference: %s on vLLM on %zu GPU instances (project %s); %s OTLP spans, %s "
      "input and %s "
      "output tokens (batch %lld: %s ingested, %s quarantined)\n",
      demo::kDemoSelfHostedModel, tr.hosts.size(), tr.cluster.c_str(),
      group_thousands(std::to_string(tr.spans)).c_str(),
      group_thousands(std::to_string(tr.input_tokens)).c_str(),
      group_thousands(std::to_string(tr.output_tokens)).c_str(),
      (long long)traces_summary->batch_id,
      group_thousands(std::to_string(traces_summary->rows_ingested)).c_str(),
      group_thousands(std::to_string(traces_summary->rows_quarantined)).c_str());
  if (summary->effective_cost != stats->effective_cost) {
    std::printf("warning: the ledger's effective cost %s differs from the generated %s\n",
                dollars(summary->effective_cost).c_str(), dollars(stats->effective_cost).c_str());
  }

  for (auto print : {print_team_months, print_top_models, print_service_categories}) {
    if (auto ok = print(*ledger); !ok) return report_error(ok.error());
  }

  print_title("Planted in the data for detectors to find:");
  for (const demo::DemoAnomaly& a : stats->anomalies)
    std::printf("  - %s\n", a.description.c_str());

  std::string d = "--db " + shell_quote(ledger::redact_location(db));
  std::string c = d + " --config " + shell_quote(policy_path);
  std::string runaway_from, runaway_to;
  for (const demo::DemoAnomaly& a : stats->anomalies) {
    if (a.kind == "llm_runaway") {
      runaway_from = format_date(a.start - 3 * 86400);
      runaway_to = format_date(a.start + 4 * 86400);
    }
  }
  print_title("Next steps:");
  std::printf("  aifinops report %s --by team,model --metric tokens\n", d.c_str());
  std::printf("  aifinops report %s --by environment,service --grain month\n", d.c_str());
  std::printf("  aifinops report %s --by team,workload --metric gpu_hours\n", d.c_str());
  std::printf("  aifinops report %s --by resource --metric gpu_utilization\n", d.c_str());
  std::printf("  aifinops recommend %s --kind idle-gpu,rightsize\n", d.c_str());
  std::printf(
      "  aifinops recommend %s --kind self-hosted   # vLLM cluster vs API per million tokens\n",
      d.c_str());
  std::printf("  aifinops report %s --by team --metric energy_kwh\n", d.c_str());
  std::printf("  aifinops report %s --by team --metric co2e_kg\n", d.c_str());
  std::printf(
      "  aifinops report %s --by service,resource --filter 'team=(none)'   # who owns the untagged "
      "spend?\n",
      d.c_str());
  if (!runaway_from.empty()) {
    std::printf("  aifinops report %s --by day,model --filter team=support-bot --from %s --to %s\n",
                d.c_str(), runaway_from.c_str(), runaway_to.c_str());
  }
  const std::string last_month = format_month(stats->period_end - 86400);
  std::printf("With the organisation's policy (%s: required tags, shared costs, budgets):\n",
              policy_path.c_str());
  std::printf("  aifinops tags audit %s\n", c.c_str());
  std::printf("  aifinops report %s --by team --allocated --period %s --compare previous\n", c.c_str(),
              last_month.c_str());
  std::printf("  aifinops showback %s --by team --period %s\n", c.c_str(), last_month.c_str());
  std::printf("  aifinops anomalies %s --by team,environment --min-impact 500\n", c.c_str());
  std::printf("  aifinops forecast %s --by team --horizon 30d\n", c.c_str());
  std::printf("  aifinops budgets status %s --as-of %s\n", c.c_str(),
              format_date(stats->period_end - 86400).c_str());
  std::printf("  aifinops kpi %s --period %s\n", c.c_str(), last_month.c_str());
  std::printf("  aifinops maturity %s\n", c.c_str());
  return kExitOk;
}

}  // namespace

void add_demo_command(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<DemoFlags>();
  CLI::App* cmd = app.add_subcommand(
      "demo",
      "Generate six months of a synthetic AI organisation (teams, LLM tokens, GPUs, storage, "
      "anomalies) as FOCUS CSV, with DCGM GPU telemetry and a self-hosted vLLM cluster's OTLP "
      "traces, ingest it into a fresh demo ledger and print a showback summary.");
  cmd->add_option("--db", flags->db,
                  "Demo ledger path or PostgreSQL URL; deleted and recreated on every run, so it "
                  "is NOT $AIFINOPS_DB or ./aifinops.db (refuses files and databases holding "
                  "other data)")
      ->capture_default_str();
  cmd->add_option("--seed", flags->seed, "Random seed: the same seed gives the same data")
      ->capture_default_str();
  cmd->add_option("--out-dir", flags->out_dir,
                  "Where to write demo_focus.csv, demo_gpu_telemetry.<region>.prom, "
                  "demo_vllm_traces.jsonl and demo_policy.yaml (default: the ledger's directory; "
                  "the working directory for a database)");
  cmd->add_flag("--keep", flags->keep,
                "Keep demo_focus.csv, the telemetry and the traces after ingesting them (default: "
                "delete them)");
  cmd->footer(
      "Examples:\n"
      "  aifinops demo\n"
      "  aifinops demo --seed 7 --db /tmp/demo.db --keep\n"
      "  aifinops demo --db postgresql://aifinops@127.0.0.1:5432/aifinops_demo\n"
      "Exit codes: 0 ok, 1 error, 2 bad flags.");
  cmd->callback([flags, &exit_code] { exit_code = run_demo(*flags); });
}

}  // namespace aifinops::cli
