// Micro-benchmarks of the OTLP/JSON trace reader: the parse alone (every span read, GenAI
// spans recognised and their usage read) and a whole ingest of an export into a fresh
// SQLite ledger (pricing, dimensions, interning, append, commit).
//
// The export is generated in memory: resource spans of several services, each with HTTP,
// database and GenAI spans in the proportions an instrumented LLM application emits, with
// the attribute names of the OpenTelemetry conventions. Knobs (environment):
//   AIFINOPS_BENCH_OTLP_MB         size of the parse input in MB     (default 64)
//   AIFINOPS_BENCH_OTLP_INGEST_MB  size of the ingest input in MB    (default 16)
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <unistd.h>

#include "allocate/tag_policy.h"
#include "config/catalog_yaml.h"
#include "ingest/otlp.h"
#include "ledger/ledger.h"

namespace aifinops::bench {
namespace {

/// splitmix64, so every run reads the same bytes.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t n) { return next() % n; }

 private:
  uint64_t state_;
};

std::string hex(Random& r, int bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < bytes; ++i) {
    uint64_t v = r.next();
    out.push_back(digits[v & 15]);
    out.push_back(digits[(v >> 4) & 15]);
  }
  return out;
}

void attribute(std::string& out, const char* key, const std::string& value, bool last = false) {
  out += "{\"key\":\"";
  out += key;
  out += "\",\"value\":{\"stringValue\":\"" + value + "\"}}";
  if (!last) out += ",";
}

void int_attribute(std::string& out, const char* key, int64_t value, bool last = false) {
  out += "{\"key\":\"";
  out += key;
  out += "\",\"value\":{\"intValue\":\"" + std::to_string(value) + "\"}}";
  if (!last) out += ",";
}

struct Model {
  const char* provider;
  const char* request;
  const char* response;
};
constexpr Model kModels[] = {
    {"openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18"},
    {"openai", "gpt-4o", "gpt-4o-2024-08-06"},
    {"anthropic", "claude-sonnet-4-20250514", "claude-sonnet-4-20250514"},
    {"anthropic", "claude-haiku-4-5", "claude-haiku-4-5-20251001"},
    {"aws.bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0", "anthropic.claude-3-5-sonnet-20240620-v1:0"},
};
constexpr const char* kServices[] = {"checkout-assistant", "support-bot", "search-rag", "doc-summarizer"};
constexpr const char* kTeams[] = {"payments", "support", "search", "platform"};
constexpr const char* kEnvironments[] = {"prod", "staging"};

/// One span. `kind` 0..4 GenAI chat (pretty and compact mixes), 5..6 HTTP, 7 database.
void span(std::string& out, Random& r, int64_t start_ns, bool first) {
  if (!first) out += ",";
  std::string trace = hex(r, 16), id = hex(r, 8), parent = hex(r, 8);
  int64_t duration = 50'000'000 + (int64_t)r.below(4'000'000'000);
  uint64_t kind = r.below(8);
  out += "{\"traceId\":\"" + trace + "\",\"spanId\":\"" + id + "\",\"parentSpanId\":\"" + parent + "\",";
  if (kind < 5) {
    const Model& m = kModels[r.below(std::size(kModels))];
    out += "\"name\":\"chat " + std::string(m.request) + "\",\"kind\":3,";
    out += "\"startTimeUnixNano\":\"" + std::to_string(start_ns) + "\",\"endTimeUnixNano\":\"" +
           std::to_string(start_ns + duration) + "\",\"attributes\":[";
    attribute(out, "gen_ai.operation.name", "chat");
    attribute(out, "gen_ai.provider.name", m.provider);
    attribute(out, "gen_ai.request.model", m.request);
    attribute(out, "gen_ai.response.model", m.response);
    attribute(out, "gen_ai.response.id", "chatcmpl-" + hex(r, 12));
    attribute(out, "gen_ai.response.finish_reasons", "stop");
    attribute(out, "server.address", "api.example.com");
    int_attribute(out, "server.port", 443);
    int64_t input = 200 + (int64_t)r.below(8000);
    int_attribute(out, "gen_ai.usage.input_tokens", input);
    int_attribute(out, "gen_ai.usage.cache_read.input_tokens", (int64_t)r.below((uint64_t)input / 2 + 1));
    int_attribute(out, "gen_ai.usage.output_tokens", 20 + (int64_t)r.below(1500), true);
    out += "],\"status\":{}}";
  } else if (kind < 7) {
    out += "\"name\":\"POST /api/v1/answer\",\"kind\":2,";
    out += "\"startTimeUnixNano\":\"" + std::to_string(start_ns) + "\",\"endTimeUnixNano\":\"" +
           std::to_string(start_ns + duration) + "\",\"attributes\":[";
    attribute(out, "http.request.method", "POST");
    attribute(out, "url.path", "/api/v1/answer");
    attribute(out, "url.scheme", "https");
    int_attribute(out, "http.response.status_code", 200);
    attribute(out, "user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36", true);
    out += "],\"status\":{\"code\":1}}";
  } else {
    out += "\"name\":\"SELECT documents\",\"kind\":3,";
    out += "\"startTimeUnixNano\":\"" + std::to_string(start_ns) + "\",\"endTimeUnixNano\":\"" +
           std::to_string(start_ns + duration / 20) + "\",\"attributes\":[";
    attribute(out, "db.system.name", "postgresql");
    attribute(out, "db.query.text", "SELECT id, chunk, embedding FROM documents WHERE tenant_id = $1 ORDER BY embedding <-> $2 LIMIT 8");
    attribute(out, "server.address", "db.internal", true);
    out += "]}";
  }
}

/// An export of about `bytes` bytes.
std::string generate_export(size_t bytes, uint64_t seed) {
  Random r(seed);
  std::string out = "{\"resourceSpans\":[";
  int64_t start_ns = 1'735'689'600'000'000'000;  // 2025-01-01
  bool first_resource = true;
  while (out.size() < bytes) {
    if (!first_resource) out += ",";
    first_resource = false;
    size_t service = r.below(std::size(kServices));
    out += "{\"resource\":{\"attributes\":[";
    attribute(out, "service.name", kServices[service]);
    attribute(out, "service.version", "1.4." + std::to_string(r.below(20)));
    attribute(out, "deployment.environment.name", kEnvironments[r.below(2)]);
    attribute(out, "team", kTeams[service]);
    attribute(out, "cloud.region", "us-east-1");
    attribute(out, "telemetry.sdk.name", "opentelemetry");
    attribute(out, "telemetry.sdk.language", "python", true);
    out += "]},\"scopeSpans\":[{\"scope\":{\"name\":\"opentelemetry.instrumentation.genai\",\"version\":\"0.9b0\"},\"spans\":[";
    for (int i = 0; i < 200; ++i) {
      span(out, r, start_ns, i == 0);
      start_ns += 1'000'000'000;
    }
    out += "]}]}";
  }
  out += "]}";
  return out;
}

size_t env_mb(const char* name, size_t fallback) {
  const char* v = std::getenv(name);
  return (v != nullptr && std::atoi(v) > 0 ? (size_t)std::atoi(v) : fallback) << 20;
}

const std::string& parse_input() {
  static const std::string body = generate_export(env_mb("AIFINOPS_BENCH_OTLP_MB", 64), 1);
  return body;
}

void BM_OtlpReader_Parse(benchmark::State& state) {
  const std::string& body = parse_input();
  int64_t spans = 0;
  for (auto _ : state) {
    auto scan = ingest::scan_otlp_json(body);
    if (!scan) state.SkipWithError(scan.error().message.c_str());
    spans = scan ? scan->spans : 0;
    benchmark::DoNotOptimize(spans);
  }
  state.SetBytesProcessed((int64_t)state.iterations() * (int64_t)body.size());
  state.counters["spans"] = (double)spans;
  state.counters["spans_per_s"] =
      benchmark::Counter((double)spans * (double)state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_OtlpReader_Parse)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_OtlpReader_Ingest(benchmark::State& state) {
  static const std::string body = generate_export(env_mb("AIFINOPS_BENCH_OTLP_INGEST_MB", 16), 2);
  const pricing::Catalog& catalog = config::default_catalog();
  allocate::TagPolicy policy = allocate::TagPolicy::defaults();
  std::string dir = std::filesystem::temp_directory_path() / ("aifinops-otlp-bench-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  int64_t rows = 0, run = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::string path = dir + "/ledger-" + std::to_string(run++) + ".db";
    auto opened = ledger::open_ledger(path);
    state.ResumeTiming();
    if (!opened) {
      state.SkipWithError(opened.error().message.c_str());
      break;
    }
    ingest::IngestContext context{**opened, catalog, policy};
    auto s = ingest::ingest_otlp_json(context, body, "otlp:bench", ingest::IngestOptions{});
    if (!s) {
      state.SkipWithError(s.error().message.c_str());
      break;
    }
    rows = s->rows_ingested;
    state.PauseTiming();
    opened->reset();
    std::filesystem::remove(path);
    std::filesystem::remove(path + "-wal");
    std::filesystem::remove(path + "-shm");
    state.ResumeTiming();
  }
  std::filesystem::remove_all(dir);
  state.SetBytesProcessed((int64_t)state.iterations() * (int64_t)body.size());
  state.counters["records"] = (double)rows;
}
BENCHMARK(BM_OtlpReader_Ingest)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

}  // namespace
}  // namespace aifinops::bench

BENCHMARK_MAIN();
