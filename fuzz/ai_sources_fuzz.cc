// libFuzzer target for the AI usage readers: OpenAI Usage/Costs API pages, Anthropic usage
// and cost reports, OTLP/JSON trace exports (as a file and as a receiver body) and the
// OTLP scan. The first input byte picks the reader; the rest is the input. Besides crashes
// and sanitizer reports, it traps when an ingest breaks its accounting: rows read =
// ingested + quarantined, the batch stores what the summary says, and the ledger's report
// grows by what was stored (one in-memory ledger serves many inputs: see fuzz_ledger).
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "allocate/tag_policy.h"
#include "core/money.h"
#include "ingest/ingest.h"
#include "ingest/otlp.h"
#include "ledger/ledger.h"
#include "pricing/catalog.h"

namespace {

using namespace aifinops;

pricing::Catalog make_catalog() {
  pricing::Catalog catalog;
  auto add = [&](const char* name, const char* provider, const char* in, const char* cached, const char* out) {
    pricing::ModelPrice m;
    m.version = (int64_t)catalog.model_count() + 1;
    m.model = name;
    m.provider = provider;
    m.mode = "chat";
    m.prices.input = *parse_decimal(in);
    m.prices.cached_input = *parse_decimal(cached);
    m.prices.output = *parse_decimal(out);
    pricing::PriceTier tier;
    tier.above_input_tokens = 200000;
    tier.prices.input = *parse_decimal("6");
    m.tiers.push_back(tier);
    m.batch_discount = *parse_decimal("0.5");
    catalog.add(m);
  };
  add("gpt-4o-mini", "openai", "0.15", "0.075", "0.6");
  add("gpt-5", "openai", "1.25", "0.125", "10");
  add("claude-sonnet-4-20250514", "anthropic", "3", "0.3", "15");
  return catalog;
}

class InputFile {
 public:
  InputFile() {
    fd_ = memfd_create("ai_sources_fuzz.json", MFD_CLOEXEC);
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

/// What the ledger held before an input: its check compares the difference.
struct LedgerState {
  __int128 billed = 0;
  size_t batches = 0;
};

LedgerState state_of(ledger::Ledger& ledger) {
  LedgerState st;
  ledger::QuerySpec spec;
  spec.metric = ledger::Metric::kBilledCost;
  spec.group_by.push_back(*ledger::parse_dimension("provider"));
  spec.group_by.push_back(*ledger::parse_dimension("model"));
  spec.group_by.push_back(*ledger::parse_dimension("day"));
  auto result = ledger.query(spec);
  if (!result) __builtin_trap();
  st.billed = result->total;
  auto batches = ledger.batches();
  if (!batches) __builtin_trap();
  st.batches = batches->size();
  return st;
}

void check(ledger::Ledger& ledger, const LedgerState& before, const ingest::IngestSummary& s) {
  if (s.rows_read != s.rows_ingested + s.rows_quarantined) __builtin_trap();
  if (s.rows_read < 0 || s.rows_skipped < 0) __builtin_trap();
  const LedgerState after = state_of(ledger);
  if (s.duplicate) {  // the same content again: nothing written
    if (after.billed != before.billed || after.batches != before.batches) __builtin_trap();
    return;
  }
  if (s.batch_id == 0) __builtin_trap();
  // The report over the ledger grew by exactly what the summary says was stored.
  if (after.billed - before.billed != s.billed_cost) __builtin_trap();
  if (after.batches != before.batches + 1) __builtin_trap();
  auto batches = ledger.batches();
  if (!batches) __builtin_trap();
  bool found = false;
  for (const ledger::BatchSummary& b : *batches)
    if (b.id == s.batch_id) found = b.rows_read == s.rows_read;
  if (!found) __builtin_trap();
  auto quarantined = ledger.quarantined_rows(s.batch_id);
  if (!quarantined || (int64_t)quarantined->size() != s.rows_quarantined) __builtin_trap();
}

/// An input that cannot be read as a whole writes nothing.
void unchanged(ledger::Ledger& ledger, const LedgerState& before) {
  const LedgerState after = state_of(ledger);
  if (after.billed != before.billed || after.batches != before.batches) __builtin_trap();
}

/// One in-memory ledger for many inputs (opening one builds the schema, which would take
/// most of each run), started afresh now and then so that it stays small.
ledger::Ledger& fuzz_ledger() {
  static std::unique_ptr<ledger::Ledger> ledger;
  static int uses = 0;
  if (ledger == nullptr || ++uses % 256 == 0) {
    ledger.reset();
    auto opened = ledger::open_ledger(":memory:");
    if (!opened) __builtin_trap();
    ledger = std::move(*opened);
  }
  return *ledger;
}

}  // namespace

extern "C" const char* __ubsan_default_options() { return "halt_on_error=1:print_stacktrace=1"; }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static InputFile file;
  static const pricing::Catalog catalog = make_catalog();
  static const allocate::TagPolicy policy = allocate::TagPolicy::defaults();
  if (size == 0) return 0;
  static const char* const kFormats[] = {"openai-usage", "openai-costs", "anthropic-usage",
                                         "anthropic-costs", "otlp"};
  int choice = data[0] % 7;
  std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  if (choice == 6) {
    auto scan = ingest::scan_otlp_json(body);
    if (scan && (scan->genai_spans > scan->spans || scan->input_tokens < 0)) __builtin_trap();
    return 0;
  }
  ledger::Ledger& ledger = fuzz_ledger();
  const LedgerState before = state_of(ledger);
  ingest::IngestContext context{ledger, catalog, policy};
  ingest::IngestOptions options;
  if (choice == 5) {
    auto summary = ingest::ingest_otlp_json(context, body, "otlp:fuzz", options);
    ingest::OtlpResponse response = ingest::otlp_response(summary);
    if (response.body.empty()) __builtin_trap();
    if (summary)
      check(ledger, before, *summary);
    else
      unchanged(ledger, before);
    return 0;
  }
  options.format = kFormats[choice];
  const std::string& path = file.write(data + 1, size - 1);
  auto summary = ingest::ingest_file(context, path, options);
  if (summary)
    check(ledger, before, *summary);
  else
    unchanged(ledger, before);
  return 0;
}
