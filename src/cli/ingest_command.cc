// aifinops ingest FILE...: reads cost-and-usage files into the ledger.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <memory>

#include "allocate/tag_policy.h"
#include "cli/commands.h"
#include "cli/common.h"
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
};

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
  int exit_code = kExitOk;
  for (const std::string& file : flags.files) {
    ProgressLine progress;
    ingest::IngestOptions options;
    options.format = flags.format;
    options.replace = flags.replace;
    options.strict = flags.strict;
    options.progress = [&](int64_t done, int64_t total, int64_t rows) { progress.update(done, total, rows); };
    auto start = std::chrono::steady_clock::now();
    auto summary = ingest::ingest_file(context, file, options);
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
      ->required()
      ->check(CLI::ExistingPath);
  cmd->add_option("--db", flags->db, "Ledger path (default: $AIFINOPS_DB or ./aifinops.db)");
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
  cmd->footer(
      "Exit codes: 0 ok, 1 error (nothing ingested from the failing file), 2 bad flags,\n"
      "3 --strict and rows were quarantined.\n"
      "Example: aifinops ingest exports/2025-10/*.csv.gz --db finops.db");
  cmd->callback([flags, &exit_code] { exit_code = run_ingest(*flags); });
}

}  // namespace aifinops::cli
