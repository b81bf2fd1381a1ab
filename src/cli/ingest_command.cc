// aifinops ingest FILE...: reads cost-and-usage files into the ledger.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <memory>

#include "allocate/tag_policy.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "config/gpu_data_yaml.h"
#include "config/yaml_reader.h"
#include "core/time.h"
#include "ingest/dcgm.h"
#include "ingest/formats.h"
#include "ingest/ingest.h"

namespace aifinops::cli {
namespace {

struct IngestFlags {
  std::vector<std::string> files;
  std::string db;
  std::string config;
  std::string format = "auto";
  bool strict = false;
  bool replace = false;
  // GPU telemetry (dcgm, nvidia-smi): docs/gpu.md.
  std::string host, region, interval = "30s", at, scrape, duration = "60s", pue = "1.2", grid_intensity;
};

/// "15s", "5m", "1h", "250ms" or plain seconds -> milliseconds; 1 ms .. 7 days.
Result<int64_t> parse_duration_ms(const std::string& flag, const std::string& text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  std::string unit = text.substr(digits);
  int64_t scale = unit == "ms" ? 1 : unit == "s" || unit.empty() ? 1000 : unit == "m" ? 60'000 : unit == "h" ? 3'600'000 : 0;
  if (digits == 0 || digits > 9 || scale == 0)
    return make_error(ErrorCode::kInvalidArgument, flag + " " + text + ": a duration like 15s, 5m, 1h or 250ms");
  int64_t ms = std::stoll(text.substr(0, digits)) * scale;
  if (ms < 1 || ms > 7 * 86'400'000LL)
    return make_error(ErrorCode::kInvalidArgument, flag + " " + text + ": between 1ms and 7 days");
  return ms;
}

/// The GPU readers' options from the flags: grid intensity of --region from the built-in
/// table (or --grid-intensity FILE), PUE, the GPU model table for TDP.
Result<ingest::GpuTelemetryOptions> gpu_options(const IngestFlags& flags,
                                                pricing::GridIntensityTable& grid_storage) {
  ingest::GpuTelemetryOptions gpu;
  gpu.host = flags.host;
  gpu.region = flags.region;
  auto interval = parse_duration_ms("--interval", flags.interval);
  if (!interval) return Unexpected{interval.error()};
  gpu.interval_ms = *interval;
  if (!flags.at.empty()) {
    auto t = parse_timestamp(flags.at);
    if (!t) return make_error(ErrorCode::kInvalidArgument, "--at " + flags.at + ": an RFC 3339 time like 2025-10-01T12:00:00Z");
    gpu.at_ms = *t * 1000;
  }
  auto pue = parse_decimal(flags.pue);
  if (!pue || pue->nanos < kNanosPerUnit || pue->nanos > 5 * kNanosPerUnit)
    return make_error(ErrorCode::kInvalidArgument, "--pue " + flags.pue + ": a ratio from 1.0 to 5.0, like 1.2");
  gpu.pue = *pue;
  const pricing::GridIntensityTable* grid = &config::default_grid_intensity();
  if (!flags.grid_intensity.empty()) {
    auto text = config::read_text_file(flags.grid_intensity, "grid intensity file");
    if (!text) return Unexpected{text.error()};
    auto parsed = config::parse_grid_intensity_yaml(*text, flags.grid_intensity);
    if (!parsed) return Unexpected{parsed.error()};
    grid_storage = std::move(*parsed);
    grid = &grid_storage;
  }
  if (!flags.region.empty()) gpu.grid_gco2e_per_kwh = grid->find(flags.region);
  gpu.gpu_models = &config::default_gpu_models();
  return gpu;
}

/// A one-line progress display on stderr, only when stderr is a terminal.
class ProgressLine {
 public:
  ProgressLine() : enabled_(isatty(STDERR_FILENO) == 1), start_(std::chrono::steady_clock::now()) {}
  void update(int64_t done, int64_t total, int64_t rows) {
    if (!enabled_) return;
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    if (seconds < 0.5) return;
    double rate = rows / seconds;
    double left = done > 0 && total > done ? seconds * (double)(total - done) / (double)done : 0;
    std::fprintf(stderr, "\r  %lld / %lld MB  %s rows  %.0f rows/s  %.0f s left   ",
                 (long long)(done >> 20), (long long)(total >> 20), group_thousands(rows).c_str(), rate, left);
    shown_ = true;
  }
  void clear() {
    if (shown_) std::fprintf(stderr, "\r%80s\r", "");
    shown_ = false;
  }

 private:
  bool enabled_, shown_ = false;
  std::chrono::steady_clock::time_point start_;
};

int run_ingest(const IngestFlags& flags) {
  auto opened = open_ledger_with_catalog(flags.db);
  if (!opened) return report_error(opened.error());
  std::unique_ptr<ledger::Ledger>& ledger = opened->ledger;
  const pricing::Catalog* catalog = &opened->catalog;
  auto policy = load_policy(flags.config);
  if (!policy) return report_error(policy.error());
  ingest::IngestContext context{*ledger, *catalog, policy->tags};
  pricing::GridIntensityTable grid_storage;
  auto gpu = gpu_options(flags, grid_storage);
  if (!gpu) return usage_error(gpu.error().message);
  if (!flags.region.empty() && !gpu->grid_gco2e_per_kwh)
    std::fprintf(stderr, "aifinops: no grid intensity for region %s: GPU energy is kept, co2e is not computed "
                         "(add it with --grid-intensity FILE)\n", flags.region.c_str());
  int64_t scrape_duration = 0;
  std::vector<std::string> inputs = flags.files;
  if (!flags.scrape.empty()) {
    auto d = parse_duration_ms("--duration", flags.duration);
    if (!d) return usage_error(d.error().message);
    scrape_duration = *d;
    inputs.push_back(flags.scrape);
  }
  if (inputs.empty()) return usage_error("FILE or --scrape URL is required");
  int exit_code = kExitOk;
  for (const std::string& file : inputs) {
    const bool scraping = !flags.scrape.empty() && &file == &inputs.back();
    ProgressLine progress;
    ingest::IngestOptions options;
    options.gpu = *gpu;
    options.format = flags.format;
    options.replace = flags.replace;
    options.strict = flags.strict;
    options.progress = [&](int64_t done, int64_t total, int64_t rows) { progress.update(done, total, rows); };
    auto start = std::chrono::steady_clock::now();
    auto summary = scraping ? ingest::ingest_dcgm_scrape(context, file, scrape_duration, options)
                            : ingest::ingest_file(context, file, options);
    progress.clear();
    if (!summary) {
      report_error(summary.error());
      exit_code = kExitError;
      continue;
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const ingest::IngestSummary& s = *summary;
    if (s.duplicate) {
      std::printf("%s: already ingested as batch %lld (identical content); nothing to do\n",
                  file.c_str(), (long long)s.duplicate_of);
      continue;
    }
    bool rejected = s.batch_id == 0;  // --strict and some rows could not be read
    std::printf("%s: %s, %s\n", file.c_str(), s.format.c_str(),
                rejected ? "NOTHING INGESTED (--strict: some rows cannot be read)"
                         : ("batch " + std::to_string(s.batch_id)).c_str());
    for (int64_t id : s.replaced) std::printf("  replaced batch %lld\n", (long long)id);
    std::printf("  rows read        %s\n", group_thousands(s.rows_read).c_str());
    if (rejected) {
      std::printf("  readable         %s\n", group_thousands(s.rows_ingested).c_str());
      std::printf("  unreadable       %s\n", group_thousands(s.rows_quarantined).c_str());
    } else {
      std::printf("  ingested         %s\n", group_thousands(s.rows_ingested).c_str());
      std::printf("  quarantined      %s\n", group_thousands(s.rows_quarantined).c_str());
      if (s.rows_priced > 0) std::printf("  priced           %s (cost from the price catalog)\n", group_thousands(s.rows_priced).c_str());
      std::printf("  billed cost      %s\n", format_decimal(s.billed_cost).c_str());
      std::printf("  effective cost   %s\n", format_decimal(s.effective_cost).c_str());
    }
    std::printf("  time             %.2f s (%s rows/s)\n", seconds,
                group_thousands(seconds > 0 ? (int64_t)(s.rows_read / seconds) : 0).c_str());
    if (!s.conformance.empty()) {
      if (s.format.rfind("FOCUS", 0) != 0)
        std::printf("  notes:\n");
      else
        std::printf(rejected ? "  FOCUS conformance (fix these in the export if you can):\n"
                             : "  FOCUS conformance (rows were kept; fix these in the export if you can):\n");
      for (const ingest::ConformanceIssue& c : s.conformance)
        std::printf("    %s: %s (%s)\n", c.column.c_str(), c.problem.c_str(),
                    c.count == 0 ? "whole column"
                                 : (group_thousands(c.count) + (c.count == 1 ? " row" : " rows")).c_str());
    }
    if (!s.quarantined_sample.empty()) {
      std::printf(rejected ? "  unreadable rows (first %zu):\n"
                           : "  quarantined rows (first %zu; all are in the ledger's quarantine table):\n",
                  s.quarantined_sample.size());
      for (const ledger::QuarantinedRow& q : s.quarantined_sample)
        std::printf("    %s:%lld: %s\n", file.c_str(), (long long)q.line, q.reason.c_str());
    }
    if (flags.strict && s.rows_quarantined > 0 && exit_code == kExitOk) exit_code = kExitQuarantined;
  }
  return exit_code;
}

}  // namespace

void add_ingest_command(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<IngestFlags>();
  CLI::App* cmd = app.add_subcommand(
      "ingest",
      "Read cost-and-usage files (FOCUS 1.0-1.3 CSV, plain or .gz) into the ledger.\n"
      "Rows that cannot be read are quarantined with file, line and reason; rows read =\n"
      "ingested + quarantined. The same content twice is ingested once.");
  cmd->add_option("FILE", flags->files, "Files to ingest (or directories of pages, for the JSON formats)")
      ->check(CLI::ExistingPath);
  cmd->add_option("--db", flags->db, "Ledger path or PostgreSQL URL (default: $AIFINOPS_DB or ./aifinops.db; docs/postgresql.md)");
  cmd->add_option("--config", flags->config,
                  "Policy file with tag aliases (default: $AIFINOPS_CONFIG, or ./policy.yaml if present)");
  std::vector<std::string> format_values{"auto"};
  std::string format_help = "Input format (auto: detected from the content):";
  for (const ingest::Format& f : ingest::formats()) {
    format_values.emplace_back(f.name);
    format_help += "\n  " + std::string(f.name) + ": " + std::string(f.description);
  }
  cmd->add_option("--format", flags->format, format_help)
      ->check(CLI::IsMember(format_values))
      ->capture_default_str();
  cmd->add_flag("--strict", flags->strict,
                "Any quarantined row is an error: nothing is ingested from that file, exit code 3");
  cmd->add_flag("--replace", flags->replace,
                "Replace earlier batches ingested from the same path (a changed export of the "
                "same billing period)");
  cmd->add_option("--host", flags->host,
                  "GPU telemetry: the host the GPUs are on when the input does not say (nvidia-smi "
                  "logs; default: the file name without extensions). Joins the instance's bill");
  cmd->add_option("--region", flags->region,
                  "GPU telemetry: region id of the GPUs (e.g. us-east-1), for grid intensity and co2e");
  cmd->add_option("--interval", flags->interval,
                  "GPU telemetry: time one reading covers when no next reading says; the scrape "
                  "interval with --scrape")
      ->capture_default_str();
  cmd->add_option("--at", flags->at,
                  "GPU telemetry: the time of readings that carry none (default: the file's "
                  "modification time)");
  cmd->add_option("--scrape", flags->scrape,
                  "Scrape a DCGM exporter (http://host:9400/metrics) every --interval for "
                  "--duration and ingest the readings as one batch");
  cmd->add_option("--duration", flags->duration, "How long --scrape runs, like 60s or 10m")->capture_default_str();
  cmd->add_option("--pue", flags->pue,
                  "Power usage effectiveness of the data centre, for co2e (energy x PUE x grid "
                  "intensity)")
      ->capture_default_str();
  cmd->add_option("--grid-intensity", flags->grid_intensity,
                  "A grid intensity file (region: gCO2e/kWh) in place of the built-in "
                  "config/grid_intensity.yaml")
      ->check(CLI::ExistingFile);
  cmd->footer(
      "GPU telemetry examples (docs/gpu.md):\n"
      "  aifinops ingest dcgm-node-7.prom --region us-east-1\n"
      "  aifinops ingest --scrape http://127.0.0.1:9400/metrics --duration 60s --interval 15s\n"
      "  aifinops ingest gpu-node-7.csv --format nvidia-smi --host gpu-node-7\n"
      "Exit codes: 0 ok, 1 error (nothing ingested from the failing file), 2 bad flags,\n"
      "3 --strict and rows were quarantined.\n"
      "Example: aifinops ingest exports/2025-10/*.csv.gz --db finops.db\n"
      "Example: aifinops ingest exports/2025-10/*.csv.gz --db postgresql://finops@db.internal/aifinops\n"
      "Example: aifinops ingest --format openai-usage usage-pages/   (a directory of API pages)\n"
      "Example: aifinops ingest traces.json   (OTLP/JSON GenAI spans, detected)");
  cmd->callback([flags, &exit_code] { exit_code = run_ingest(*flags); });
}

}  // namespace aifinops::cli
