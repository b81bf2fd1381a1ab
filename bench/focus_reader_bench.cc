// Micro-benchmarks of the FOCUS ingest hot path: the CSV reader over a realistic 45-column
// export, decimal and timestamp parsing, and a whole ingest into a fresh SQLite ledger.
//
// The input is generated once per run into a temporary directory (removed at exit). Set
// AIFINOPS_BENCH_FOCUS=/path/to/focus.csv to read an existing export in the reader benchmark
// instead (e.g. the 1M-row file of bench/ingest_bench.sh). Knobs (environment):
//   AIFINOPS_BENCH_READER_ROWS  rows of the generated reader input   (default 100000, ~80 MB)
//   AIFINOPS_BENCH_INGEST_ROWS  rows of the generated ingest input   (default 50000)
//   AIFINOPS_BENCH_KEEP=1       keep the temporary directory (its path is printed)
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "allocate/tag_policy.h"
#include "config/catalog_yaml.h"
#include "core/money.h"
#include "core/time.h"
#include "ingest/csv_reader.h"
#include "ingest/file_input.h"
#include "ingest/ingest.h"
#include "ledger/ledger.h"

namespace aifinops::bench {
namespace {

// --- a synthetic FOCUS 1.x export ------------------------------------------------------

constexpr const char* kHeader =
    "BillingAccountId,BillingAccountName,SubAccountId,SubAccountName,InvoiceIssuerName,"
    "ProviderName,PublisherName,InvoiceId,BillingPeriodStart,BillingPeriodEnd,ChargePeriodStart,"
    "ChargePeriodEnd,ChargeCategory,ChargeClass,ChargeDescription,ChargeFrequency,ServiceName,"
    "ServiceCategory,ServiceSubcategory,RegionId,RegionName,AvailabilityZone,ResourceId,"
    "ResourceName,ResourceType,SkuId,SkuPriceId,SkuMeter,PricingCategory,PricingUnit,"
    "PricingQuantity,ConsumedUnit,ConsumedQuantity,ListUnitPrice,ContractedUnitPrice,ListCost,"
    "ContractedCost,BilledCost,EffectiveCost,BillingCurrency,CommitmentDiscountId,"
    "CommitmentDiscountType,CommitmentDiscountCategory,CommitmentDiscountStatus,Tags\n";

/// splitmix64: small, fast and deterministic, so every run reads the same bytes.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, n).
  uint64_t below(uint64_t n) { return next() % n; }
  /// True with probability percent/100.
  bool percent(int p) { return (int)below(100) < p; }

 private:
  uint64_t state_;
};

struct Provider {
  const char* account_id;
  const char* account_name;
  const char* issuer;
  const char* provider;
  const char* region_id;
  const char* region_name;
  const char* invoice_tag;
};

constexpr Provider kAws{"123456789012", "acme-payer", "Amazon Web Services EMEA SARL",
                        "Amazon Web Services", "us-east-1", "US East (N. Virginia)", "AWS"};
constexpr Provider kAzure{"8a1f6c3e-0d2b-4c4e-9f3a-7b6d5e4c3b2a", "Acme Corp EA", "Microsoft",
                          "Microsoft", "westeurope", "West Europe", "AZURE"};
constexpr Provider kGcp{"01A2B3-C4D5E6-F7A8B9", "Acme GCP Billing", "Google Cloud EMEA Limited",
                        "Google Cloud", "us-central1", "Iowa", "GCP"};
constexpr Provider kOpenAi{"org-7Hk2mPq9XvR4sLtN1wZ3yB6c", "Acme Corp", "OpenAI, L.L.C.", "OpenAI",
                           "global", "Global", "OPENAI"};
constexpr Provider kAnthropic{"acme-anthropic-org", "Acme Corp", "Anthropic, PBC", "Anthropic",
                              "global", "Global", "ANTHROPIC"};

/// An instance SKU billed by the hour. Prices in micro-units per hour.
struct Instance {
  const Provider* provider;
  const char* service;
  const char* sku;
  const char* description;
  const char* resource_type;
  int64_t list_micros;
};

constexpr Instance kInstances[] = {
    {&kAws, "Amazon Elastic Compute Cloud", "p5.48xlarge",
     "p5.48xlarge 8x NVIDIA H100 (Linux) running hours", "Instance", 98'320'000},
    {&kAws, "Amazon Elastic Compute Cloud", "p4d.24xlarge",
     "p4d.24xlarge 8x NVIDIA A100 (Linux) running hours", "Instance", 32'772'600},
    {&kAws, "Amazon Elastic Compute Cloud", "g5.xlarge",
     "g5.xlarge 1x NVIDIA A10G (Linux) running hours", "Instance", 1'006'000},
    {&kAws, "Amazon Elastic Compute Cloud", "m7i.2xlarge",
     "m7i.2xlarge 8 vCPU general purpose (Linux) running hours", "Instance", 403'200},
    {&kAzure, "Virtual Machines", "Standard_ND96isr_H100_v5",
     "Standard_ND96isr_H100_v5 8x NVIDIA H100 (Linux) running hours", "Virtual machine",
     98'320'000},
    {&kAzure, "Virtual Machines", "Standard_NC4as_T4_v3",
     "Standard_NC4as_T4_v3 1x NVIDIA T4 (Linux) running hours", "Virtual machine", 526'000},
    {&kGcp, "Compute Engine", "a3-highgpu-8g", "a3-highgpu-8g 8x NVIDIA H100 running hours",
     "compute.googleapis.com/Instance", 88'490'000},
    {&kGcp, "Compute Engine", "n2-standard-8", "n2-standard-8 8 vCPU running hours",
     "compute.googleapis.com/Instance", 388'500},
};

/// A token meter of one model. Prices in micro-units per 1M tokens.
struct TokenMeter {
  const Provider* provider;
  const char* service;
  const char* model;
  const char* meter;  // "input", "output", "cached input"
  int64_t per_million_micros;
};

constexpr TokenMeter kTokenMeters[] = {
    {&kOpenAi, "OpenAI API", "gpt-4o", "input", 2'500'000},
    {&kOpenAi, "OpenAI API", "gpt-4o", "output", 10'000'000},
    {&kOpenAi, "OpenAI API", "gpt-4o", "cached input", 1'250'000},
    {&kOpenAi, "OpenAI API", "gpt-4o-mini", "input", 150'000},
    {&kOpenAi, "OpenAI API", "gpt-4o-mini", "output", 600'000},
    {&kAnthropic, "Claude API", "claude-3-5-sonnet-20241022", "input", 3'000'000},
    {&kAnthropic, "Claude API", "claude-3-5-sonnet-20241022", "output", 15'000'000},
    {&kAnthropic, "Claude API", "claude-3-5-haiku-20241022", "input", 800'000},
};

constexpr const char* kTeams[] = {"ml-research", "llm-platform", "support-bot", "search",
                                  "recsys",      "data-eng",     "platform",    "growth"};
constexpr const char* kProjects[] = {"foundation-model", "finops-assistant", "semantic-search",
                                     "ranking-v3",       "doc-summarizer",   "code-copilot"};
constexpr const char* kEnvironments[] = {"prod", "prod", "prod", "staging", "dev"};
constexpr const char* kWorkloads[] = {"training", "inference", "fine-tuning", "embeddings", "rag"};

template <typename T, size_t N>
const T& pick(Random& random, const T (&items)[N]) {
  return items[random.below(N)];
}

/// Appends CSV fields to one output buffer. Costs are integers of micro-units, written with
/// six decimals (FOCUS exports usually carry 6 to 10).
class RowWriter {
 public:
  explicit RowWriter(std::string& out) : out_(out) {}
  void text(std::string_view s) {
    if (s.find_first_of(",\"\r\n") != std::string_view::npos) return quoted(s);
    comma();
    out_.append(s);
  }
  void quoted(std::string_view s) {  // doubles the quotes, as RFC 4180 asks
    comma();
    out_.push_back('"');
    for (char c : s) {
      if (c == '"') out_.push_back('"');
      out_.push_back(c);
    }
    out_.push_back('"');
  }
  void micros(int64_t v) {
    comma();
    char buf[40];
    int n = std::snprintf(buf, sizeof buf, "%s%lld.%06lld", v < 0 ? "-" : "",
                          (long long)(std::llabs(v) / 1'000'000),
                          (long long)(std::llabs(v) % 1'000'000));
    out_.append(buf, (size_t)n);
  }
  void timestamp(EpochSeconds t) {
    comma();
    out_.append(format_timestamp(t));
  }
  void end() {
    out_.push_back('\n');
    first_ = true;
  }

 private:
  void comma() {
    if (!first_) out_.push_back(',');
    first_ = false;
  }
  std::string& out_;
  bool first_ = true;
};

/// Writes `rows` rows from 2025-01-01 in day order, about 11,000 a day (at most 90 days), from
/// a pool of 3,500 resources: about half instance hours (a third of them under a commitment:
/// BilledCost 0, EffectiveCost amortised), a third LLM token meters, the rest storage and
/// egress, and a few purchase, tax and credit rows. The density is the peers' 1M-row export's
/// (bench/ingest_bench.sh): its first 50,000 rows hold about 4,500 distinct attribute sets and
/// 18,000 (day, attribute set) groups, and so does a 50,000-row file from here.
bool write_focus_csv(const std::string& path, int64_t rows, int64_t* bytes_out) {
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) return false;
  Random random(42);
  constexpr EpochSeconds kStart = 1735689600;  // 2025-01-01T00:00:00Z
  const int64_t days = std::clamp<int64_t>(rows / 11'000, 1, 90);
  std::string out = kHeader;
  std::string tags, resource_id, resource_name, invoice, sku_price;
  int64_t bytes = 0;
  for (int64_t row = 0; row < rows; ++row) {
    EpochSeconds day = kStart + (EpochSeconds)(row * days / rows) * 86400;
    EpochSeconds start = day + (EpochSeconds)random.below(24) * 3600;
    EpochSeconds month = floor_month(start);
    int resource = (int)random.below(3500);
    Random resource_random((uint64_t)resource * 7919 + 1);  // a resource keeps its kind, tags
    tags.clear();
    if (!resource_random.percent(5)) {
      tags = "{\"Project\":\"" + std::string(pick(resource_random, kProjects)) + "\"";
      if (!resource_random.percent(5))
        tags += ",\"Team\":\"" + std::string(pick(resource_random, kTeams)) + "\"";
      tags += ",\"Environment\":\"" + std::string(pick(resource_random, kEnvironments)) +
              "\",\"CostCenter\":\"CC-" + std::to_string(1000 + resource % 40) +
              "\",\"Workload\":\"" + std::string(pick(resource_random, kWorkloads)) + "\"}";
    }
    int kind = (int)resource_random.below(998);
    if (random.below(1000) >= 998) kind = 998;  // a rare purchase, tax, credit or adjustment
    const Provider* provider = nullptr;
    std::string_view category = "Usage", charge_description, service, service_category,
                     service_subcategory, resource_type, sku, meter, pricing_category = "Standard",
                     pricing_unit, consumed_unit, frequency = "Usage-Based";
    int64_t quantity = 0, list_unit = 0, contracted_unit = 0;  // micro-units
    int64_t pricing_quantity = 0;
    bool committed = false;
    std::string description_storage;
    if (kind < 480) {
      const Instance& in = kInstances[resource % std::size(kInstances)];
      provider = in.provider;
      service = in.service;
      service_category = "Compute";
      service_subcategory = "Virtual Machines";
      resource_type = in.resource_type;
      sku = in.sku;
      charge_description = in.description;
      meter = "Instance Hours";
      pricing_unit = consumed_unit = "Hours";
      quantity = pricing_quantity = 1'000'000;
      list_unit = in.list_micros;
      committed = resource_random.percent(35);
      contracted_unit = committed ? list_unit * 64 / 100 : list_unit * 95 / 100;
      if (committed) pricing_category = "Committed";
    } else if (kind < 780) {
      // A resource (an API key, a deployment) uses one model's meters: two per resource.
      const TokenMeter& tm =
          kTokenMeters[(resource + random.below(2)) % std::size(kTokenMeters)];
      provider = tm.provider;
      service = tm.service;
      service_category = "AI and Machine Learning";
      service_subcategory = "Generative AI";
      resource_type = "Model";
      description_storage = std::string(tm.model) + " " + tm.meter + " tokens";
      charge_description = description_storage;
      sku = tm.model;
      meter = tm.meter;
      consumed_unit = "Tokens";
      pricing_unit = "1M Tokens";
      int64_t tokens = 1000 + (int64_t)random.below(5'000'000);
      quantity = tokens * 1'000'000;
      pricing_quantity = tokens;  // tokens / 1e6, in micro-units
      list_unit = contracted_unit = tm.per_million_micros;
    } else if (kind < 920) {
      provider = (resource % 3 == 0) ? &kAws : (resource % 3 == 1) ? &kAzure : &kGcp;
      service = provider == &kAws ? "Amazon Simple Storage Service"
                                  : provider == &kAzure ? "Storage" : "Cloud Storage";
      service_category = "Storage";
      service_subcategory = "Object Storage";
      resource_type = "Bucket";
      sku = "Standard-Storage";
      charge_description = "Standard storage, GB-hours";
      meter = "Storage";
      pricing_unit = consumed_unit = "GB-Hours";
      quantity = pricing_quantity = (int64_t)(1 + random.below(50'000)) * 1'000'000;
      list_unit = contracted_unit = 31;  // $0.023 per GB-month, per hour
    } else if (kind < 998) {
      provider = (resource % 2 == 0) ? &kAws : &kGcp;
      service = provider == &kAws ? "Amazon Virtual Private Cloud" : "Cloud Networking";
      service_category = "Networking";
      service_subcategory = "Network Infrastructure";
      resource_type = "Data Transfer";
      sku = "DataTransfer-Out-Bytes";
      charge_description = "Data transfer out to the internet";
      meter = "Data Transfer";
      pricing_unit = consumed_unit = "GB";
      quantity = pricing_quantity = (int64_t)(1 + random.below(2'000)) * 1'000'000;
      list_unit = contracted_unit = 90'000;
    } else {
      provider = &kAws;
      static constexpr const char* kOther[] = {"Purchase", "Tax", "Credit", "Adjustment"};
      category = kOther[random.below(4)];
      service = "Amazon Elastic Compute Cloud";
      service_category = "Compute";
      charge_description = category == "Purchase" ? "Savings Plan upfront fee" : "Monthly charge";
      frequency = category == "Purchase" ? "One-Time" : "Recurring";
      list_unit = contracted_unit = (int64_t)(10 + random.below(5'000)) * 1'000'000;
      if (category == "Credit") list_unit = contracted_unit = -list_unit;
    }
    // cost = pricing quantity × unit price, both in micro-units.
    auto cost = [](int64_t q, int64_t price) {
      return q == 0 ? price : (int64_t)((__int128)q * price / 1'000'000);
    };
    int64_t list_cost = cost(pricing_quantity, list_unit);
    int64_t contracted_cost = cost(pricing_quantity, contracted_unit);
    int64_t billed = committed ? 0 : contracted_cost;
    int64_t effective = contracted_cost;

    RowWriter w(out);
    w.text(provider->account_id);
    w.text(provider->account_name);
    resource_id = std::string(provider->account_id).substr(0, 6) + "-sub-" +
                  std::to_string(resource % 4);
    w.text(resource_id);
    w.text("acme-sub-" + std::to_string(resource % 4));
    w.text(provider->issuer);
    w.text(provider->provider);
    w.text(provider->provider);
    invoice = "INV-" + format_month(start) + "-" + provider->invoice_tag;
    w.text(invoice);
    w.timestamp(month);
    w.timestamp(next_month(start));
    w.timestamp(start);
    w.timestamp(start + 3600);
    w.text(category);
    w.text("");
    w.text(charge_description);
    w.text(frequency);
    w.text(service);
    w.text(service_category);
    w.text(service_subcategory);
    w.text(provider->region_id);
    w.text(provider->region_name);
    w.text(provider == &kAws ? "us-east-1b" : "");
    resource_name = std::string(resource_type.empty() ? "res" : "r") + "-" + std::to_string(resource);
    w.text(resource_type.empty() ? "" : "arn:acme:" + std::string(sku) + ":" + resource_name);
    w.text(resource_type.empty() ? "" : resource_name);
    w.text(resource_type);
    w.text(sku);
    sku_price = sku.empty() ? std::string() : std::string(sku) + ":" + std::to_string(resource % 7);
    w.text(sku_price);
    w.text(meter);
    w.text(pricing_category);
    w.text(pricing_unit);
    if (pricing_quantity != 0) w.micros(pricing_quantity); else w.text("");
    w.text(consumed_unit);
    if (quantity != 0) w.micros(quantity); else w.text("");
    w.micros(list_unit);
    w.micros(contracted_unit);
    w.micros(list_cost);
    w.micros(contracted_cost);
    w.micros(billed);
    w.micros(effective);
    w.text("USD");
    if (committed) {
      w.text("arn:acme:savingsplan/sp-" + std::to_string(resource % 5));
      w.text("Savings Plan");
      w.text("Spend");
      w.text("Used");
    } else {
      w.text("");
      w.text("");
      w.text("");
      w.text("");
    }
    if (tags.empty()) w.text(""); else w.quoted(tags);
    w.end();
    if (out.size() > (1 << 20)) {
      if (std::fwrite(out.data(), 1, out.size(), file) != out.size()) {
        std::fclose(file);
        return false;
      }
      bytes += (int64_t)out.size();
      out.clear();
    }
  }
  bool ok = std::fwrite(out.data(), 1, out.size(), file) == out.size();
  bytes += (int64_t)out.size();
  ok = std::fclose(file) == 0 && ok;
  if (bytes_out != nullptr) *bytes_out = bytes;
  return ok;
}

// --- shared inputs, made once --------------------------------------------------------

int64_t env_int(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::strtoll(v, nullptr, 10);
}

/// The run's temporary directory; removed by main() at exit.
const std::filesystem::path& temp_dir() {
  static const std::filesystem::path dir = [] {
    std::string tmpl = (std::filesystem::temp_directory_path() / "aifinops-bench-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      std::perror("mkdtemp");
      std::exit(1);
    }
    return std::filesystem::path(tmpl);
  }();
  return dir;
}
bool temp_dir_made = false;

struct Input {
  std::string path;
  int64_t rows = 0;   ///< data rows; 0 when unknown (a file given by the user)
  int64_t bytes = 0;
  bool ok = false;
};

Input generated(const char* name, int64_t rows) {
  temp_dir_made = true;
  Input in;
  in.path = (temp_dir() / name).string();
  in.rows = rows;
  in.ok = write_focus_csv(in.path, rows, &in.bytes);
  return in;
}

const Input& reader_input() {
  static const Input input = [] {
    if (const char* given = std::getenv("AIFINOPS_BENCH_FOCUS"); given != nullptr && *given) {
      Input in;
      in.path = given;
      std::error_code ec;
      in.bytes = (int64_t)std::filesystem::file_size(in.path, ec);
      in.ok = !ec;
      return in;
    }
    return generated("focus_reader.csv", env_int("AIFINOPS_BENCH_READER_ROWS", 100'000));
  }();
  return input;
}

const Input& ingest_input() {
  static const Input input =
      generated("focus_ingest.csv", env_int("AIFINOPS_BENCH_INGEST_ROWS", 50'000));
  return input;
}

// --- benchmarks ----------------------------------------------------------------------

/// The RFC 4180 reader alone over a 45-column export: bytes/s on one core.
void BM_CsvReader_Focus45Columns(benchmark::State& state) {
  const Input& input = reader_input();
  if (!input.ok) {
    state.SkipWithError(("cannot read or write " + input.path).c_str());
    return;
  }
  int64_t records = 0, fields = 0;
  for (auto _ : state) {
    auto opened = ingest::FileInput::open(input.path);
    if (!opened) {
      state.SkipWithError(opened.error().message.c_str());
      return;
    }
    ingest::CsvReader reader{std::unique_ptr<ingest::FileInput>(*opened)};
    ingest::CsvRecord record;
    records = fields = 0;
    for (;;) {
      auto got = reader.next(record);
      if (!got) {
        state.SkipWithError(got.error().message.c_str());
        return;
      }
      if (!*got) break;
      ++records;
      fields += (int64_t)record.fields.size();
    }
    benchmark::DoNotOptimize(fields);
  }
  state.SetBytesProcessed(state.iterations() * input.bytes);
  state.SetItemsProcessed(state.iterations() * records);
  state.counters["MB"] = (double)input.bytes / 1e6;
  state.counters["fields_per_record"] = records > 0 ? (double)fields / (double)records : 0;
}
BENCHMARK(BM_CsvReader_Focus45Columns)->Unit(benchmark::kMillisecond)->MinTime(2.0);

/// The decimal shapes found in FOCUS exports: unit prices, zeros with many places,
/// quantities, negative credits, exponents.
void BM_Decimal_Parse(benchmark::State& state) {
  static constexpr std::string_view kTexts[] = {
      "0.357680", "0.0000000000", "1.000000", "98.320000", "12345.678901", "-250.000000",
      "0.000000031", "2500000", "1.25e-7", "0", "3.5", "0.403200",
  };
  int64_t bytes_per_pass = 0;
  for (std::string_view t : kTexts) bytes_per_pass += (int64_t)t.size();
  for (auto _ : state) {
    for (std::string_view t : kTexts) {
      Decimal d;
      bool ok = parse_decimal(t, d);
      benchmark::DoNotOptimize(ok);
      benchmark::DoNotOptimize(d);
    }
  }
  state.SetItemsProcessed(state.iterations() * (int64_t)std::size(kTexts));
  state.SetBytesProcessed(state.iterations() * bytes_per_pass);
}
BENCHMARK(BM_Decimal_Parse);

/// RFC 3339 (what FOCUS asks for) and the variants real exports carry.
void BM_Timestamp_Parse(benchmark::State& state) {
  static constexpr std::string_view kTexts[] = {
      "2025-01-01T13:00:00Z",      "2025-02-28T23:00:00Z", "2025-03-01T00:00:00.000Z",
      "2025-01-01T01:00:00+02:00", "2025-01-01 00:00:00",  "2025-01-01",
  };
  for (auto _ : state) {
    for (std::string_view t : kTexts) {
      TimestampStyle style;
      auto parsed = parse_timestamp(t, &style);
      benchmark::DoNotOptimize(parsed);
    }
  }
  state.SetItemsProcessed(state.iterations() * (int64_t)std::size(kTexts));
}
BENCHMARK(BM_Timestamp_Parse);

/// A whole ingest, as `aifinops ingest` runs it: read, parse, intern, append, commit the
/// batch with its rollups, close the ledger. Opening a fresh ledger is not timed.
void BM_FocusIngest_Rows(benchmark::State& state) {
  const Input& input = ingest_input();
  if (!input.ok) {
    state.SkipWithError(("cannot write " + input.path).c_str());
    return;
  }
  const pricing::Catalog& catalog = config::default_catalog();
  const allocate::TagPolicy policy = allocate::TagPolicy::defaults();
  const std::filesystem::path db = temp_dir() / "ingest_bench.db";
  int64_t rows = 0;
  for (auto _ : state) {
    state.PauseTiming();
    for (const char* suffix : {"", "-wal", "-shm"})
      std::filesystem::remove(db.string() + suffix);
    auto ledger = ledger::open_ledger(db.string());
    if (!ledger) {
      state.SkipWithError(ledger.error().message.c_str());
      return;
    }
    state.ResumeTiming();
    ingest::IngestContext context{**ledger, catalog, policy};
    auto summary = ingest::ingest_file(context, input.path, ingest::IngestOptions{});
    if (!summary) {
      state.SkipWithError(summary.error().message.c_str());
      return;
    }
    if (summary->rows_ingested != input.rows) {
      state.SkipWithError(("ingested " + std::to_string(summary->rows_ingested) + " of " +
                           std::to_string(input.rows) + " rows")
                              .c_str());
      return;
    }
    rows = summary->rows_ingested;
    ledger->reset();  // closing checkpoints the WAL: part of what the CLI pays
  }
  state.SetItemsProcessed(state.iterations() * rows);
  state.SetBytesProcessed(state.iterations() * input.bytes);
}
BENCHMARK(BM_FocusIngest_Rows)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);

}  // namespace
}  // namespace aifinops::bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  // AIFINOPS_BENCH_KEEP=1 keeps the generated files, e.g. to ingest them with the CLI.
  const char* keep = std::getenv("AIFINOPS_BENCH_KEEP");
  if (aifinops::bench::temp_dir_made && (keep == nullptr || *keep == '\0' || *keep == '0')) {
    std::error_code ec;
    std::filesystem::remove_all(aifinops::bench::temp_dir(), ec);
  } else if (aifinops::bench::temp_dir_made) {
    std::fprintf(stderr, "kept %s\n", aifinops::bench::temp_dir().c_str());
  }
  return 0;
}
