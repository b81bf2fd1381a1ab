// libFuzzer target for the whole FOCUS ingest path: bytes -> file -> FileInput (plain or
// gzip) -> CsvReader -> FOCUS column mapping, parsing, quarantine, interning, pricing ->
// a fresh SQLite ledger -> rollups -> report queries. Besides crashes and sanitizer reports,
// it traps when an ingest breaks its accounting: rows read = ingested + quarantined, and
// every report (from the month rollup, the day rollup and the records table) totals exactly
// what the ingest summary says it stored.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "allocate/tag_policy.h"
#include "core/money.h"
#include "ingest/ingest.h"
#include "ledger/ledger.h"
#include "pricing/catalog.h"

namespace {

using namespace aifinops;

/// An empty catalog plus one model and one GPU SKU, so that rows without a cost can be
/// priced and GPU hours recognised, as with the built-in catalog but small.
pricing::Catalog make_catalog() {
  pricing::Catalog catalog;
  pricing::ModelPrice model;
  model.version = 1;
  model.model = "gpt-4o";
  model.provider = "openai";
  model.mode = "chat";
  model.effective_from = 0;
  model.prices.input = *parse_decimal("2.5");
  model.prices.cached_input = *parse_decimal("1.25");
  model.prices.output = *parse_decimal("10");
  catalog.add(model);
  pricing::GpuInstancePrice gpu;
  gpu.version = 2;
  gpu.sku = "p5.48xlarge";
  gpu.provider = "aws";
  gpu.gpu_type = "H100 80GB";
  gpu.gpus = 8;
  gpu.effective_from = 0;
  gpu.on_demand = *parse_decimal("98.32");
  catalog.add(gpu);
  return catalog;
}

/// The input is written to an anonymous in-memory file and read back through its
/// /proc/self/fd path, so FileInput opens it exactly as it opens a user's file.
class InputFile {
 public:
  InputFile() {
    fd_ = memfd_create("focus_fuzz.csv", MFD_CLOEXEC);
    if (fd_ < 0) std::abort();
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  const std::string& write(const uint8_t* data, size_t size) {
    if (ftruncate(fd_, 0) != 0) std::abort();
    size_t done = 0;
    while (done < size) {
      ssize_t n = pwrite(fd_, data + done, size - done, (off_t)done);
      if (n <= 0) std::abort();
      done += (size_t)n;
    }
    return path_;
  }

 private:
  int fd_ = -1;
  std::string path_;
};

/// The total of `metric` grouped by `group_by` (comma-separated dimension names), or
/// traps when the ledger cannot answer.
__int128 report_total(ledger::Ledger& ledger, const char* group_by, ledger::Metric metric) {
  ledger::QuerySpec spec;
  spec.metric = metric;
  std::string names = group_by;
  size_t start = 0;
  while (start < names.size()) {
    size_t end = names.find(',', start);
    if (end == std::string::npos) end = names.size();
    auto d = ledger::parse_dimension(names.substr(start, end - start));
    if (!d) __builtin_trap();  // the harness asked for a dimension that does not exist
    spec.group_by.push_back(*d);
    start = end + 1;
  }
  auto result = ledger.query(spec);
  if (!result) __builtin_trap();  // a committed batch must always be reportable
  __int128 rows = 0;
  for (const ledger::QueryRow& row : result->rows) rows += row.value;
  if (rows != result->total) __builtin_trap();  // the rows add up to the total
  return result->total;
}

}  // namespace

// The build compiles with -fsanitize=undefined, which by default reports and carries on:
// make every report a crash that libFuzzer records, with a stack. (Overridable with
// UBSAN_OPTIONS at run time.)
extern "C" const char* __ubsan_default_options() { return "halt_on_error=1:print_stacktrace=1"; }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static InputFile file;
  static const pricing::Catalog catalog = make_catalog();
  static const allocate::TagPolicy policy = allocate::TagPolicy::defaults();

  const std::string& path = file.write(data, size);
  auto opened = ledger::open_ledger(":memory:");
  if (!opened) __builtin_trap();  // an in-memory ledger always opens
  ledger::Ledger& ledger = **opened;
  ingest::IngestContext context{ledger, catalog, policy};
  auto summary = ingest::ingest_file(context, path, ingest::IngestOptions{});
  if (!summary) return 0;  // a file-level error (no header, missing columns): nothing written
  const ingest::IngestSummary& s = *summary;
  if (s.duplicate || s.batch_id == 0) __builtin_trap();  // a fresh ledger has seen nothing
  if (s.rows_read != s.rows_ingested + s.rows_quarantined) __builtin_trap();
  if (s.rows_read < 0 || s.rows_ingested < 0 || s.rows_quarantined < 0) __builtin_trap();

  // The report the CLI prints (month rollup), the day rollup and the raw records.
  using ledger::Metric;
  if (report_total(ledger, "service,team,month", Metric::kEffectiveCost) != s.effective_cost)
    __builtin_trap();
  if (report_total(ledger, "day", Metric::kEffectiveCost) != s.effective_cost) __builtin_trap();
  if (report_total(ledger, "hour", Metric::kEffectiveCost) != s.effective_cost) __builtin_trap();
  if (report_total(ledger, "provider", Metric::kBilledCost) != s.billed_cost) __builtin_trap();

  auto batches = ledger.batches();
  if (!batches || batches->size() != 1) __builtin_trap();
  const ledger::BatchSummary& b = batches->front();
  if (b.rows_read != s.rows_read || b.rows_ingested != s.rows_ingested ||
      b.rows_quarantined != s.rows_quarantined || b.effective_cost != s.effective_cost)
    __builtin_trap();
  auto quarantined = ledger.quarantined_rows(s.batch_id);
  if (!quarantined || (int64_t)quarantined->size() != s.rows_quarantined) __builtin_trap();
  return 0;
}
